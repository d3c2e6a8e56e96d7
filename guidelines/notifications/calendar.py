"""When reminders and escalations are due: working days and the cadence."""

from datetime import timedelta

from django.conf import settings


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
