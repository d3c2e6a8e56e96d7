from allauth.account import views as account_views
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import include, path, re_path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.i18n import set_language

from guidelines.views import signin


@login_not_required
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


# One sign-in for everyone: the admin has no login form of its own. Its login page sends the browser
# to allauth's (rate limited, security logged) with ?next=, its logout is allauth's, and so is the
# password change.
@never_cache
@login_not_required
def admin_login(request, extra_context=None):
    target = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = reverse("admin:index")
    if not request.user.is_authenticated:
        return redirect_to_login(target, reverse("account_login"))
    if admin.site.has_permission(request):
        return redirect(target)
    # Signed in, but not staff: allauth would send them straight back here.
    raise PermissionDenied(_("You are signed in, but the administration is only for HR and administrators."))


def admin_logout(request, extra_context=None):
    return account_views.logout(request)


def admin_password_change(request, extra_context=None):
    return redirect("account_change_password")


admin.site.login = admin_login
admin.site.logout = admin_logout
admin.site.password_change = admin_password_change


@login_not_required
def email_addresses_come_from_hr(request, **kwargs):
    raise Http404(_("E-mail addresses come from HR. Please contact HR to change yours."))


@login_not_required
def no_passwords_here(request, **kwargs):
    raise Http404(_("This intranet has no passwords of its own: sign in with your organisation's account."))


# With PASSWORD_LOGIN=0 the sign-in page offers only the identity providers (and the adapter refuses
# a password posted anyway); there is nothing to reset, set or change.
password_pages = [] if settings.PASSWORD_LOGIN else [re_path(r"^accounts/password/", no_passwords_here)]


urlpatterns = [
    path("", include("guidelines.urls")),
    path("api/v1/", include("guidelines.api.urls")),
    path("scim/v2/", include("guidelines.scim.urls")),
    # allauth's e-mail management (add, remove, make primary, confirm) does not exist here: the
    # address is the one in the HR data. These come before allauth's own patterns.
    path("accounts/email/", email_addresses_come_from_hr),
    path("accounts/confirm-email/", email_addresses_come_from_hr),
    re_path(r"^accounts/confirm-email/(?P<key>[-:\w]+)/$", email_addresses_come_from_hr),
    *password_pages,
    # allauth's sign-in page, told whether passwords are offered at all.
    path("accounts/login/", account_views.LoginView.as_view(extra_context={"password_login": settings.PASSWORD_LOGIN}),
         name="account_login"),
    path("accounts/oidc/<str:provider_id>/login/", signin.provider_login, name="openid_connect_login"),
    path("accounts/oidc/<str:provider_id>/login/callback/", signin.provider_callback,
         name="openid_connect_callback"),
    path("accounts/2fa/webauthn/keys/<int:pk>/remove/", signin.remove_security_key, name="mfa_remove_webauthn"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    # The sign-in page offers the language switch too, so it must work before login.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("healthz/", healthz),
]
