"""Announcements, reminder digests, HR nudges and manager escalations: who gets which e-mail, once.

The rules live here; guidelines.tasks only moves batches between Celery and these functions.

- A day's cycle runs on working days only (weekends and settings.REMINDER_HOLIDAYS are skipped). A
  planner pages through the employees with a pending or overdue current version and hands out
  batches; each batch looks again at who is still pending, so an acknowledgement made after
  planning stops the e-mail.
- The cadence counts days from the start of the due period (publication, or a joiner's start
  date): with "3,7,+7" an employee is reminded on day 3, day 7, 14, 21, … An employee is due a
  reminder when a cadence day has passed since the last e-mail about that version, so a day that
  falls on a weekend is caught up on the next working day, and never twice.
- One digest per employee per day lists every pending guideline; a nudge by HR is the same digest
  and shares its idempotency key, so the two together still make one e-mail a day.
- Every e-mail is claimed in NotificationLog (unique idempotency key) before it is sent. A claim
  belongs to the Celery task id that made it: a redelivered or retried task (same id) sends its
  unsent claims again, a duplicate task (another id) leaves them alone, and a claim whose task
  vanished is taken over after CLAIM_LEASE.
"""

import email.charset
import email.policy
import logging
import random
import smtplib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr
from itertools import batched

from django.conf import settings
from django.core import mail
from django.db import transaction
from django.db.models import F, Value
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape

from . import services
from .access import require_permission
from .models import (
    BATCH_ROWS,
    ERROR_TEXT_LIMIT,
    AuditEvent,
    Employee,
    NotificationItem,
    NotificationLog,
    Version,
    VersionText,
)
from .services import record_audit_event
from .status import Status, in_scope, period_start, with_status

logger = logging.getLogger(__name__)

Kind = NotificationLog.Kind
CLAIM_LEASE = timedelta(minutes=15)
# Sent rows are marked in groups of 25, or after half a second: a crash between two marks re-sends
# at most those e-mails (their stable Message-ID lets mail systems recognise the copies).
MARK_SENT_EVERY = 25
MARK_SENT_AFTER = 0.5
OUTSTANDING = (Status.PENDING, Status.OVERDUE)


# The calendar ------------------------------------------------------------------------------------


def is_working_day(day):
    return day.weekday() < 5 and day not in settings.REMINDER_HOLIDAYS


def cadence_day(days_since_start):
    """The latest reminder day of the cadence on or before `days_since_start`, or None."""
    days, repeat = settings.REMINDER_DAYS, settings.REMINDER_REPEAT_DAYS
    if days_since_start < days[0]:
        return None
    if repeat and days_since_start > days[-1]:
        return days[-1] + (days_since_start - days[-1]) // repeat * repeat
    return max(day for day in days if day <= days_since_start)


def reminder_due(*, period_start, day, last_notified):
    """Whether a cadence day has come since the last e-mail about this version (None: never)."""
    point = cadence_day((day - period_start).days)
    return point is not None and (last_notified is None or last_notified < period_start + timedelta(days=point))


def escalation_due(*, day, last_escalated):
    return last_escalated is None or (day - last_escalated).days >= settings.REMINDER_ESCALATION_REPEAT_DAYS


# Who is outstanding ------------------------------------------------------------------------------


def current_versions():
    return list(
        Version.objects.published().filter(guideline__retired_at__isnull=True).select_related("guideline")
        .order_by("guideline__title", "pk")
    )


def _outstanding_parts(versions, day, employees=None, statuses=OUTSTANDING):
    """Per version and status one query of in-scope employees in that status, ready for a UNION.

    Acknowledgements count up to now: `day` is today or later (status.moment_of), so
    someone who acknowledged after planning is never reminded.
    """
    return [
        with_status(in_scope(version, day, employees), version, day, status)
        .annotate(version_pk=Value(version.pk))
        .values("pk", "version_pk", "status", "due_date")
        .order_by()
        for version in versions
        for status in statuses
    ]


def outstanding_employee_ids(versions, day, statuses=OUTSTANDING, *, managers=False):
    """Ids of the employees (or of their managers) with an outstanding version, ascending, streamed.

    The database removes duplicates (UNION); the server-side cursor keeps the planner's memory flat.
    """
    column = "manager_id" if managers else "pk"
    parts = [
        part.filter(manager__isnull=False).values_list(column) if managers else part.values_list(column)
        for part in _outstanding_parts(versions, day, statuses=statuses)
    ]
    if not parts:
        return iter(())
    query = parts[0].union(*parts[1:]).order_by(column)
    return (row[0] for row in query.iterator(chunk_size=BATCH_ROWS))


