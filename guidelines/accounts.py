"""Accounts: who is signed in, which employee that is, and how and from where they signed in.

- **Signing in** is django-allauth's, shaped by the adapters below (settings ACCOUNT_ADAPTER,
  SOCIALACCOUNT_ADAPTER, ACCOUNT_FORMS): no public sign-up, e-mail addresses come from HR, and a
  lockout is a security log event.
- **The employee** behind the account: `employee_for`, run on every request by
  middleware.EmployeeMiddleware, in one query that also brings the role flags the layout shows
  (HR, auditor, manager).
- **Request evidence**: `request_evidence` says how the employee signed in and from which address,
  for an acknowledgement. The address follows the rule of the security log and the rate limits
  (security.client_address: behind TRUSTED_PROXY_COUNT proxies, the entry of X-Forwarded-For the
  outermost trusted proxy added).
"""

import base64
import functools
import io
import json
import time

import segno
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.authentication import get_authentication_records
from allauth.account.forms import AddEmailForm
from allauth.account.internal.flows.reauthentication import suspend_request
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.base import AuthProcess
from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db.models import CharField, Exists, OuterRef, StringAgg, Subquery, Value
from django.db.models.functions import Cast
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from requests import RequestException

from .access import is_privileged, privileged_users
from .models import DueDateExtension, Employee, Exemption
from .prepared import PreparedQuery
from .security import client_address, security_event
from .services import RequestMeta

# Signing in (allauth) ----------------------------------------------------------------------------


class IntranetAccountAdapter(DefaultAccountAdapter):
    """Accounts and their e-mail addresses come from the HR import.

    Password reset: allauth sends the reset link to every *active* account with the address,
    whether or not it has a usable password yet. That is how an imported employee (created with an
    unusable password) sets a first password; leavers are inactive and get nothing
    (ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS is off).
    """

    def is_open_for_signup(self, request):
        # Accounts come from the HR import; nobody signs themselves up.
        return False

    def get_reauthentication_methods(self, user):
        """allauth's ways to confirm a sign-in (its reauthentication; the first is where it sends
        the user): a second factor first, when the user has one; never a password while passwords
        are off (PASSWORD_LOGIN=0)."""
        methods = super().get_reauthentication_methods(user)
        if not settings.PASSWORD_LOGIN:
            methods = [method for method in methods if method["id"] != "reauthenticate"]
        return sorted(methods, key=lambda method: not method["id"].startswith("mfa_"))

    def pre_authenticate(self, request, **credentials):
        """allauth refuses a sign-in once the failed attempts for the address or the client address
        exceed ACCOUNT_RATE_LIMITS["login_failed"]: that lockout goes on the security log. With
        PASSWORD_LOGIN=0 every password is refused, however it reached the sign-in."""
        if not settings.PASSWORD_LOGIN:
            security_event("login_refused", request=request, outcome="denied", reason="password_login_off")
            raise ValidationError(_("Sign in with your organisation's account; this intranet has no passwords."))
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            attempted = credentials.get("email") or credentials.get("username") or ""
            security_event("login_locked", request=request, outcome="denied", attempted_login=attempted)
            raise


    def get_logout_redirect_url(self, request):
        """Asked before the session ends. A session signed in through a provider that supports
        RP-initiated logout (an end_session_endpoint in its discovery document) signs out there too:
        the provider ends its own session and sends the browser back here."""
        here = super().get_logout_redirect_url(request)
        sso = request.session.get(SSO_SESSION_KEY) if hasattr(request, "session") else None
        if not sso:
            return here
        try:
            provider = get_social_adapter().get_provider(request, sso["provider"])
            end_session = provider.get_oauth2_adapter(request).openid_config.get("end_session_endpoint")
        except (SocialApp.DoesNotExist, RequestException, ValueError, KeyError):
            return here  # no such provider any more, or it does not answer: signed out here at least
        if not end_session:
            return here
        query = {"client_id": provider.app.client_id, "post_logout_redirect_uri": request.build_absolute_uri(here)}
        return f"{end_session}?{urlencode(query)}"


