"""Signed webhooks: HR's subscribers, where they may point, and delivering an event to one of them.

Signatures follow Standard Webhooks (https://www.standardwebhooks.com/): the headers `webhook-id`
(the delivery's message id, the same on every attempt), `webhook-timestamp` (Unix seconds of this
attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with
the base64-decoded part of the subscriber's `whsec_…` secret.

Delivery is at least once: a task that is redelivered or retried may send the same message again,
with the same id, and the receiver drops repeats by that id. A failed attempt is retried with
exponential backoff; a delivery given up on counts towards the subscriber's failure streak, and
WEBHOOK_DISABLE_AFTER of them in a row disable it (its page says why). A delivery whose task never
reached a worker is queued again by a sweep; HR can have what a disabled subscriber missed sent
when enabling it again.

HR chooses the address, so the address is a way into the network behind the workers (SSRF).
Unless WEBHOOK_ALLOW_PRIVATE, the host must resolve to public addresses only when it is saved,
and the address the worker actually connects to is checked again before a byte is sent (so a DNS
answer that changes in between does not help); redirects are never followed, proxies from the
environment never used.
"""

import base64
import hashlib
import hmac
import ipaddress
import random
import secrets
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, Max, Min, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .access import require_permission
from .accounts import second_factor_cipher
from .models import ERROR_TEXT_LIMIT, AuditEvent, WebhookDelivery, WebhookEvent, WebhookSubscriber
from .security import security_event
from .services import record_audit_event
from .webhook_events import new_message_id

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
Status = WebhookDelivery.Status


# Secrets and signatures ---------------------------------------------------------------------------


def new_secret():
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_of(subscriber):
    return second_factor_cipher().decrypt(subscriber.secret_encrypted.encode()).decode()


def signature(secret, message_id, timestamp, body):
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret, message_id, body, timestamp=None):
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "user-agent": "guidelines-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


# Where a webhook may point ------------------------------------------------------------------------


