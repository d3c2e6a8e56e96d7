"""/api/v1/: the endpoints, the OpenAPI schema and its documentation (Swagger UI, served from our own
static files; Redoc is left out: its page loads fonts from a CDN)."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from . import views

app_name = "api"


def _open(view_class, **kwargs):
    """Token-authenticated (or, for the schema and its docs, public): not behind the sign-in pages."""
    return login_not_required(view_class.as_view(**kwargs))


# The schema and its docs hold no data: anyone may read them, with or without a token.
PUBLIC = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns = [
    path("schema/", _open(SpectacularAPIView, **PUBLIC), name="schema"),
    path("docs/", _open(SpectacularSwaggerSplitView, url_name="api:schema", **PUBLIC), name="docs"),
    path("guidelines/", _open(views.GuidelineList), name="guidelines"),
    path("guidelines/<slug:slug>/", _open(views.GuidelineDetail), name="guideline"),
    path("guidelines/<slug:slug>/versions/", _open(views.GuidelineVersions), name="guideline-versions"),
    path("versions/<int:pk>/", _open(views.VersionDetail), name="version"),
    path("versions/<int:pk>/status/", _open(views.VersionStatus), name="version-status"),
    path("versions/<int:pk>/employees/", _open(views.VersionEmployees), name="version-employees"),
    path("acknowledgements/", _open(views.AcknowledgementList), name="acknowledgements"),
    path("objections/", _open(views.ObjectionList), name="objections"),
    path("chain/verification/", _open(views.ChainVerification), name="chain-verification"),
    path("reports/", _open(views.ReportList), name="reports"),
    path("reports/<str:code>/", _open(views.ReportDetail), name="report"),
    path("reports/<str:code>/pdf/", _open(views.ReportPdf), name="report-pdf"),
]