class IntranetMFAAdapter(DefaultMFAAdapter):
    error_messages = {
        **DefaultMFAAdapter.error_messages,
        "cannot_delete_authenticator": gettext_lazy(
            "Your role needs a second factor, so you cannot remove your last one. Add a security key or an "
            "authenticator app first, or ask an administrator to reset a lost one."),
    }

    def can_delete_authenticator(self, authenticator):
        """A privileged user (access.is_privileged) keeps at least one second factor (an authenticator
        app or a security key): without one their next password sign-in would have none. An
        administrator can remove a lost one in the admin; the user then sets one up again at their
        next sign-in."""
        if authenticator.type not in SECOND_FACTORS or not is_privileged(authenticator.user):
            return True
        others = Authenticator.objects.filter(user=authenticator.user, type__in=SECOND_FACTORS)
        return others.exclude(pk=authenticator.pk).exists()

    def encrypt(self, text):
        """An authenticator app's secret or the recovery codes' seed, encrypted before it is stored:
        a copy of the database (a backup, a restore drill) does not hold a usable second factor."""
        return second_factor_cipher().encrypt(text.encode()).decode()

    def decrypt(self, encrypted_text):
        return second_factor_cipher().decrypt(encrypted_text.encode()).decode()

    def build_totp_svg(self, url):
        # segno draws the QR codes of the PDF reports already; allauth's default needs another package.
        # A whole SVG document (with its namespace): allauth shows it as a data: image.
        buffer = io.BytesIO()
        segno.make(url, error="m").save(buffer, kind="svg", scale=4, border=2, xmldecl=False)
        return buffer.getvalue().decode()


def second_factor_cipher():
    """MultiFernet over settings.MFA_ENCRYPTION_KEYS (the first encrypts) and a key derived from
    SECRET_KEY (the default, and what rows were encrypted with before keys were set)."""
    return _cipher(tuple(settings.MFA_ENCRYPTION_KEYS), settings.SECRET_KEY)


@functools.lru_cache(maxsize=4)
def _cipher(keys, secret_key):
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"guidelines.mfa-secrets").derive(
        secret_key.encode())
    return MultiFernet([Fernet(key) for key in (*keys, base64.urlsafe_b64encode(derived).decode())])


class NoAddEmailForm(AddEmailForm):
    """ACCOUNT_FORMS["add_email"]: nobody adds an address; HR's import sets the one address."""

    def clean_email(self):
        raise ValidationError(_("E-mail addresses come from HR. Please contact HR to change yours."))


