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

logger = logging.getLogger("security")

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
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


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
    logger.info(json.dumps(entry, ensure_ascii=False, sort_keys=False))
    return entry
