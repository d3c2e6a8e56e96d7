"""How an API request proves who it is (a bearer token, api_tokens.py), what its token may touch
(scopes), and how often it may ask (a rate per token). Every use and every refusal is in the
security log."""

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

from .. import api_tokens
from ..models import ApiToken
from ..security import security_event


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer gl_…`. Without the header the request is anonymous (401 from the
    permission check); with a bad token it is refused here, the reason logged but not told."""

    def authenticate(self, request):
        header = get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _sep, raw = header.partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise api_tokens.Refused("not a bearer token")
            token = api_tokens.authenticate(raw.strip())
        except api_tokens.Refused as refusal:
            security_event("api_token_refused", request=request._request, outcome="denied", reason=str(refusal),
                           client_id=raw.strip().partition("_")[2].partition("_")[0][:16])
            raise exceptions.AuthenticationFailed(_("The token is invalid, expired or revoked.")) from None
        security_event("api_request", request=request._request, user=token.account, client_id=token.key_id,
                       client=token.name)
        return token.account, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class TokenScope(BasePermission):
    """The view's `required_scope` is among the token's scopes. What the account may see beyond that is
    the service layer's question (access.py), as for the pages."""

    message = _("This token's scopes do not include this request.")

    def has_permission(self, request, view):
        token = request.auth
        return isinstance(token, ApiToken) and getattr(view, "required_scope", None) in token.scopes


class TokenRateThrottle(SimpleRateThrottle):
    """A rate per token (API_RATE), whatever address it comes from; requests without a token are
    refused before throttling."""

    scope = "api"

    def get_rate(self):
        return settings.API_RATE

    def parse_rate(self, rate):
        return rate  # already (requests, seconds), read by settings.envrate

    def get_cache_key(self, request, view):
        token = request.auth
        return self.cache_format % {"scope": self.scope, "ident": token.key_id} if isinstance(token, ApiToken) else None


class ScimRateThrottle(TokenRateThrottle):
    """Provisioning (SCIM_RATE) counts apart from the API: a first sync must not use up a GRC tool's rate."""

    scope = "scim"

    def get_rate(self):
        return settings.SCIM_RATE


class ReportRateThrottle(TokenRateThrottle):
    """Auditor packs are heavy: requesting one has a rate of its own (API_REPORT_RATE)."""

    scope = "api_reports"

    def get_rate(self):
        return settings.API_REPORT_RATE

    def allow_request(self, request, view):
        return request.method != "POST" or super().allow_request(request, view)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "gl_<key>_<secret>",
                "description": "An API token issued by an administrator; its scopes limit what it may do."}