def forbidden_address(address):
    """True for an address the workers must not call unless WEBHOOK_ALLOW_PRIVATE: anything not
    globally routable (private, loopback, link-local, shared, reserved, unspecified) and multicast."""
    address = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone index is no part of it
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_url(url, *, resolve=True):
    """Raise ValidationError (for the form's address field) unless `url` may receive webhooks."""
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.DEBUG else ("https",)
    if parts.scheme not in allowed:
        raise ValidationError(_("The address must start with https://."), code="scheme")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(_("The address may not contain a user name or password; the signature "
                                "authenticates every delivery."), code="credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationError(_("The port in this address is not valid."), code="port") from None
    if not parts.hostname:
        raise ValidationError(_("The address needs a host name."), code="host")
    if resolve and not settings.WEBHOOK_ALLOW_PRIVATE:
        try:
            found = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
        except (OSError, UnicodeError):
            raise ValidationError(_("The host %(host)s cannot be found.") % {"host": parts.hostname},
                                  code="dns") from None
        if any(forbidden_address(address) for address in found):
            raise ValidationError(_("The host %(host)s points to an internal network address; webhooks go to "
                                    "public addresses only.") % {"host": parts.hostname}, code="private")


class DestinationRefused(Exception):
    """The connection went to an address the settings forbid; nothing was sent."""


def _check_peer(sock):
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return
    peer = sock.getpeername()[0]
    if forbidden_address(peer):
        sock.close()
        raise DestinationRefused(f"refused to send to the internal address {peer}")


class _CheckedHTTPConnection(HTTPConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        _check_peer(sock)
        return sock


class _CheckedHTTPSConnection(HTTPSConnection):
    def _new_conn(self):  # before the TLS handshake: not even a ClientHello reaches a forbidden address
        sock = super()._new_conn()
        _check_peer(sock)
        return sock


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}


_session = None


def http_session():
    """One session per worker process (connections to a receiver are kept open between deliveries),
    ignoring the environment's proxies and .netrc, with every connection's peer checked."""
    global _session
    if _session is None:
        session = requests.Session()
        session.trust_env = False
        session.mount("http://", _CheckedAdapter())
        session.mount("https://", _CheckedAdapter())
        _session = session
    return _session


# HR's subscribers ---------------------------------------------------------------------------------


def check_events(events):
    unknown = sorted(set(events) - set(WebhookSubscriber.Event.values))
    if not events or unknown:
        raise ValidationError({"events": _("Choose at least one event.")})


def add_subscriber(*, by, name, url, events):
    """Record a subscriber; returns it with its secret, which is shown once and stored encrypted."""
    require_permission(by, "guidelines.manage")
    try:
        check_url(url)
    except ValidationError as error:
        raise ValidationError({"url": error.messages}) from None
    check_events(events)
    secret = new_secret()
    subscriber = WebhookSubscriber.objects.create(
        name=name, url=url, events=sorted(set(events)), created_by=by,
        secret_encrypted=second_factor_cipher().encrypt(secret.encode()).decode(),
    )
    host = urlsplit(url).hostname  # not the whole address: a query string may hold the receiver's own token
    record_audit_event(action=AuditEvent.Action.WEBHOOK_ADDED, actor=by, subscriber=subscriber.pk, name=name,
                       host=host, events=subscriber.events)
    security_event("webhook_added", user=by, subscriber=subscriber.pk, host=host, events=subscriber.events)
    return subscriber, secret


def disable(subscriber, *, by, reason=""):
    """Stop deliveries to a subscriber; `by` None means automatically, after failed deliveries."""
    if by is not None:
        require_permission(by, "guidelines.manage")
    with transaction.atomic():
        subscriber = WebhookSubscriber.objects.select_for_update().get(pk=subscriber.pk)
        if not subscriber.is_active:
            return subscriber
        subscriber.is_active, subscriber.disabled_at, subscriber.disabled_by = False, timezone.now(), by
        subscriber.disabled_reason = reason[:500]
        subscriber.save(update_fields=["is_active", "disabled_at", "disabled_by", "disabled_reason"])
        record_audit_event(action=AuditEvent.Action.WEBHOOK_DISABLED, actor=by, subscriber=subscriber.pk,
                           name=subscriber.name, automatic=by is None, failure_streak=subscriber.failure_streak)
        security_event("webhook_disabled", user=by, subscriber=subscriber.pk, automatic=by is None,
                       failure_streak=subscriber.failure_streak)
    return subscriber


def enable(subscriber, *, by, resend_missed=False):
    """Deliver again, starting a new failure streak. With `resend_missed`, the events it missed
    (missed_since) are sent too, by a task: there may be many."""
    require_permission(by, "guidelines.manage")
    with transaction.atomic():
        subscriber = WebhookSubscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.is_active:
            return subscriber
        since = missed_since(subscriber) if resend_missed else None
        subscriber.is_active, subscriber.failure_streak = True, 0
        subscriber.save(update_fields=["is_active", "failure_streak"])
        record_audit_event(action=AuditEvent.Action.WEBHOOK_ENABLED, actor=by, subscriber=subscriber.pk,
                           name=subscriber.name, resend_missed_since=since and since.isoformat())
        security_event("webhook_enabled", user=by, subscriber=subscriber.pk)
        if since is not None:
            from . import tasks  # tasks imports this module

            transaction.on_commit(lambda: tasks.resend_missed_webhooks.delay(subscriber.pk, since.isoformat()))
    return subscriber


def missed_since(subscriber):
    """When the events a disabled subscriber missed began: its first delivery that did not arrive
    after the last one that did, or else when it was disabled."""
    # By the events' times, which missed_events compares.
    deliveries = subscriber.deliveries.all()
    last_delivered = deliveries.filter(status=Status.DELIVERED).aggregate(at=Max("event__created_at"))["at"]
    undelivered = deliveries.filter(status__in=[Status.FAILED, Status.CANCELLED])
    if last_delivered is not None:
        undelivered = undelivered.filter(event__created_at__gt=last_delivered)
    first_undelivered = undelivered.aggregate(at=Min("event__created_at"))["at"]
    moments = [moment for moment in (first_undelivered, subscriber.disabled_at) if moment is not None]
    return min(moments) if moments else None


def missed_events(subscriber, since):
    """The events of the subscriber's kinds since `since` that it has no delivered delivery of."""
    delivered = WebhookDelivery.objects.filter(event=OuterRef("pk"), subscriber=subscriber, status=Status.DELIVERED)
    return WebhookEvent.objects.filter(created_at__gte=since, type__in=subscriber.events).exclude(Exists(delivered))


def resend_missed(subscriber_pk, since):
    """Deliveries again for the events the subscriber missed since `since`: one it failed or that
    was cancelled is pending again with its own webhook-id (a receiver that did get it drops the
    repeat), one recorded while it was disabled is created. Returns the pks to queue; nothing while
    it is disabled."""
    with transaction.atomic():
        subscriber = WebhookSubscriber.objects.select_for_update().get(pk=subscriber_pk)
        if not subscriber.is_active:
            return []
        events = missed_events(subscriber, since)
        again = list(WebhookDelivery.objects.filter(subscriber=subscriber, event__in=events.values("pk"))
                     .exclude(status=Status.PENDING).values_list("pk", flat=True))
        WebhookDelivery.objects.filter(pk__in=again).update(status=Status.PENDING, attempts=0, last_error="",
                                                            response_status=None)
        created = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(event_id=pk, subscriber=subscriber, message_id=new_message_id())
            for pk in events.exclude(deliveries__subscriber=subscriber).values_list("pk", flat=True)
        )
    return again + [delivery.pk for delivery in created]