class IntranetSocialAccountAdapter(DefaultSocialAccountAdapter):
    """Signing in with the company's identity provider (OpenID Connect, settings.OIDC_APPS).

    A person is let in only as the employee HR imported with the same e-mail address (the provider's
    e-mail claim, compared case-insensitively), and only while employed. The first sign-in links the
    provider's subject to that account; later sign-ins find the account by the subject. Nobody else
    gets an account: an unknown person, an address outside the provider's allowed domains and a
    leaver see a page that says why (SSO_REFUSALS). A privileged account (access.privileged_users)
    is never linked by its address alone: its owner links it while signed in, from the connections
    page, after the second factor.
    """

    def is_open_for_signup(self, request, sociallogin):
        return False

    def pre_social_login(self, request, sociallogin):
        claims = sso_claims(sociallogin)
        if not _storable(sociallogin):
            self._refuse(request, sociallogin, claims, "unreadable")
        if sociallogin.state.get("process") == AuthProcess.CONNECT:
            return  # a signed-in user links their own provider account; allauth checks it is nobody else's
        if sociallogin.is_existing:
            user, email = sociallogin.user, claims["email"]
        else:
            email = claims["email"]
            user = self._hr_account(request, sociallogin, claims)
        if not user.is_active or _has_left(user):
            self._refuse(request, sociallogin, claims, "leaver", user=user)
        # A privileged account (linked by its owner or an administrator) signs in through a provider
        # only with the provider's second factor: the provider's sign-in replaces ours.
        if is_privileged(user) and not provider_vouches_for_second_factor(sociallogin.provider.app.settings, claims):
            self._refuse(request, sociallogin, claims, "no_second_factor", user=user)
        if not sociallogin.is_existing:
            sociallogin.connect(request, user)
            security_event("sso_account_linked", request=request, user=user, provider=claims["provider"],
                           subject=claims["subject"], email=email)

    def _hr_account(self, request, sociallogin, claims):
        email = claims["email"]
        domains = sociallogin.provider.app.settings.get("allowed_domains") or []
        if not email or "@" not in email:
            self._refuse(request, sociallogin, claims, "no_email")
        if claims["email_verified"] is False:  # said, and false; a provider that does not say (Entra) vouches
            self._refuse(request, sociallogin, claims, "unverified")
        if domains and email.rsplit("@", 1)[1].lower() not in domains:
            self._refuse(request, sociallogin, claims, "domain")
        # Compared as ASCII in Python: the database's case-insensitive match folds look-alike letters
        # (a dotless ı, a long ſ) into the address of someone else.
        candidates = get_user_model().objects.filter(email__iexact=email, employee__isnull=False)[:5]
        matches = [user for user in candidates if email.isascii() and user.email.lower() == email.lower()]
        if len(matches) != 1:
            self._refuse(request, sociallogin, claims, "unknown")
        if privileged_users().filter(pk=matches[0].pk).exists():
            self._refuse(request, sociallogin, claims, "privileged", user=matches[0])
        return matches[0]

    def _refuse(self, request, sociallogin, claims, reason, *, user=None):
        security_event("sso_login_refused", request=request, user=user, outcome="denied", reason=reason,
                       provider=claims["provider"], subject=claims["subject"][:200], email=claims["email"][:200])
        raise ImmediateHttpResponse(sso_refused(request, reason, sociallogin.provider.name))

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None):
        """The sign-in with the provider failed: on the security log, and a page that says so
        (templates/socialaccount/authentication_error.html): 502 when the provider could not be
        reached, allauth's 401 otherwise."""
        provider_id = getattr(getattr(provider, "app", None), "provider_id", "") or getattr(provider, "id", "")
        security_event("sso_error", request=request, outcome="failure", provider=provider_id,
                       error=str(error or ""), exception=type(exception).__name__ if exception else "")
        if isinstance(exception, RequestException):
            raise ImmediateHttpResponse(provider_unreachable(request))


def sso_refused(request, reason, provider_name):
    """The page that tells someone why their sign-in through a provider was refused (403)."""
    context = {"reason": reason, "message": SSO_REFUSALS[reason], "provider": provider_name}
    return render(request, "account/sso_refused.html", context, status=403)


def provider_unreachable(request):
    return render(request, "socialaccount/authentication_error.html", {"unreachable": True}, status=502)


SSO_REFUSALS = {
    "unknown": gettext_lazy("You are not registered for the guidelines. If you think you should be, please "
                            "contact HR."),
    "domain": gettext_lazy("Your account is not one of this organisation's. Sign in with your work account, or "
                           "contact HR."),
    "unverified": gettext_lazy("Your identity provider says your e-mail address is not confirmed, so we cannot "
                               "find you by it. Confirm it there, or contact HR."),
    "unreadable": gettext_lazy("Your identity provider sent details we cannot use. Please contact IT."),
    "no_second_factor": gettext_lazy("Your role needs a second factor, and your identity provider did not report "
                                     "one for this sign-in. Sign in there with your second factor, or contact IT."),
    "no_email": gettext_lazy("Your identity provider did not tell us your e-mail address, so we cannot find you "
                             "in HR's records. Please contact the service desk."),
    "leaver": gettext_lazy("Your employment has ended, so you can no longer sign in here. If this is wrong, "
                           "please contact HR."),
    "privileged": gettext_lazy("Your account has administrative rights, so it is not linked to your identity "
                               "provider automatically. Sign in with your password and link it "
                               "yourself, or ask an administrator."),
}


