"""The security log: one JSON line per event a SOC wants to see (sign-ins, refusals, exports,
imports, admin changes), on the `security` logger.

Each line has the time (UTC), the event, the user (id and username), the client address, the
method and path, the outcome and event-specific details. Values are JSON-encoded, so a name
with a line break cannot forge a second entry. Secrets never reach it: keys that look like
passwords, tokens, session ids or CSRF values are dropped, and the query string is not logged.
"""

import json
import logging
from datetime import UTC, datetime

from django.conf import settings

logger = logging.getLogger("security")

LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}
SECRET_MARKERS = ("password", "passwd", "secret", "token", "session", "csrf", "key", "cookie", "authorization")


def _is_secret(name):
    name = name.lower()
    return any(marker in name for marker in SECRET_MARKERS)


def _clean(value):
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items() if not _is_secret(str(k))}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def client_address(request):
    """The client's address as the rate limits see it: behind TRUSTED_PROXY_COUNT proxies, the entry
    of X-Forwarded-For that the outermost trusted proxy added; otherwise the connection's address."""
    if request is None:
        return ""
    proxies = getattr(settings, "ALLAUTH_TRUSTED_PROXY_COUNT", 0)
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def security_event(event, *, request=None, user=None, outcome="success", **details):
    """Write one security log line. `user` defaults to the request's signed-in user."""
    if user is None and request is not None:
        candidate = getattr(request, "user", None)
        user = candidate if candidate is not None and candidate.is_authenticated else None
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": event,
        "outcome": outcome,
        "user_id": user.pk if user is not None else None,
        "username": user.get_username() if user is not None else "",
        "ip": client_address(request),
        "method": request.method if request is not None else "",
        "path": request.path if request is not None else "",
        "details": _clean(details),
    }
    # JSON escapes \n and \r; the other characters that some readers take for a line break are escaped too.
    logger.info(json.dumps(entry, ensure_ascii=False, sort_keys=False).translate(LINE_BREAKS))
    if request is not None:
        # What this request has logged: SecurityLogMiddleware does not log a refusal a second time.
        request._security_outcomes = (*getattr(request, "_security_outcomes", ()), outcome)
    return entry


# Sign-in events (connected in apps.GuidelinesConfig.ready). Django's user_login_failed hands over the
# submitted credentials with the password masked; only the login name is taken from them, never more.

LOGIN_FIELDS = ("email", "username", "login")


def on_login(sender, request, user, **kwargs):
    security_event("login", request=request, user=user, backend=getattr(user, "backend", ""))


def on_login_failed(sender, credentials, request=None, **kwargs):
    attempted = next((credentials[name] for name in LOGIN_FIELDS if credentials.get(name)), "")
    security_event("login_failed", request=request, outcome="failure", attempted_login=attempted)


def on_logout(sender, request, user, **kwargs):
    security_event("logout", request=request, user=user)
