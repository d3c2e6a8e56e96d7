"""Webhook events: what happened, as the small JSON document every subscriber receives.

The services that make something happen (publishing, acknowledging, an objection and HR's handling of
it, a finished report, the daily overdue check) call `emit` inside their transaction, which records
the event with one delivery row per subscriber that wants it in that same transaction (an outbox): the
change and its event commit together or not at all. The deliveries are queued once it commits
(webhooks.py sends them); a delivery the broker never got, or whose task was lost, is queued again by
the sweep (webhooks.stalled_deliveries). The body follows the Standard Webhooks recommendation,
`{"type", "timestamp", "data"}`, and carries ids, slugs, version numbers, times, counts, an
acknowledgement's sequence and seal, an objection's kind and hash and its handling's outcome; never
free text beyond a guideline's slug and titles (no name, no statement, no employee's reason, no HR
note: a receiver that needs them asks the API, with a token that may read them).
"""

import json
import logging
import secrets
from datetime import UTC

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import dashboards
from .models import Version, WebhookDelivery, WebhookEvent, WebhookSubscriber

logger = logging.getLogger(__name__)
Event = WebhookSubscriber.Event


def _moment(value):
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if value else None


def _guideline(guideline):
    return {"id": guideline.pk, "slug": guideline.slug, "title_nl": guideline.title_nl,
            "title_en": guideline.title_en}


def _version(version):
    return {"id": version.pk, "number": version.number, "material": version.is_material,
            "published_at": _moment(version.published_at)}


def version_published(version, guideline):
    return {"guideline": _guideline(guideline), "version": _version(version)}


def acknowledgement_created(acknowledgement, version):
    return {
        "guideline": {"id": version.guideline_id, "slug": version.guideline.slug},
        "version": {"id": version.pk, "number": version.number},
        "acknowledgement": {
            "id": acknowledgement.pk, "sequence": acknowledgement.sequence, "seal": acknowledgement.seal,
            "acknowledged_at": _moment(acknowledgement.acknowledged_at), "language": acknowledgement.language,
            "channel": acknowledgement.channel,
        },
        "employee_number": acknowledgement.employee_number,
    }


def objection_recorded(objection):
    return {
        "guideline": {"id": objection.guideline_id, "slug": objection.guideline.slug},
        "version": {"id": objection.version_id, "number": objection.version.number},
        "objection": {
            "id": objection.pk, "kind": objection.kind, "recorded_at": _moment(objection.recorded_at),
            "language": objection.language, "content_hash": objection.content_hash,
        },
        "employee_number": objection.employee_number,
    }


def objection_resolved(resolution):
    return objection_recorded(resolution.objection) | {"resolution": {
        "id": resolution.pk, "outcome": resolution.outcome, "resolved_at": _moment(resolution.resolved_at),
        "exemption_id": resolution.exemption_id,
    }}


def version_overdue(version, counts, day):
    return {
        "guideline": _guideline(version.guideline), "version": _version(version), "day": day.isoformat(),
        "counts": {"in_scope": counts.in_scope, "acknowledged": counts.acknowledged, "pending": counts.pending,
                   "overdue": counts.overdue, "exempt": counts.exempt},
    }


def report_ready(report):
    return {
        "report": {"id": report.pk, "kind": report.kind, "verification_code": report.verification_code,
                   "language": report.language, "pages": report.pages, "rows": report.rows,
                   "sha256": report.sha256, "finished_at": _moment(report.finished_at)},
        "guideline": {"id": report.guideline_id, "slug": report.guideline.slug} if report.guideline_id else None,
    }


def emit(event_type, key, data, *, at=None):
    """Record the event in the current transaction and queue its deliveries once that commits (at
    once outside one). `key` names what it is about; an event with a key already recorded is not
    recorded again."""
    deliveries = record(event_type, key, data, at or timezone.now())
    if deliveries:
        transaction.on_commit(lambda: queue(deliveries))


def queue(deliveries):
    """Hand the deliveries to the workers. A broker that does not answer loses nothing: they stay
    pending in the database, and the sweep queues them again."""
    # tasks imports services, which emits: imported here, when the first event goes out.
    from . import tasks

    for delivery_pk in deliveries:
        try:
            tasks.deliver_webhook.delay(delivery_pk)
        except Exception:
            logger.exception("Could not queue webhook delivery %s; the sweep queues it again", delivery_pk)
            return


def subscribers_for(event_type):
    """The subscribers that want this kind of event, as (pk, is_active)."""
    # In Python: the list is short, and SQLite has no JSON containment lookup.
    return [(pk, is_active) for pk, events, is_active
            in WebhookSubscriber.objects.values_list("pk", "events", "is_active") if event_type in events]


def new_message_id():
    return f"msg_{secrets.token_urlsafe(18)}"


def record(event_type, key, data, occurred):
    """The event and a pending delivery per active subscriber that wants it; returns the deliveries'
    pks. An event a disabled subscriber wants is recorded too, to be resent when it is enabled again."""
    wanted_by = subscribers_for(event_type)
    if not wanted_by:
        return []
    subscribers = [pk for pk, is_active in wanted_by if is_active]
    body = json.dumps({"type": event_type, "timestamp": _moment(occurred), "data": data},
                      separators=(",", ":"), ensure_ascii=False)
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(type=event_type, key=key, body=body)
            deliveries = WebhookDelivery.objects.bulk_create(
                WebhookDelivery(event=event, subscriber_id=pk, message_id=new_message_id()) for pk in subscribers
            )
    except IntegrityError:  # recorded before (a task that ran twice, a second beat)
        return []
    return [delivery.pk for delivery in deliveries]


def announce_overdue_versions(day):
    """One version.overdue event per current version with overdue employees on `day`, with the
    counts the dashboards show (dashboards.version_counts, the one status engine)."""
    versions = list(Version.objects.published().select_related("guideline").filter(guideline__retired_at=None))
    counts = dashboards.version_counts(versions, day)
    announced = 0
    for version in versions:
        if counts[version.pk].overdue:
            emit(Event.VERSION_OVERDUE, f"{Event.VERSION_OVERDUE}:{version.pk}:{day.isoformat()}",
                 version_overdue(version, counts[version.pk], day))
            announced += 1
    return announced