def sso_claims(sociallogin):
    """What a provider's sign-in says about the person: provider id, subject, e-mail address (the
    provider's configured e-mail claim, from the userinfo or else the ID token) and the ID token's
    `amr` and `acr` (how the provider authenticated them: its second factor, if any)."""
    data = sociallogin.account.extra_data or {}
    userinfo, id_token = data.get("userinfo") or {}, data.get("id_token") or {}
    claim = sociallogin.provider.app.settings.get("email_claim", "email")
    email = str(userinfo.get(claim) or id_token.get(claim) or "").strip()
    amr = id_token.get("amr") or userinfo.get("amr") or []
    verified = userinfo.get("email_verified", id_token.get("email_verified"))
    auth_time = id_token.get("auth_time")
    return {
        "provider": sociallogin.account.provider,
        "subject": str(sociallogin.account.uid),
        "email": email,
        # True, False, or None when the provider does not say (a string "false" is false).
        "email_verified": None if verified is None else str(verified).lower() == "true",
        "amr": [str(method) for method in amr] if isinstance(amr, list) else [str(amr)],
        "acr": str(id_token.get("acr") or userinfo.get("acr") or ""),
        "auth_time": auth_time if isinstance(auth_time, int | float) else None,
    }


def _storable(sociallogin):
    """What the provider sent fits the database: a subject of at most 191 characters (allauth's
    column) and no NUL character anywhere (PostgreSQL refuses it in JSON)."""
    extra = json.dumps(sociallogin.account.extra_data or {})
    return len(str(sociallogin.account.uid)) <= 191 and "\\u0000" not in extra


# RFC 8176 methods that prove something besides a password: a one-time code, a key, a card, the body.
SECOND_FACTOR_METHODS = {"mfa", "otp", "hwk", "swk", "sc", "sms", "tel", "fpt", "face", "iris", "retina", "vbm"}


def provider_second_factor(methods):
    """Whether an identity provider's `amr` methods say the person passed a second factor: "mfa"
    itself, or a password-free method next to another method (e.g. "pwd otp"). A lone "pwd", "kba"
    or "rba" is one factor."""
    methods = set(methods)
    return "mfa" in methods or (bool(methods & SECOND_FACTOR_METHODS) and len(methods) >= 2)


def amr_methods(sso_amr):
    """The methods of an acknowledgement's recorded `sso_amr`: a JSON list, or older space-separated text."""
    try:
        methods = json.loads(sso_amr)
    except ValueError:
        return sso_amr.split()
    return [str(method) for method in methods] if isinstance(methods, list) else []


def provider_vouches_for_second_factor(config, claims):
    """A provider's sign-in counts as two factors when its `amr` says so, when its `acr` is one the
    operator named (OIDC_<ID>_MFA_ACR), or when the operator states that the provider requires a
    second factor for this application itself (OIDC_<ID>_MFA_ENFORCED, e.g. Entra ID Conditional
    Access, whose ID token carries no amr)."""
    return (config.get("mfa_enforced", False) or claims["acr"] in config.get("mfa_acr", [])
            or provider_second_factor(claims["amr"]))


# The second factor -------------------------------------------------------------------------------


def second_factor_missing(request):
    """A privileged user (access.is_privileged) signed in with a password and no second factor in
    this session yet. A sign-in through an identity provider leaves the second factor to the
    provider (its `amr` is on the security log)."""
    user = request.user
    if not user.is_authenticated or not is_privileged(user):
        return False
    records = get_authentication_records(request, user)
    if any(record.get("method") == "mfa" for record in records):
        return False
    return not (records and records[-1].get("method") == "socialaccount")


# What counts as a second factor; recovery codes only stand in for one.
SECOND_FACTORS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)


def has_second_factor(user):
    """An authenticator app or a security key."""
    return Authenticator.objects.filter(user=user, type__in=SECOND_FACTORS).exists()


