"""Celery entry points. They move ids between the broker and guidelines.notifications, nothing more.

Every task here is safe to run twice (acks_late + reject_on_worker_lost redeliver after a crash):
e-mails are claimed in the notification log before they are sent.
"""

from datetime import date, datetime

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from . import checkpoints, notifications, services, webhook_events, webhooks
from .models import NotificationLog, Report, Version, WebhookDelivery
from .reports import jobs


@shared_task(acks_late=True)
def verify_evidence_chain():
    """Nightly check of the acknowledgement chain; the result is stored as an audit event."""
    result = services.verify_evidence()
    return {"intact": result.intact, "checked": result.checked, "first_break": result.first_break_sequence}


@shared_task(acks_late=True, autoretry_for=(checkpoints.TimestampUnavailable, checkpoints.CheckpointRace),
             retry_backoff=60,
             retry_backoff_max=3600, max_retries=8)
def make_checkpoint():
    """Beat's daily checkpoint of the evidence chain (guidelines.checkpoints). A time-stamping
    authority that does not answer is asked again, later and later, for some hours."""
    checkpoint = checkpoints.make()
    return {"head_sequence": checkpoint.head_sequence, "digest": checkpoint.digest}


def _day(value):
    return date.fromisoformat(value) if value else timezone.localdate()


@shared_task(acks_late=True)
def plan_reminders(day=None):
    """Beat's daily entry: hand out the reminder and escalation batches of the day."""
    day = _day(day)
    plan = notifications.plan_cycle(
        day,
        enqueue_reminders=lambda ids: send_reminders.delay(ids, day.isoformat()),
        enqueue_escalations=lambda ids: send_escalations.delay(ids, day.isoformat()),
    )
    return {"day": day.isoformat(), "employees": plan.employees, "managers": plan.managers}


@shared_task(acks_late=True)
def announce_version(version_id):
    """After a publication commits: batches of announcements to the audience."""
    version = Version.objects.select_related("guideline").get(pk=version_id)
    return notifications.plan_announcement(version, enqueue=lambda ids: send_announcements.delay(version_id, ids))


@shared_task(acks_late=True)
def nudge_version(version_id, user_id):
    version = Version.objects.select_related("guideline").get(pk=version_id)
    user = get_user_model().objects.get(pk=user_id)
    return notifications.plan_nudge(
        version, user, enqueue=lambda ids: send_nudges.delay(ids, timezone.localdate().isoformat(), version_id,
                                                             user_id)
    )


def _send(task, outgoing, day, requested_by=None):
    """Claim and send under this task's id; on a temporary SMTP failure retry with backoff, and
    once retries are exhausted record the remaining e-mails as failed."""
    try:
        return notifications.run_batch(outgoing, day=day, claimed_by=task.request.id, requested_by=requested_by)
    except notifications.TransientFailure as failure:
        if task.request.retries >= settings.EMAIL_MAX_RETRIES:
            notifications.give_up(task.request.id, [outgoing_email.key for outgoing_email in outgoing], str(failure))
            return 0
        raise task.retry(countdown=notifications.retry_delay(task.request.retries), exc=failure,
                         max_retries=settings.EMAIL_MAX_RETRIES) from failure


@shared_task(bind=True, acks_late=True)
def send_reminders(self, employee_ids, day):
    day = _day(day)
    return _send(self, notifications.compose_digests(employee_ids, day), day)


@shared_task(bind=True, acks_late=True)
def send_nudges(self, employee_ids, day, version_id, user_id):
    day = _day(day)
    version = Version.objects.get(pk=version_id)
    outgoing = notifications.compose_digests(employee_ids, day, kind=NotificationLog.Kind.NUDGE, version=version)
    return _send(self, outgoing, day, requested_by=get_user_model().objects.filter(pk=user_id).first())


@shared_task(bind=True, acks_late=True)
def send_escalations(self, manager_ids, day):
    day = _day(day)
    return _send(self, notifications.compose_escalations(manager_ids, day), day)


