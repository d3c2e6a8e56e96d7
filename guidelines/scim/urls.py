"""/scim/v2/: SCIM 2.0 provisioning (RFC 7644) for Microsoft Entra ID. Addresses as the RFC names them,
with or without a trailing slash (Entra appends /Users to the tenant URL it was given)."""

from django.contrib.auth.decorators import login_not_required
from django.urls import re_path

from . import views

app_name = "scim"


def _open(view_class):
    """Token-authenticated: not behind the sign-in pages."""
    return login_not_required(view_class.as_view())


urlpatterns = [
    re_path(r"^ServiceProviderConfig/?$", _open(views.ServiceProviderConfig), name="service-provider-config"),
    re_path(r"^ResourceTypes/?$", _open(views.ResourceTypes), name="resource-types"),
    re_path(r"^ResourceTypes/(?P<name>[^/]+)/?$", _open(views.ResourceTypes), name="resource-type"),
    re_path(r"^Schemas/?$", _open(views.Schemas), name="schemas"),
    re_path(r"^Schemas/(?P<schema_id>[^/]+)/?$", _open(views.Schemas), name="schema"),
    re_path(r"^Users/?$", _open(views.Users), name="users"),
    re_path(r"^Users/(?P<pk>[^/]+)/?$", _open(views.UserDetail), name="user"),
    re_path(r"^Groups/?$", _open(views.Groups), name="groups"),
    re_path(r"^Groups/(?P<pk>[^/]+)/?$", _open(views.GroupDetail), name="group"),
    re_path(r"^", _open(views.NotFound), name="not-found"),
]