def on_authenticator_added(sender, request, user, authenticator, **kwargs):
    """allauth.mfa's authenticator_added (after the commit): on the security log."""
    security_event("second_factor_added", request=request, user=user, type=authenticator.type)


def on_authenticator_removed(sender, request, user, authenticator, **kwargs):
    """allauth.mfa's authenticator_removed: on the security log."""
    security_event("second_factor_removed", request=request, user=user, type=authenticator.type)


# A fresh sign-in before the actions that change what everyone must do ---------------------------------


def signed_in_recently(request):
    """The latest sign-in or confirmation of this session (password, second factor, provider) is
    younger than settings.REAUTHENTICATION_MINUTES. A sign-in through a provider counts from when the
    person authenticated there (the ID token's auth_time), not from when the provider answered: a
    provider that lets an open session through has not asked them anything."""
    sso = request.session.get(SSO_SESSION_KEY) or {}

    def moment(record):
        if record.get("method") == "socialaccount" and sso.get("auth_time"):
            return min(record.get("at", 0), sso["auth_time"])
        return record.get("at", 0)

    latest = max((moment(record) for record in get_authentication_records(request, request.user)), default=0)
    return time.time() - latest < settings.REAUTHENTICATION_MINUTES * 60


def _confirmation(request):
    """Where the user confirms it is them, and whether that is at a provider: the second factor if
    they have one, else their password (unless PASSWORD_LOGIN is off); someone who signs in through a
    provider signs in there again. (None, False) when there is no way."""
    methods = {method["id"]: method["url"] for method in get_account_adapter(request).get_reauthentication_methods(
        request.user)}
    if "mfa_reauthenticate" in methods:
        return methods["mfa_reauthenticate"], False
    if "reauthenticate" in methods and settings.PASSWORD_LOGIN:  # without passwords, a password cannot confirm
        return methods["reauthenticate"], False
    sso = request.session.get(SSO_SESSION_KEY)
    if sso:
        return reverse("openid_connect_login", kwargs={"provider_id": sso["provider"]}), True
    return None, False


