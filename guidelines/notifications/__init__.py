"""Announcements, reminder digests, HR nudges and manager escalations: who gets which e-mail, once.

The rules live in this package; guidelines.tasks only moves batches between Celery and these
functions. calendar: working days and the cadence; outstanding: who owes what (from
guidelines.status) and when they were last e-mailed; planning: the day's cycle, nudges and
announcements in batches; composing: which e-mail each recipient gets, and the message; delivery:
claiming in the notification log, sending, marking, retrying.

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
- When an author asks for approval of a draft, each approver who may approve it gets one e-mail
  (compose_approval_requests), keyed by the request, so asking again after a send-back e-mails again.
- A question, follow-up, objection or exception request e-mails the guideline's owner, an answer or
  HR's handling of an objection the employee (compose_question_emails, guidelines.questions), keyed by
  the message and recipient.
- Every e-mail is claimed in NotificationLog (unique idempotency key) before it is sent. A claim
  belongs to the Celery task id that made it: a redelivered or retried task (same id) sends its
  unsent claims again, a duplicate task (another id) leaves them alone, and a claim whose task
  vanished is taken over after CLAIM_LEASE.
"""

from .calendar import cadence_day, escalation_due, is_working_day, reminder_due
from .composing import (
    LINK_PLACEHOLDER,
    NAME_PLACEHOLDER,
    DigestEmail,
    OutgoingEmail,
    build_message,
    compose_announcements,
    compose_approval_requests,
    compose_digests,
    compose_escalations,
    compose_question_emails,
)
from .delivery import (
    CLAIM_LEASE,
    MARK_SENT_AFTER,
    MARK_SENT_EVERY,
    TransientFailure,
    claim,
    deliver,
    give_up,
    record_attempt,
    retry_delay,
    run_batch,
)
from .outstanding import (
    OUTSTANDING,
    current_versions,
    last_reminders,
    outstanding_employee_ids,
    outstanding_rows,
)
from .planning import Plan, plan_announcement, plan_cycle, plan_nudge

__all__ = [
    "CLAIM_LEASE", "LINK_PLACEHOLDER", "MARK_SENT_AFTER", "MARK_SENT_EVERY", "NAME_PLACEHOLDER", "OUTSTANDING",
    "DigestEmail", "OutgoingEmail", "Plan", "TransientFailure", "build_message", "cadence_day", "claim",
    "compose_announcements", "compose_approval_requests", "compose_digests", "compose_escalations",
    "compose_question_emails",
    "current_versions", "deliver",
    "escalation_due", "give_up", "is_working_day", "last_reminders", "outstanding_employee_ids",
    "outstanding_rows", "plan_announcement", "plan_cycle", "plan_nudge", "record_attempt", "reminder_due",
    "retry_delay", "run_batch",
]
