"""Who still owes an acknowledgement of a current version, and when they were last e-mailed about it.

The statuses come from guidelines.status; this module only asks for the outstanding ones."""

from collections import defaultdict
from typing import NamedTuple

from django.db.models import Value

from ..models import (
    BATCH_ROWS,
    NotificationItem,
    NotificationLog,
    Version,
)
from ..status import Status, in_scope, with_status

Kind = NotificationLog.Kind


class Outstanding(NamedTuple):
    """One version an employee still owes, with its status and due date."""

    version_pk: int
    status: str
    due_date: object


OUTSTANDING = (Status.PENDING, Status.OVERDUE)


def current_versions():
    return list(
        Version.objects.published().filter(guideline__retired_at__isnull=True).select_related("guideline")
        .order_by("guideline__slug", "pk")
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
            rows[row["pk"]].append(Outstanding(row["version_pk"], row["status"], row["due_date"]))
    return rows


def last_notified(employee_ids, versions, kinds, field="day"):
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


def last_reminders(version, employee_ids):
    """{employee pk: when the last e-mail about this version's major version reached them}."""
    versions = Version.objects.filter(guideline=version.guideline_id, major=version.major)
    latest = last_notified(employee_ids, versions, [Kind.ANNOUNCEMENT, Kind.REMINDER, Kind.NUDGE], "sent_at")
    by_employee = {}
    for (employee_id, _version_id), moment in latest.items():
        by_employee[employee_id] = max(moment, by_employee.get(employee_id, moment))
    return by_employee
