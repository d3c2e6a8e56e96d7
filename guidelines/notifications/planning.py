"""A day's cycle, HR's "remind now" and a publication's announcement, handed out in batches."""

from dataclasses import dataclass, field
from itertools import batched

from django.conf import settings
from django.utils import timezone

from ..access import require_permission
from ..models import (
    BATCH_ROWS,
    AuditEvent,
)
from ..services import record_audit_event
from ..status import Status, in_scope
from .calendar import is_working_day
from .outstanding import current_versions, outstanding_employee_ids


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
