"""API tokens: who may issue them, to whom, what they look like, and how one is checked.

A token reads `gl_<key>_<secret>`. The key is public (lists, the security log) and finds the row; the
secret has 256 bits of entropy, so one SHA-256 of it is enough at rest (a slow password hash guards
guessable secrets, which these are not). A token acts as its service account: the account's roles
decide what it may see, exactly as on the pages, and the token's scopes narrow that further."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .accounts import prime_permissions, with_permission_ids
from .models import ApiToken, AuditEvent
from .prepared import PreparedQuery
from .security import security_event
from .services import record_audit_event

PREFIX = "gl"
KEY_BYTES = 8  # 16 hex characters
SECRET_BYTES = 32


# Every API request asks this; building and compiling it cost more than running it (bench/bench_api.py).
_token_by_key = PreparedQuery(
    ApiToken,
    lambda key_id: with_permission_ids(ApiToken.objects.select_related("account"), "account_id").filter(key_id=key_id),
    str)


def _digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def require_token_admin(user):
    """Only superusers issue and revoke tokens: a token acts for an account without its second factor."""
    if user is None or not user.is_active or not user.is_superuser:
        raise PermissionDenied(_("Only a superuser may issue or revoke API tokens."))


def check_account(account):
    """A token is issued to a service account: active, no password to sign in with, not a superuser.
    So a person's account is never driven by a script that skips their second factor, and no token
    holds every permission at once."""
    if not account.is_active:
        raise ValidationError({"account": _("This account is deactivated.")})
    if account.is_superuser:
        raise ValidationError({"account": _("A token may not act as a superuser; give the service account "
                                            "only the roles it needs.")})
    if account.has_usable_password():
        raise ValidationError({"account": _("This account can sign in with a password. Issue tokens to a "
                                            "service account without one.")})


def check_scopes(scopes):
    unknown = sorted(set(scopes) - set(ApiToken.Scope.values))
    if not scopes or unknown:
        raise ValidationError({"scopes": _("Choose at least one scope.") if not scopes
                               else _("Unknown scope: %(scopes)s.") % {"scopes": ", ".join(unknown)}})


def check_expiry(expires_at, now=None):
    now = now or timezone.now()
    longest = timedelta(days=settings.API_TOKEN_MAX_DAYS)
    if expires_at <= now:
        raise ValidationError({"expires_at": _("Choose a moment in the future.")})
    if expires_at > now + longest:
        raise ValidationError({"expires_at": _("A token lives at most %(days)d days.")
                               % {"days": settings.API_TOKEN_MAX_DAYS}})


def issue(*, by, name, account, scopes, expires_at):
    """Record a new token and return it with its plain text, which is never stored and never shown again."""
    require_token_admin(by)
    check_account(account)
    check_scopes(scopes)
    check_expiry(expires_at)
    key_id, secret = secrets.token_hex(KEY_BYTES), secrets.token_urlsafe(SECRET_BYTES)
    token = ApiToken.objects.create(
        name=name, account=account, scopes=sorted(set(scopes)), key_id=key_id, secret_hash=_digest(secret),
        created_by=by, expires_at=expires_at,
    )
    record_audit_event(action=AuditEvent.Action.API_TOKEN_ISSUED, actor=by, client_id=key_id, client=name,
                       account=account.get_username(), scopes=token.scopes, expires_at=expires_at.isoformat())
    security_event("api_token_issued", user=by, client_id=key_id, account=account.get_username(),
                   scopes=token.scopes)
    return token, f"{PREFIX}_{key_id}_{secret}"


def revoke(token, *, by):
    require_token_admin(by)
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is None:
            token.revoked_at, token.revoked_by = timezone.now(), by
            token.save(update_fields=["revoked_at", "revoked_by"])
            record_audit_event(action=AuditEvent.Action.API_TOKEN_REVOKED, actor=by, client_id=token.key_id,
                               client=token.name)
            security_event("api_token_revoked", user=by, client_id=token.key_id)
    return token


class Refused(Exception):
    """Why a presented token does not open the door (for the security log; the client hears less)."""


def authenticate(raw):
    """The live token that `raw` is, else Refused. The comparison takes the same time whatever matches."""
    prefix, _sep, rest = (raw or "").partition("_")
    key_id, _sep, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret or "\x00" in raw:
        raise Refused("malformed")
    # The account's permissions in the same query: the role checks that follow then ask nothing more.
    token = next(iter(_token_by_key(key_id[:32])), None)
    if token is None or not hmac.compare_digest(token.secret_hash, _digest(secret)):
        raise Refused("unknown")
    now = timezone.now()
    if token.revoked_at is not None:
        raise Refused("revoked")
    if token.expires_at <= now:
        raise Refused("expired")
    account = token.account
    if not account.is_active:
        raise Refused("account deactivated")
    # Checked at every use, not only at issue: an account made superuser or given a password since
    # would otherwise lend the token more than it was issued for.
    if account.is_superuser or account.has_usable_password():
        raise Refused("no longer a service account")
    prime_permissions(token.account, token)
    # At most one write a minute per token: the security log has every use, this is for the admin's list.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