def outstanding_rows(versions, day, employees, statuses=OUTSTANDING):
    """{employee pk: [(version pk, status, due date), …]} for a small set of employees, in one query."""
    parts = _outstanding_parts(versions, day, employees, statuses)
    rows = defaultdict(list)
    if parts:
        for row in parts[0].union(*parts[1:], all=True).order_by():
            rows[row["pk"]].append((row["version_pk"], row["status"], row["due_date"]))
    return rows


def _last_notified(employee_ids, versions, kinds, field="day"):
    """{(employee pk, version pk): latest `field` of the sent notifications of these kinds about it}.

    Two indexed lookups instead of a join: while a cycle fills the log, PostgreSQL's statistics
    still describe the empty table of the morning, and it drove the join from the log's side
    (1.6 s per batch of 1,000 after 10,000 e-mails instead of 10 ms).
    """
    items = list(NotificationItem.objects.filter(employee__in=employee_ids, version__in=versions)
                 .values_list("notification_id", "employee_id", "version_id"))
    when = dict(NotificationLog.objects.filter(
        pk__in={item[0] for item in items}, kind__in=kinds, status=NotificationLog.Status.SENT,
    ).values_list("pk", field))
    latest = {}
    for notification_id, employee_id, version_id in items:
        moment = when.get(notification_id)
        key = (employee_id, version_id)
        if moment is not None and (key not in latest or moment > latest[key]):
            latest[key] = moment
    return latest


# Planning ------------------------------------------------------------------------------------------


@dataclass
class Plan:
    day: object
    working_day: bool = True
    reminder_batches: list = field(default_factory=list)
    escalation_batches: list = field(default_factory=list)

    @property
    def employees(self):
        return sum(len(batch) for batch in self.reminder_batches)

    @property
    def managers(self):
        return sum(len(batch) for batch in self.escalation_batches)


def plan_cycle(day, *, enqueue_reminders, enqueue_escalations, record=True):
    """Hand out the day's reminder and escalation batches. Safe to run twice: batches claim their
    e-mails, so a second plan for the same day only finds work that is already done."""
    plan = Plan(day=day, working_day=is_working_day(day))
    if not plan.working_day:
        return plan
    versions = current_versions()
    for batch in batched(outstanding_employee_ids(versions, day), settings.REMINDER_BATCH_SIZE):
        plan.reminder_batches.append(batch)
        enqueue_reminders(list(batch))
    managers = outstanding_employee_ids(versions, day, (Status.OVERDUE,), managers=True)
    for batch in batched(managers, settings.REMINDER_BATCH_SIZE):
        plan.escalation_batches.append(batch)
        enqueue_escalations(list(batch))
    if record:
        record_audit_event(action=AuditEvent.Action.REMINDERS_PLANNED, day=day.isoformat(),
                           employees=plan.employees, managers=plan.managers,
                           batches=len(plan.reminder_batches) + len(plan.escalation_batches))
    return plan


def plan_nudge(version, by, *, enqueue):
    """HR's "remind now": the day's digest to everyone outstanding on this version."""
    require_permission(by, "guidelines.manage")
    day = timezone.localdate()
    employees = outstanding_employee_ids([version], day)
    count = 0
    for batch in batched(employees, settings.REMINDER_BATCH_SIZE):
        count += len(batch)
        enqueue(list(batch))
    record_audit_event(action=AuditEvent.Action.NUDGE_REQUESTED, actor=by, guideline=version.guideline,
                       version=version, day=day.isoformat(), employees=count)
    return count


def plan_announcement(version, *, enqueue):
    """Everyone in the audience of a newly published version hears about it (in batches)."""
    day = timezone.localdate()
    ids = in_scope(version, day).order_by("pk").values_list("pk", flat=True)
    count = 0
    for batch in batched(ids.iterator(chunk_size=BATCH_ROWS), settings.REMINDER_BATCH_SIZE):
        count += len(batch)
        enqueue(list(batch))
    record_audit_event(action=AuditEvent.Action.ANNOUNCEMENT_PLANNED, guideline=version.guideline,
                       version=version, employees=count)
    return count


# Composing -------------------------------------------------------------------------------------


@dataclass
class OutgoingEmail:
    """An e-mail to claim and send: recipient, kind, key and what it is about."""

    recipient: Employee
    kind: str
    key: str
    template: str
    items: list  # of (version pk, employee pk, due date, status)


def _employees(ids):
    return {
        employee.pk: employee
        for employee in Employee.objects.filter(pk__in=ids, user__is_active=True).select_related("user")
    }


