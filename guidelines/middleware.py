import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import Resolver404, resolve, reverse
from django.utils import translation
from django.utils.cache import patch_cache_control
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from .accounts import employee_for, has_second_factor, second_factor_missing
from .security import security_event


class EmployeeMiddleware:
    """Puts the signed-in user's employee record on the request (accounts.employee_for: one query,
    with the role flags the layout shows) and speaks their language.

    An explicit choice (the language cookie set by the language switch) wins over the
    language in the HR data.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.employee = None
        if request.user.is_authenticated:
            request.employee = employee_for(request.user)
            chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
            if request.employee and chosen not in dict(settings.LANGUAGES):
                translation.activate(request.employee.language)
                request.LANGUAGE_CODE = request.employee.language
        return self.get_response(request)


class IdleTimeoutMiddleware:
    """Signs out a session that made no request for SESSION_IDLE_MINUTES, besides the absolute
    lifetime of SESSION_COOKIE_AGE. The last activity is written at most once a minute, so an active
    user does not cost a session write per request."""

    KEY = "guidelines_last_activity"
    RESOLUTION = 60  # seconds

    def __init__(self, get_response):
        self.get_response = get_response

    @classmethod
    def on_sign_in(cls, sender, request, user, **kwargs):
        """user_logged_in: the sign-in is activity, stamped with the sign-in's own session write (the
        next request then has nothing to write)."""
        if request is not None and hasattr(request, "session"):
            request.session[cls.KEY] = int(time.time())

    def __call__(self, request):
        if request.user.is_authenticated:
            now = int(time.time())
            last = request.session.get(self.KEY, now)
            if now - last > settings.SESSION_IDLE_MINUTES * 60:
                security_event("session_idle_timeout", request=request, idle_minutes=(now - last) // 60)
                logout(request)
                messages.info(request, _("You were signed out after %(minutes)d minutes without activity.")
                              % {"minutes": settings.SESSION_IDLE_MINUTES})
                return redirect_to_login(request.get_full_path())
            if now - last >= self.RESOLUTION or self.KEY not in request.session:
                request.session[self.KEY] = now
        return self.get_response(request)


class SecondFactorMiddleware:
    """HR, approvers, auditors and staff who signed in with a password pass a second factor before any
    page of theirs, the admin's included (accounts.second_factor_missing): without an authenticator
    they are sent to set one up, with one to enter its code. Only the second-factor pages, the
    password confirmation that setting one up asks for, sign-out and the language switch stay open
    meanwhile."""

    OPEN = ("/accounts/2fa/", "/accounts/reauthenticate/", "/accounts/logout/", "/i18n/setlang/", "/healthz/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Read by the layout: until then the menu offers nothing (every link would come back here).
        request.second_factor_pending = second_factor_missing(request)
        if request.second_factor_pending and not request.path_info.startswith(self.OPEN):
            target = "mfa_reauthenticate" if has_second_factor(request.user) else "mfa_activate_totp"
            return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


class PrivateCacheMiddleware:
    """`Cache-Control: no-store, private` on every response that may hold personal data: every
    response to a signed-in user (pages, the streamed CSV export, PDF downloads, error pages) and
    every response of the sign-in, account and admin pages, signed in or not. Neither a shared
    cache nor the browser's back button keeps them after sign-out.

    It sits below WhiteNoise, so static files (which WhiteNoise answers itself) keep their caching.
    """

    ALWAYS_PRIVATE = ("/accounts/", "/admin/", "/api/", "/scim/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        if signed_in or request.path_info.startswith(self.ALWAYS_PRIVATE):
            if not request.path_info.startswith("/" + settings.STATIC_URL.lstrip("/")):
                patch_cache_control(response, no_store=True, private=True)
        return response


class SecurityLogMiddleware:
    """One security log line for every refused request: 403 (access_denied: a PermissionDenied, a
    failed CSRF check, an admin page the user may not use) and 429 (rate_limited: allauth's limits).
    Logged from the response, whoever refused, and only once: not when the code that refused has
    already logged the refusal itself (an event with outcome "denied" on this request).
    """

    EVENTS = {403: "access_denied", 429: "rate_limited"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        event = self.EVENTS.get(response.status_code)
        if event and "denied" not in getattr(request, "_security_outcomes", ()):
            details = {"status": response.status_code}
            if response.status_code == 403:
                details["reason"] = getattr(request, "_security_denied_reason", "")
            security_event(event, request=request, outcome="denied", **details)
        return response

    def process_exception(self, request, exception):
        # The view's own explanation, for the 403 line logged above; the response is Django's.
        if isinstance(exception, PermissionDenied):
            request._security_denied_reason = str(exception)
        return None


class UploadLimitMiddleware:
    """Refuses an upload that is too large before a single byte of its body is read.

    For POST (and PUT/PATCH) to the pages in settings.UPLOAD_LIMITS (URL name → bytes), a
    Content-Length above the page's limit is answered 413; a body without Content-Length
    (chunked) 411 and a malformed Content-Length 400. Nothing has read the body at this point:
    the CSRF check reads it later, in process_view.
    """

    METHODS = ("POST", "PUT", "PATCH")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in self.METHODS:
            refusal = self.refusal(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    def refusal(self, request):
        try:
            match = resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            return None
        limit = settings.UPLOAD_LIMITS.get(match.view_name)
        if limit is None:
            return None
        raw_length = request.META.get("CONTENT_LENGTH", "").strip()
        if not raw_length:
            if "HTTP_TRANSFER_ENCODING" not in request.META:
                return None  # no body at all
            return self.refuse(request, 411, limit, _("Send the file with its size (a Content-Length header)."))
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            return self.refuse(request, 400, limit)
        if length > limit:
            return self.refuse(request, 413, limit, length=length)
        return None

    def refuse(self, request, status, limit, message=None, *, length=None):
        security_event("upload_refused", request=request, outcome="denied", status=status, content_length=length,
                       limit_bytes=limit)
        template = "413.html" if status == 413 else "400.html"
        context = {"message": message, "limit": filesizeformat(limit)}
        return render(request, template, context, status=status)