def stalled_deliveries(now=None):
    """Pending deliveries nothing has happened to for longer than any retry waits: their task never
    reached the broker (it was down when the change committed) or was lost. The sweep queues them
    again; should the task still be alive after all, the receiver gets the message twice with one id."""
    now = now or timezone.now()
    quiet_since = now - timedelta(seconds=stall_seconds())
    return list(WebhookDelivery.objects.filter(status=Status.PENDING)
                .filter(Q(last_attempt_at__lt=quiet_since) | Q(last_attempt_at=None, created_at__lt=quiet_since))
                .order_by("pk").values_list("pk", flat=True))


def stall_seconds():
    """Longer than the longest retry wait plus an attempt, with room for a busy queue."""
    return settings.WEBHOOK_RETRY_BACKOFF_MAX + settings.WEBHOOK_TIMEOUT + settings.WEBHOOK_STALLED_AFTER


# Delivering ---------------------------------------------------------------------------------------


class TransientFailure(Exception):
    """The receiver did not take the message this time; the task retries later. `attempts` counts
    this delivery's attempts so far, whichever task made them."""

    def __init__(self, error, attempts):
        super().__init__(error)
        self.attempts = attempts


def deliver(delivery_pk):
    """One attempt to send a pending delivery. Returns its status; raises TransientFailure when
    the receiver did not answer with 2xx (or could not be reached, or is forbidden)."""
    delivery = WebhookDelivery.objects.select_related("event", "subscriber").get(pk=delivery_pk)
    if delivery.status != Status.PENDING:  # a redelivered task after the outcome was recorded
        return delivery.status
    subscriber = delivery.subscriber
    if not subscriber.is_active:
        WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING).update(status=Status.CANCELLED)
        return Status.CANCELLED
    body = delivery.event.body
    headers = signed_headers(secret_of(subscriber), delivery.message_id, body)
    response_status = None
    try:
        check_url(subscriber.url, resolve=False)  # the settings may have changed since it was saved
        response = http_session().post(subscriber.url, data=body.encode(), headers=headers,
                                       timeout=settings.WEBHOOK_TIMEOUT, allow_redirects=False, stream=True)
        response.close()  # the receiver's answer body is not ours to read
        response_status = response.status_code
        if 200 <= response_status < 300:
            _mark_delivered(delivery, response_status)
            return Status.DELIVERED
        error = f"HTTP {response_status} {response.reason or ''}".strip()
    except ValidationError as refused:
        error = " ".join(refused.messages)
    except DestinationRefused as refused:
        error = str(refused)
    except requests.RequestException as failure:
        error = f"{type(failure).__name__}: {failure}"
    WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING).update(
        attempts=F("attempts") + 1, last_attempt_at=timezone.now(), response_status=response_status,
        last_error=error[:ERROR_TEXT_LIMIT],
    )
    raise TransientFailure(error, delivery.attempts + 1)


def _mark_delivered(delivery, response_status):
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.PENDING).update(
        status=Status.DELIVERED, attempts=F("attempts") + 1, last_attempt_at=now, delivered_at=now,
        response_status=response_status, last_error="",
    )
    # Only when there is a streak to end (as loaded with the delivery): most deliveries write nothing more.
    if delivery.subscriber.failure_streak:
        WebhookSubscriber.objects.filter(pk=delivery.subscriber_id).update(failure_streak=0)


def give_up(delivery_pk, error):
    """Retries are exhausted: the delivery failed for good and counts towards disabling its subscriber."""
    with transaction.atomic():
        failed = WebhookDelivery.objects.filter(pk=delivery_pk, status=Status.PENDING).update(
            status=Status.FAILED, last_error=error[:ERROR_TEXT_LIMIT])
        if not failed:
            return
        subscriber_pk = WebhookDelivery.objects.values_list("subscriber_id", flat=True).get(pk=delivery_pk)
        subscriber = WebhookSubscriber.objects.select_for_update().get(pk=subscriber_pk)
        subscriber.failure_streak += 1
        subscriber.save(update_fields=["failure_streak"])
        if subscriber.is_active and subscriber.failure_streak >= settings.WEBHOOK_DISABLE_AFTER:
            disable(subscriber, by=None, reason=error)


def retry_delay(retries):
    """Exponential backoff with jitter, capped below the broker's visibility timeout."""
    ceiling = min(settings.WEBHOOK_RETRY_BACKOFF * 2**retries, settings.WEBHOOK_RETRY_BACKOFF_MAX)
    return max(1, round(random.uniform(ceiling / 2, ceiling)))