def compose_digests(employee_ids, day, *, kind=Kind.REMINDER, version=None):
    """The digests due for these employees on `day`.

    A reminder goes to those for whom the cadence says so; a nudge (kind NUDGE, for `version`) to
    those still outstanding on that version. Either lists every outstanding guideline.
    """
    versions = current_versions()
    employees = _employees(employee_ids)
    rows = outstanding_rows(versions, day, Employee.objects.filter(pk__in=employees))
    by_pk = {v.pk: v for v in versions}
    last = _last_notified(list(employees), versions, [Kind.ANNOUNCEMENT, Kind.REMINDER, Kind.NUDGE])
    outgoing = []
    for pk, employee in employees.items():
        outstanding = rows.get(pk)
        if not outstanding:
            continue
        if kind == Kind.NUDGE:
            wanted = version is not None and any(row[0] == version.pk for row in outstanding)
        else:
            wanted = any(
                reminder_due(period_start=period_start(by_pk[version_pk], employee), day=day,
                             last_notified=last.get((pk, version_pk)))
                for version_pk, _status, _due in outstanding
            )
        if wanted:
            items = [(version_pk, pk, due, status) for version_pk, status, due in outstanding]
            outgoing.append(OutgoingEmail(employee, kind, f"digest:{pk}:{day.isoformat()}", "reminder", items))
    return outgoing


def compose_escalations(manager_ids, day):
    """One digest per manager listing the reports who are overdue and not escalated recently."""
    versions = current_versions()
    managers = _employees(manager_ids)
    reports = Employee.objects.filter(manager__in=list(managers))
    rows = outstanding_rows(versions, day, reports, statuses=(Status.OVERDUE,))
    last = _last_notified(list(rows), versions, [Kind.ESCALATION])
    manager_of = dict(reports.filter(pk__in=list(rows)).values_list("pk", "manager_id"))
    items = defaultdict(list)
    for employee_pk, outstanding in rows.items():
        for version_pk, status, due in outstanding:
            if escalation_due(day=day, last_escalated=last.get((employee_pk, version_pk))):
                items[manager_of[employee_pk]].append((version_pk, employee_pk, due, status))
    return [
        OutgoingEmail(managers[pk], Kind.ESCALATION, f"escalation:{pk}:{day.isoformat()}", "escalation", items[pk])
        for pk in managers
        if items[pk]
    ]


def compose_announcements(version, employee_ids, day):
    """The announcement of `version` to these employees, if it is still the current version."""
    version = Version.objects.select_related("guideline").get(pk=version.pk)
    if version.status != Version.Status.PUBLISHED or version.guideline.retired_at:
        return []
    employees = _employees(employee_ids)
    scoped = in_scope(version, day, Employee.objects.filter(pk__in=employees))
    statuses = {
        row["pk"]: (row["status"], row["due_date"])
        for row in with_status(scoped, version, day).values("pk", "status", "due_date")
    }
    return [
        OutgoingEmail(employees[pk], Kind.ANNOUNCEMENT, f"announcement:{version.pk}:{pk}", "announcement",
              [(version.pk, pk, due, status)])
        for pk, (status, due) in statuses.items()
        if status != Status.EXEMPT
    ]


# Claiming and sending ----------------------------------------------------------------------------


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
            NotificationItem(notification=log, version_id=version_pk, employee_id=employee_pk, due_date=due)
            for log in logs
            if log.pk not in with_items
            for version_pk, employee_pk, due, _status in by_key[log.idempotency_key].items
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
    titles = _titles({version_pk for outgoing_email, _log in claimed for version_pk, *_ in outgoing_email.items})
    names = _names({employee_pk for outgoing_email, _log in claimed if outgoing_email.kind == Kind.ESCALATION
                    for _v, employee_pk, *_ in outgoing_email.items})
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


def _titles(version_pks):
    """{(version pk, language): (title, number, slug)} for the versions in a batch (one query)."""
    return {
        (text.version_id, text.language): (text.title, text.version.number, text.version.guideline.slug)
        for text in VersionText.objects.filter(version__in=version_pks).select_related("version__guideline")
    }


def _names(employee_pks):
    return {
        employee.pk: (employee.full_name, employee.employee_number)
        for employee in Employee.objects.filter(pk__in=employee_pks).select_related("user")
    }


class DigestEmail(mail.EmailMultiAlternatives):
    """A plain-text + HTML e-mail whose MIME message is built with the standard library's compat32
    classes. Django builds messages with the modern email API, which parses every header it sets:
    for a reminder cycle of 30,000 e-mails that took three quarters of the time (3 ms of 3.5 ms per
    message). Backends call message() and serialise what it returns; nothing else changes."""

    def message(self, *, policy=None):
        # SMTP needs CRLF line ends (Django passes email.policy.SMTP there); files get "\n".
        policy = email.policy.compat32.clone(linesep=policy.linesep if policy else "\n")
        message = MIMEMultipart("alternative", policy=policy)
        message["Subject"] = Header(str(self.subject), "utf-8")
        name, address = parseaddr(str(self.from_email))
        message["From"] = formataddr((name, address), charset="utf-8")
        message["To"] = ", ".join(self.to)
        message["Date"] = formatdate()
        for header, value in self.extra_headers.items():
            message[header] = value
        message.attach(MIMEText(self.body, "plain", QUOTED_PRINTABLE_UTF8, policy=policy))
        for content, mimetype in self.alternatives:
            message.attach(MIMEText(content, mimetype.split("/")[1], QUOTED_PRINTABLE_UTF8, policy=policy))
        return message


