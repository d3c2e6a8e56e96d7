"""Claiming every e-mail in the notification log before it is sent, sending, marking, retrying."""

import random
import smtplib
import time
from datetime import timedelta

from django.conf import settings
from django.core import mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import (
    ERROR_TEXT_LIMIT,
    NotificationItem,
    NotificationLog,
)
from .composing import build_message, employee_names, version_titles

Kind = NotificationLog.Kind


CLAIM_LEASE = timedelta(minutes=15)
# Sent rows are marked in groups of 25, or after half a second: a crash between two marks re-sends
# at most those e-mails (their stable Message-ID lets mail systems recognise the copies).
MARK_SENT_EVERY = 25
MARK_SENT_AFTER = 0.5


def claim(outgoing, *, day, claimed_by, requested_by=None):
    """Insert a log row per outgoing e-mail unless its key is taken; return (outgoing e-mail, log) for the rows this
    task may send: the new ones, its own unsent ones (a redelivery) and abandoned ones."""
    now = timezone.now()
    by_key = {outgoing_email.key: outgoing_email for outgoing_email in outgoing}
    with transaction.atomic():
        # A retry composes again: whoever acknowledged since the first attempt needs no e-mail.
        NotificationLog.objects.filter(claimed_by=claimed_by, status=NotificationLog.Status.CLAIMED).exclude(
            idempotency_key__in=by_key
        ).update(status=NotificationLog.Status.CANCELLED)
        if not outgoing:
            return []
        NotificationLog.objects.bulk_create(
            [
                NotificationLog(idempotency_key=outgoing_email.key, kind=outgoing_email.kind,
                                recipient=outgoing_email.recipient, email=outgoing_email.recipient.user.email,
                                language=outgoing_email.recipient.language, day=day, claimed_by=claimed_by,
                                claimed_at=now, requested_by=requested_by)
                for outgoing_email in outgoing
            ],
            ignore_conflicts=True,
        )
        unsent = NotificationLog.objects.filter(idempotency_key__in=by_key, status=NotificationLog.Status.CLAIMED)
        abandoned = unsent.filter(claimed_at__lt=now - CLAIM_LEASE).exclude(claimed_by=claimed_by)
        abandoned.update(claimed_by=claimed_by, claimed_at=now)
        logs = list(unsent.filter(claimed_by=claimed_by))
        with_items = set(
            NotificationItem.objects.filter(notification__in=logs).values_list("notification_id", flat=True)
        )
        NotificationItem.objects.bulk_create(
            NotificationItem(notification=log, version_id=owed.version_pk, employee_id=owed.employee_pk,
                             due_date=owed.due_date)
            for log in logs
            if log.pk not in with_items
            for owed in by_key[log.idempotency_key].items
        )
    return [(by_key[log.idempotency_key], log) for log in logs]


class TransientFailure(Exception):
    """The mail server could not take the message now; the task retries later."""


def _is_permanent(error):
    """5xx replies (unknown mailbox, message refused) will not change on retry; 4xx and network errors may."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _message in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


def deliver(claimed, *, day):
    """Send the claimed e-mails over one connection; mark them sent (or failed for good).

    Raises TransientFailure on the first temporary error: the task retries, and its claims (same
    task id) carry over. Returns the number sent.
    """
    if not claimed:
        return 0
    titles = version_titles({owed.version_pk for outgoing_email, _log in claimed for owed in outgoing_email.items})
    names = employee_names({owed.employee_pk for outgoing_email, _log in claimed
                            if outgoing_email.kind == Kind.ESCALATION for owed in outgoing_email.items})
    sent, total, marked_at, rendered = [], 0, time.monotonic(), {}
    connection = mail.mailers.default
    try:
        with connection:
            for outgoing_email, log in claimed:
                message = build_message(outgoing_email, log, titles=titles, names=names, day=day, rendered=rendered)
                try:
                    connection.send_messages([message])
                except (smtplib.SMTPException, OSError) as error:
                    if not _is_permanent(error):
                        raise TransientFailure(f"{type(error).__name__}: {error}") from error
                    _mark_failed([log.pk], f"{type(error).__name__}: {error}")
                    continue
                sent.append(log.pk)
                if len(sent) >= MARK_SENT_EVERY or time.monotonic() - marked_at >= MARK_SENT_AFTER:
                    total += _mark_sent(sent)
                    sent, marked_at = [], time.monotonic()
    except (smtplib.SMTPException, OSError) as error:  # opening or closing the connection
        raise TransientFailure(f"{type(error).__name__}: {error}") from error
    finally:
        total += _mark_sent(sent)
    return total


def _mark_sent(pks):
    if not pks:
        return 0
    return NotificationLog.objects.filter(pk__in=pks).update(
        status=NotificationLog.Status.SENT, sent_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
    )


def _mark_failed(pks, error):
    NotificationLog.objects.filter(pk__in=pks).update(
        status=NotificationLog.Status.FAILED, attempts=F("attempts") + 1, last_error=error[:ERROR_TEXT_LIMIT]
    )


def record_attempt(claimed_by, keys, error):
    """A temporary failure: the claims stay open for the retry, with the error for HR to see."""
    NotificationLog.objects.filter(
        idempotency_key__in=keys, claimed_by=claimed_by, status=NotificationLog.Status.CLAIMED
    ).update(attempts=F("attempts") + 1, last_error=error[:ERROR_TEXT_LIMIT])


def give_up(claimed_by, keys, error):
    """Retries are exhausted: the remaining claims are failed, visible to HR, never silently dropped."""
    pks = NotificationLog.objects.filter(
        idempotency_key__in=keys, claimed_by=claimed_by, status=NotificationLog.Status.CLAIMED
    ).values_list("pk", flat=True)
    _mark_failed(list(pks), error)


def retry_delay(retries):
    """Exponential backoff with jitter, capped below the broker's visibility timeout."""
    ceiling = min(settings.EMAIL_RETRY_BACKOFF * 2**retries, settings.EMAIL_RETRY_BACKOFF_MAX)
    return max(1, round(random.uniform(ceiling / 2, ceiling)))


def run_batch(outgoing, *, day, claimed_by, requested_by=None):
    """Claim and send. Returns the number sent; raises TransientFailure for the task to retry."""
    claimed = claim(outgoing, day=day, claimed_by=claimed_by, requested_by=requested_by)
    try:
        return deliver(claimed, day=day)
    except TransientFailure as failure:
        record_attempt(claimed_by, [outgoing_email.key for outgoing_email, _log in claimed], str(failure))
        raise
