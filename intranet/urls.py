from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.urls import include, path
from django.views.i18n import set_language


@login_not_required
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", include("guidelines.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    # The sign-in page offers the language switch too, so it must work before login.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("healthz/", healthz),
]