QUOTED_PRINTABLE_UTF8 = email.charset.Charset("utf-8")
QUOTED_PRINTABLE_UTF8.body_encoding = email.charset.QP


# Stands in for the recipient's name while a message is rendered, so that everyone with the same
# guidelines, due dates and language shares one rendering (a mail merge): rendering each of 30,000
# digests separately was half of a reminder cycle's time.
NAME_PLACEHOLDER = "[[recipient-name]]"
# The same for the signed e-mail link reference of each message (services.email_link_token).
LINK_PLACEHOLDER = "[[recipient-link]]"


def build_message(outgoing_email, log, *, titles, names, day, rendered=None):
    """The e-mail in the recipient's language: subject, plain text and HTML from one template triplet.

    `rendered` is a dict shared by the messages of a batch; it keeps the renderings for reuse.
    """
    language = log.language
    items = []
    for version_pk, employee_pk, due, status in outgoing_email.items:
        title, number, slug = titles[(version_pk, language)]
        items.append({
            "title": title, "number": number, "due_date": due, "overdue": status == Status.OVERDUE,
            "acknowledged": status == Status.ACKNOWLEDGED,
            "url": f"{settings.SITE_URL}{reverse('guidelines:detail', args=[slug])}?via={LINK_PLACEHOLDER}",
            "employee": names.get(employee_pk, ("", ""))[0], "employee_number": names.get(employee_pk, ("", ""))[1],
        })
    if outgoing_email.kind == Kind.ESCALATION:
        items.sort(key=lambda item: (item["employee"], item["title"]))
    else:
        items.sort(key=lambda item: (not item["overdue"], item["due_date"] or day, item["title"]))
    key = (outgoing_email.template, outgoing_email.kind, language, tuple(tuple(sorted(item.items())) for item in items))
    rendered = {} if rendered is None else rendered
    if key not in rendered:
        context = {
            "items": items, "kind": outgoing_email.kind, "day": day, "greeting_name": NAME_PLACEHOLDER,
            "site_url": settings.SITE_URL, "home_url": f"{settings.SITE_URL}{reverse('guidelines:home')}",
            "team_url": f"{settings.SITE_URL}{reverse('guidelines:team')}",
        }
        with translation.override(language):
            template = f"emails/{outgoing_email.template}"
            context["subject"] = " ".join(render_to_string(f"{template}_subject.txt", context).split())
            rendered[key] = (context["subject"], render_to_string(f"{template}.txt", context),
                             render_to_string(f"{template}.html", context))
    subject, text, html = rendered[key]
    name = outgoing_email.recipient.user.first_name or outgoing_email.recipient.full_name
    link = services.email_link_token(log.pk)
    message = DigestEmail(
        subject=subject, body=text.replace(NAME_PLACEHOLDER, name).replace(LINK_PLACEHOLDER, link), to=[log.email],
        # Auto-Submitted (RFC 3834) keeps out-of-office replies away.
        headers={"Message-ID": log.message_id, "Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(html.replace(NAME_PLACEHOLDER, escape(name)).replace(LINK_PLACEHOLDER, link),
                               "text/html")
    return message


# Running a batch ---------------------------------------------------------------------------------


def run_batch(outgoing, *, day, claimed_by, requested_by=None):
    """Claim and send. Returns the number sent; raises TransientFailure for the task to retry."""
    claimed = claim(outgoing, day=day, claimed_by=claimed_by, requested_by=requested_by)
    try:
        return deliver(claimed, day=day)
    except TransientFailure as failure:
        record_attempt(claimed_by, [outgoing_email.key for outgoing_email, _log in claimed], str(failure))
        raise


# History ---------------------------------------------------------------------------------------


def last_reminders(version, employee_ids):
    """{employee pk: when the last e-mail about this version's major version reached them}."""
    versions = Version.objects.filter(guideline=version.guideline_id, major=version.major)
    latest = _last_notified(employee_ids, versions, [Kind.ANNOUNCEMENT, Kind.REMINDER, Kind.NUDGE], "sent_at")
    by_employee = {}
    for (employee_id, _version_id), moment in latest.items():
        by_employee[employee_id] = max(moment, by_employee.get(employee_id, moment))
    return by_employee