def fresh_sign_in_required(view):
    """For publishing, approving, recording the works council's consent, importing employees and granting
    exemptions: a sign-in older than REAUTHENTICATION_MINUTES is confirmed first (allauth's
    reauthentication, which then resumes the request; a posted form is posted again). The security log
    says so."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_authenticated and not signed_in_recently(request):
            url, at_provider = _confirmation(request)
            if url is not None:
                security_event("reauthentication_required", request=request, outcome="denied")
                if at_provider:  # a new sign-in there (asking for it again, not passing an open session), then back
                    query = {"process": "login", "next": request.get_full_path(), "auth_params": PROVIDER_SIGN_IN_AGAIN}
                    return redirect(f"{url}?{urlencode(query)}")
                if request.FILES:
                    # A file cannot be kept for later: back to the page, to choose it again.
                    return redirect(f"{url}?{urlencode({'next': request.path})}")
                return suspend_request(request, url)
        return view(request, *args, **kwargs)

    return wrapper


SSO_SESSION_KEY = "guidelines_sso_sign_in"
# OpenID Connect: authenticate the person again even if the provider has a session, and say when.
PROVIDER_SIGN_IN_AGAIN = "prompt=login&max_age=0"


def remember_sso_sign_in(sender, request, user, sociallogin=None, **kwargs):
    """allauth's user_logged_in: after a sign-in through a provider, keep its claims with the session
    (request evidence reads them) and put them on the security log."""
    if sociallogin is None:
        request.session.pop(SSO_SESSION_KEY, None)
        return
    claims = sso_claims(sociallogin)
    request.session[SSO_SESSION_KEY] = {key: claims[key] for key in ("provider", "subject", "amr", "acr",
                                                                        "auth_time")}
    security_event("sso_login", request=request, user=user, **request.session[SSO_SESSION_KEY])


def _has_left(user):
    """An employee no longer employed today. (An account without an employee record, such as an
    administrator's or an external auditor's, has only its active flag.)"""
    end_date = Employee.objects.filter(user=user).values_list("end_date", flat=True).first()
    return end_date is not None and end_date <= timezone.localdate()  # the first day without employment


# The employee behind the account ---------------------------------------------------------------


def _permission_ids(links):
    """One text value: the permission ids of `links` (rows of a permission link table), space-separated.
    Ids rather than names keep the query to the link tables (planning it took three times as long
    with the joins to the permission and content type tables)."""
    return Subquery(
        links.order_by()
        .annotate(all=Value(1)).values("all")  # one group: the whole set
        .annotate(ids=StringAgg(Cast("permission_id", CharField()), Value(" ")))
        .values("ids")
    )


def employee_lookup(user_id):
    """The employee of account `user_id` with its role flags, as a queryset (see employee_for)."""
    # Someone reports to them. Written as a range rather than `manager_id = id`: the planner then
    # walks the manager index. With `=` it estimates every employee to have the average number of
    # reports (100,000 employees under 20 heads: 5,000 each) and scans the whole table for the
    # first one, which for the many who manage nobody means reading every row (~12 ms at 100,000).
    reports = Employee.objects.filter(manager_id__gte=OuterRef("pk"), manager_id__lte=OuterRef("pk"))
    employee = Employee.objects.filter(user_id=user_id).order_by().annotate(
        manages=Exists(reports),
        # Few employees ever have one: their pages skip these two queries (status.standings).
        has_exemptions=Exists(Exemption.objects.filter(employee=OuterRef("pk"))),
        has_extensions=Exists(DueDateExtension.objects.filter(employee=OuterRef("pk"))),
    )
    # The two sets ModelBackend loads: the user's own permissions, and their groups'.
    return with_permission_ids(employee, "user_id")


class PermissionNames:
    """Permission id → "app_label.codename", as ModelBackend names permissions, kept per process like
    Django's own ContentType cache: permissions are created by migrations and never renamed. An id
    not seen yet (a permission created since) reloads the table."""

    names = {}

    @classmethod
    def of(cls, ids):
        ids = [int(pk) for pk in ids.split()] if ids else []
        if any(pk not in cls.names for pk in ids):
            cls.names = {pk: f"{app_label}.{codename}" for pk, app_label, codename
                         in Permission.objects.values_list("pk", "content_type__app_label", "codename")}
        return {cls.names[pk] for pk in ids if pk in cls.names}


# Building and compiling this query costs several times what running it does, on every request.
_employee_of_user = PreparedQuery(Employee, employee_lookup, int)


def employee_for(user):
    """The user's employee record, or None. Runs on every request: one query.

    The same row brings the role flags the layout needs, so a page asks nothing more about roles:
    `manages` (someone reports to them: the "My team" link), `has_exemptions` and `has_extensions`
    (ever granted one: status.standings asks for them only then) and the user's permissions (HR,
    auditor, approver), which prime the permission cache of Django's ModelBackend on `user` with
    exactly the two sets it would query itself (`user_permissions` and the permissions of the
    user's groups). `user.has_perm` and `{{ perms }}` then answer without a query for the rest of
    the request, as after Django's own first permission check. Superusers hold every permission,
    which Django answers without its cache: theirs stays unprimed.
    """
    employee = next(iter(_employee_of_user(user.pk)), None)  # user_id is unique
    if employee is None:
        return None
    employee.user = user
    prime_permissions(user, employee)
    return employee


def with_permission_ids(queryset, account):
    """`queryset` annotated with the two permission sets (user_permission_ids, group_permission_ids) of
    the account its field `account` names, for prime_permissions: one query instead of two more."""
    User = get_user_model()
    groups = User.groups.through.objects.filter(user_id=OuterRef(OuterRef(account))).values("group_id")
    return queryset.annotate(
        user_permission_ids=_permission_ids(User.user_permissions.through.objects.filter(user_id=OuterRef(account))),
        group_permission_ids=_permission_ids(Group.permissions.through.objects.filter(group_id__in=groups)),
    )


def prime_permissions(user, row):
    """Fill ModelBackend's permission cache on `user` from a row annotated by with_permission_ids (or
    employee_lookup), so that `user.has_perm` answers without a query. Superusers hold every permission,
    which Django answers without its cache: theirs stays unprimed."""
    if user.is_active and not user.is_superuser:
        # The attributes ModelBackend._get_permissions caches its two sets in.
        user._user_perm_cache = PermissionNames.of(row.user_permission_ids)
        user._group_perm_cache = PermissionNames.of(row.group_permission_ids)


# How and from where the employee signed in: evidence for an acknowledgement -------------------------


def authentication_method(request):
    """How this session was signed in, from allauth's authentication records: "password",
    "sso:<provider>", either with "+mfa" once a second factor was passed, or "session" when the
    session carries no record (a sign-in made by code rather than through allauth)."""
    records = get_authentication_records(request, request.user)
    first_factor = [record for record in records if record.get("method") != "mfa"]
    if not first_factor:
        return "session"
    last = first_factor[-1]
    method = last.get("method", "unknown")
    if method == "socialaccount":
        method = f"sso:{last.get('provider', '')}"
    return f"{method}+mfa" if len(first_factor) < len(records) else method


SIGN_IN_LABELS = {
    "password": gettext_lazy("e-mail address and password"),
    "password+mfa": gettext_lazy("e-mail address and password, with a second factor"),
    "session": gettext_lazy("an existing session (no sign-in recorded)"),
    "sso": gettext_lazy("single sign-on through %(provider)s"),
    "sso+provider-mfa": gettext_lazy("single sign-on through %(provider)s, with the provider's second factor"),
    "sso+mfa": gettext_lazy("single sign-on through %(provider)s, with a second factor here"),
}


def configured_providers():
    """{provider id: display name} of the identity providers allauth offers (settings.OIDC_APPS)."""
    apps = settings.SOCIALACCOUNT_PROVIDERS.get("openid_connect", {}).get("APPS", [])
    return {app["provider_id"]: app.get("name") or app["provider_id"] for app in apps}


def sign_in_label(auth_method, sso_amr=""):
    """An acknowledgement's recorded sign-in (authentication_method, and the provider's amr as
    recorded) as people read it on a certificate or in an auditor pack."""
    return sign_in_description(auth_method, provider_second_factor(amr_methods(sso_amr)))


def sign_in_description(auth_method, provider_mfa):
    """sign_in_label() from whether the provider reported a second factor. A provider no longer
    configured is named by its id; a method this code does not know is shown as recorded."""
    method, _plus, factor = auth_method.partition("+")
    if method.startswith("sso:"):
        provider_id = method.removeprefix("sso:")
        names = configured_providers()
        key = "sso+mfa" if factor == "mfa" else "sso+provider-mfa" if provider_mfa else "sso"
        return SIGN_IN_LABELS[key] % {"provider": names.get(provider_id, provider_id)}
    label = SIGN_IN_LABELS.get(auth_method)
    return str(label) if label else auth_method


def request_evidence(request, channel):
    """services.RequestMeta for an acknowledgement made through `channel` with this request: how the
    employee signed in (after a sign-in through a provider, with its subject, amr and acr), the client
    address (security.client_address, the rule of the security log and the rate limits, which honours
    TRUSTED_PROXY_COUNT) and the browser's user agent."""
    method = authentication_method(request)
    claims = request.session.get(SSO_SESSION_KEY) or {}
    # The claims count only for the sign-in they came with: not after a later password confirmation.
    if method.removesuffix("+mfa") != f"sso:{claims.get('provider')}":
        claims = {}
    return RequestMeta(
        channel=channel,
        auth_method=method,
        ip_address=client_address(request) or None,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        sso_subject=claims.get("subject", ""),
        sso_amr=json.dumps(claims["amr"], ensure_ascii=False, separators=(",", ":")) if claims.get("amr") else "",
        sso_acr=claims.get("acr", ""),
    )
