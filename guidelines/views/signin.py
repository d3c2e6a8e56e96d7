from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.base import views as mfa
from allauth.socialaccount.providers.openid_connect import views as openid_connect
from django.contrib.auth.decorators import login_not_required
from requests import RequestException

from ..accounts import provider_unreachable
from ..security import security_event


def _provider_may_be_down(view):
    """allauth's start of a sign-in with a provider and its return read the provider's discovery
    document before allauth's own error handling: a provider that does not answer is a clear 502
    page there too, not a 500."""

    @login_not_required
    def wrapper(request, provider_id):
        try:
            return view(request, provider_id)
        except RequestException as error:
            security_event("sso_error", request=request, outcome="failure", provider=provider_id,
                           exception=type(error).__name__)
            return provider_unreachable(request)

    return wrapper


provider_login = _provider_may_be_down(openid_connect.login)
provider_callback = _provider_may_be_down(openid_connect.callback)


def second_factor_overview(request):
    """allauth's overview of the second factor, told whether the authenticator app may be switched
    off (the MFA adapter's rule), so the page offers only what will work."""
    response = mfa.index(request)
    context = getattr(response, "context_data", None) or {}
    totp = context.get("authenticators", {}).get("totp")
    if totp is not None:
        context["can_deactivate_totp"] = get_mfa_adapter().can_delete_authenticator(totp.instance)
    return response
