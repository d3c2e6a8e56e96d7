from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.webauthn import views as webauthn
from allauth.socialaccount.providers.openid_connect import views as openid_connect
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from requests import RequestException

from ..accounts import configured_providers, provider_unreachable, sso_refused
from ..security import security_event


def _provider_may_be_down(view):
    """allauth's start of a sign-in with a provider and its return read the provider's discovery
    document before allauth's own error handling: a provider that does not answer is a clear 502
    page there too, not a 500; a subject allauth cannot store is a refusal page."""

    @login_not_required
    def wrapper(request, provider_id):
        try:
            return view(request, provider_id)
        except RequestException as error:
            security_event("sso_error", request=request, outcome="failure", provider=provider_id,
                           exception=type(error).__name__)
            return provider_unreachable(request)
        except (ImproperlyConfigured, ValueError) as error:
            # allauth refuses a subject it cannot store (longer than its column, empty, not text) this
            # way, before any adapter hook: a refusal like the others, not a 500.
            if "uid" not in str(error).lower():
                raise
            security_event("sso_login_refused", request=request, outcome="denied", reason="unreadable",
                           provider=provider_id)
            return sso_refused(request, "unreadable", configured_providers().get(provider_id, provider_id))

    return wrapper


provider_login = _provider_may_be_down(openid_connect.login)
provider_callback = _provider_may_be_down(openid_connect.callback)



@require_http_methods(["GET", "POST"])  # allauth's DeleteView would also delete on DELETE, unchecked
def remove_security_key(request, pk):
    """allauth's removal of a security key, which does not ask the MFA adapter: a key its owner may not
    remove (their last second factor, access.is_privileged) is refused here with the reason."""
    key = Authenticator.objects.filter(user=request.user, type=Authenticator.Type.WEBAUTHN, pk=pk).first()
    if key is not None and request.method == "POST" and not get_mfa_adapter().can_delete_authenticator(key):
        reason = get_mfa_adapter().error_messages["cannot_delete_authenticator"]
        return render(request, "mfa/webauthn/authenticator_confirm_delete.html",
                      {"authenticator": key, "refused": reason}, status=409)
    return webauthn.remove_webauthn(request, pk=pk)