@shared_task(bind=True, acks_late=True)
def send_announcements(self, version_id, employee_ids):
    day = timezone.localdate()
    version = Version.objects.get(pk=version_id)
    return _send(self, notifications.compose_announcements(version, employee_ids, day), day)


@shared_task(bind=True, acks_late=True)
def ask_approvers(self, version_id, user_id, employee_ids):
    """After approval of a draft was requested: one e-mail to each approver (their employee ids)."""
    day = timezone.localdate()
    requested_by = get_user_model().objects.filter(pk=user_id).first()
    outgoing = notifications.compose_approval_requests(version_id, employee_ids, requested_by=requested_by)
    return _send(self, outgoing, day, requested_by=requested_by)


@shared_task(bind=True, acks_late=True)
def send_question_emails(self, kind, pk):
    """After a question, follow-up, answer, objection or HR's handling of one commits (guidelines.questions):
    its e-mail to the guideline's owner or to the employee."""
    day = timezone.localdate()
    return _send(self, notifications.compose_question_emails(kind, pk), day)


# Reports: prepare once, render the table chunks in parallel, join them when the last one is done.


@shared_task(acks_late=True)
def generate_report(report_id):
    report = Report.objects.select_related("guideline", "requested_by").get(pk=report_id)
    if report.status in (Report.Status.DONE, Report.Status.FAILED):
        return
    try:
        # A redelivered task finds the plan (prepare writes it last) and only sends what is missing.
        plan = jobs.plan_of(report) or jobs.prepare(report)
    except Exception as error:
        jobs.fail(report, error)
        raise
    missing = jobs.missing_chunks(report, plan)
    for index in missing:
        render_report_chunk.delay(report_id, index)
    if not missing:
        finish_report.delay(report_id)


@shared_task(acks_late=True)
def render_report_chunk(report_id, index):
    report = Report.objects.select_related("guideline", "requested_by").get(pk=report_id)
    if report.status != Report.Status.RUNNING:
        return
    try:
        last = jobs.render_chunk(report, index)
    except Exception as error:
        jobs.fail(report, error)
        raise
    if last:
        finish_report.delay(report_id)


@shared_task(acks_late=True)
def finish_report(report_id):
    report = Report.objects.get(pk=report_id)
    if report.status == Report.Status.RUNNING:
        try:
            jobs.finish(report)
        except Exception as error:
            jobs.fail(report, error)
            raise


# Webhooks: one delivery per task, retried with backoff; at least once, under one webhook-id.


@shared_task(bind=True, acks_late=True)
def deliver_webhook(self, delivery_id):
    try:
        return webhooks.deliver(delivery_id)
    except webhooks.TransientFailure as failure:
        # Counted on the delivery, not the task: a delivery queued again by the sweep or resent by HR
        # goes on from its own count.
        if failure.attempts > settings.WEBHOOK_MAX_RETRIES:
            webhooks.give_up(delivery_id, str(failure))
            return WebhookDelivery.Status.FAILED
        raise self.retry(countdown=webhooks.retry_delay(failure.attempts - 1), exc=failure,
                         max_retries=None) from failure


@shared_task(acks_late=True)
def requeue_stalled_webhooks():
    """Beat's sweep: pending deliveries whose task never reached a worker are queued again."""
    stalled = webhooks.stalled_deliveries()
    webhook_events.queue(stalled)
    return {"queued": len(stalled)}


@shared_task(acks_late=True)
def resend_missed_webhooks(subscriber_id, since):
    """What a subscriber missed while disabled, sent after HR enabled it again (webhooks.enable)."""
    deliveries = webhooks.resend_missed(subscriber_id, datetime.fromisoformat(since))
    webhook_events.queue(deliveries)
    return {"resent": len(deliveries)}


@shared_task(acks_late=True)
def announce_overdue_versions(day=None):
    """Beat's daily entry: a version.overdue event per current version with overdue employees."""
    day = _day(day)
    return {"day": day.isoformat(), "versions": webhook_events.announce_overdue_versions(day)}
