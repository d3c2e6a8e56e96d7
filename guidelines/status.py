"""Who owes what: scope, due date and status of an employee for a guideline version, on a day.

The one place these rules live. Pages, the acknowledge check, dashboards, the team page,
reminders, reports and exports all ask this module; none computes a due date or a status itself.

- **Scope**: employed on the day (active account, started, not yet left: the end date is the first
  day without employment) and in the guideline's audience; nobody once the guideline is retired.
  For a past day, as the organisation was recorded then (organisation.py: department, role
  groups, employment dates and account of that day).
- **Due date**: the latest due-date extension for the major version, else the start of the due
  period plus the guideline's due period. The period starts when the major version was first
  published (the local date of X.0: an editorial X.1 carries acknowledgements over and asks nobody
  again, so it does not move the due date either), or at a joiner's later start date.
- **The acknowledgement that counts**: one of the version's major version (editorial minor
  versions carry acknowledgements over) made before the end of the day; with a re-acknowledgement
  interval only one younger than the interval, and then the latest.
- **Status, one precedence**: *acknowledged* when an acknowledgement counts (evidence on record is
  always shown, exemption or not); else *exempt* when an exemption is active on the day; else
  *overdue* when the day is after the due date; else *pending*.

Two forms of the same rule: `with_status` annotates a queryset in SQL (lists, counts, exports,
reminders, at any size in a fixed number of queries, on any day), `standings` answers for one
employee and a few versions today in Python (the employee's pages and the acknowledge check).
tests/test_status_consistency.py feeds the same fixtures through both and through every consumer.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import models
from django.db.models import Case, DateField, Exists, F, FilteredRelation, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Acknowledgement, DueDateExtension, Exemption, Guideline, Version
from .organisation import keeps_history, organisation_on
from .prepared import PreparedQuery


class Status(models.TextChoices):
    ACKNOWLEDGED = "acknowledged", _("acknowledged")
    PENDING = "pending", _("pending")
    OVERDUE = "overdue", _("overdue")
    EXEMPT = "exempt", _("exempt")


def end_of_day(day):
    """The first moment after `day` (local time): what counts "on" a day happened before it."""
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def moment_of(day):
    """The moment acknowledgements count until: None (no limit) for today, else the end of `day`."""
    if day == timezone.localdate():
        return None
    return end_of_day(day)


# Due dates ----------------------------------------------------------------------------------------


def major_published_on(version):
    """The local date the version's major version (X.0) was published. A query only for an editorial
    version, once per instance."""
    if not hasattr(version, "_major_published_on"):
        first = None
        if version.minor:
            first = (Version.objects.filter(guideline=version.guideline_id, major=version.major, minor=0)
                     .values_list("published_at", flat=True).first())
        version._major_published_on = timezone.localdate(first or version.published_at)
    return version._major_published_on


def period_start(version, employee):
    """Where the due period (and the reminder cadence) starts: the major version's publication, or a
    later joiner's start date."""
    published_on = major_published_on(version)
    if employee.start_date and employee.start_date > published_on:
        return employee.start_date
    return published_on


# The employee's pages ask these on every request: compiled once (prepared.py), filtered here.
_extensions_of = PreparedQuery(
    DueDateExtension,
    lambda employee_id: DueDateExtension.objects.filter(employee=employee_id).order_by("granted_at", "pk")
    .values_list("guideline_id", "major", "due_date"),
    int)
_acknowledgements_of = PreparedQuery(
    Acknowledgement,
    lambda employee_id: Acknowledgement.objects.for_employee(employee_id).select_related("version")
    .order_by("sequence"),
    int)
_exempt_guidelines_of = PreparedQuery(
    Exemption,
    lambda employee_id, day: Exemption.objects.active_on(day).filter(employee=employee_id)
    .values_list("guideline_id", flat=True),
    int, date)


def due_dates(employee, versions):
    """{version pk: due date} for one employee and several versions (one query for the extensions)."""
    versions = list(versions)
    extended = {}
    by_key = {(version.guideline_id, version.major): version.pk for version in versions}
    # An employee from accounts.employee_for knows whether they ever had an extension.
    extensions = _extensions_of(employee.pk) if getattr(employee, "has_extensions", True) else ()
    for guideline_id, major, extended_to in extensions:
        if (guideline_id, major) in by_key:
            extended[by_key[guideline_id, major]] = extended_to  # the latest one wins
    return {version.pk: extended.get(version.pk) or period_start(version, employee)
            + timedelta(days=version.guideline.due_days) for version in versions}


def due_date(employee, version):
    return due_dates(employee, [version])[version.pk]


# One employee: their pages and the acknowledge check ------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """Where one employee stands for one version on a day. `status` is None out of scope."""

    version: object
    in_scope: bool
    status: Status | None
    due_date: date
    acknowledgement: Acknowledgement | None  # the one that counts
    latest_acknowledgement: Acknowledgement | None  # of any major version of the guideline

    @property
    def overdue(self):
        return self.status == Status.OVERDUE

    @property
    def may_acknowledge(self):
        """In scope, the version is current and nothing counts yet (exempt employees may still)."""
        return (self.in_scope and self.version.status == self.version.Status.PUBLISHED
                and self.acknowledgement is None)


def employee_in_scope(employee, guideline, day, *, in_audience=None):
    """The scope rule for one employee. `in_audience`, when the caller already knows it, saves a query."""
    if guideline.retired_at is not None or not employee.is_employed_on(day):
        return False
    return guideline.includes(employee) if in_audience is None else in_audience


def counts_on(acknowledgement, moment):
    """Whether `acknowledgement` counts at `moment` (made before it, and within a re-acknowledgement interval)."""
    return acknowledgement.acknowledged_at < moment and acknowledgement.is_valid_on(moment)


def standings(employee, versions, *, audience=None):
    """{version pk: Standing} for one employee today, in three queries whatever the number of versions
    (the employee's acknowledgements, extensions and exemptions, of every guideline: few rows).
    `audience`: the pks of guidelines known to include the employee (else one query more). Versions
    need their guideline loaded. (A past day is the SQL form's: it reads the organisation of that day.)"""
    versions = list(versions)
    if not versions:
        return {}
    day, moment = timezone.localdate(), timezone.now()
    guideline_pks = {version.guideline_id for version in versions}
    if audience is None:
        audience = set(Guideline.objects.for_employee(employee).filter(pk__in=guideline_pks)
                       .values_list("pk", flat=True))
    latest, counting = {}, {}
    for ack in _acknowledgements_of(employee.pk):
        if ack.guideline_id not in guideline_pks:
            continue
        latest[ack.guideline_id] = ack
        counting.setdefault((ack.guideline_id, ack.major), []).append(ack)
    # An employee from accounts.employee_for knows whether they ever had an exemption.
    exempt = set(_exempt_guidelines_of(employee.pk, day)) if getattr(employee, "has_exemptions", True) else set()
    due = due_dates(employee, versions)
    answers = {}
    for version in versions:
        guideline = version.guideline
        in_scope = employee_in_scope(employee, guideline, day, in_audience=guideline.pk in audience)
        for ack in counting.get((guideline.pk, version.major), []):
            ack.guideline = guideline
        valid = [ack for ack in counting.get((guideline.pk, version.major), []) if counts_on(ack, moment)]
        # Without an interval every acknowledgement stays valid and the first one counts (as in SQL).
        ack = (valid[-1] if guideline.reacknowledge_days else valid[0]) if valid else None
        status = None
        if in_scope:
            if ack is not None:
                status = Status.ACKNOWLEDGED
            elif guideline.pk in exempt:
                status = Status.EXEMPT
            elif day > due[version.pk]:
                status = Status.OVERDUE
            else:
                status = Status.PENDING
        if latest.get(guideline.pk) is not None:
            latest[guideline.pk].guideline = guideline
        answers[version.pk] = Standing(version, in_scope, status, due[version.pk], ack, latest.get(guideline.pk))
    return answers


def standing(employee, version):
    return standings(employee, [version])[version.pk]


# Everyone at once: lists, counts, exports, reminders -----------------------------------------------


def in_scope(version, day, employees=None):
    """Employees employed on `day` and in the guideline's audience; nobody once the guideline is retired.

    `employees` narrows the population first, e.g. to a manager's direct reports; to narrow by the
    organisation of the day, start from `organisation_on(day).employees()`.
    """
    return audience_on(version.guideline, day, employees)


def employed_on(day, employees=None):
    """Employees employed on `day`, whatever the guideline."""
    organisation = organisation_on(day)
    return organisation.employees(employees).filter(organisation.employed_on(day))


def audience_on(guideline, day, employees=None):
    """The scope rule for a guideline rather than one of its versions."""
    organisation = organisation_on(day)
    employees = organisation.employees(employees)
    if guideline.retired_at is not None:
        return employees.none()
    return employees.filter(organisation.employed_on(day), organisation.in_audience(guideline))


def valid_acknowledgements(version, day):
    """Acknowledgements of the version's major version that count on `day`."""
    guideline, moment = version.guideline, moment_of(day)
    acks = Acknowledgement.objects.filter(guideline=guideline.pk, major=version.major)
    if moment is not None:
        acks = acks.filter(acknowledged_at__lt=moment)
    if guideline.reacknowledge_days:
        since = (moment or timezone.now()) - timedelta(days=guideline.reacknowledge_days)
        acks = acks.filter(acknowledged_at__gt=since)
    return acks


def _counting_acknowledgement(version, day):
    """The join condition for the one acknowledgement per employee that counts on `day`.

    Without a re-acknowledgement interval every acknowledgement stays valid, so the first one
    (cycle 1, unique per employee) counts. With an interval it is the latest valid one.
    """
    if not version.guideline.reacknowledge_days:
        moment = moment_of(day)
        first = Q(acknowledgements__guideline=version.guideline_id, acknowledgements__major=version.major,
                  acknowledgements__cycle=1)
        return first if moment is None else first & Q(acknowledgements__acknowledged_at__lt=moment)
    valid = valid_acknowledgements(version, day)
    later = valid.filter(employee=OuterRef("employee"), cycle__gt=OuterRef("cycle"))
    return Q(acknowledgements__in=Subquery(valid.exclude(Exists(later)).values("pk")))


def _latest_extension(version):
    """The join condition for the due-date extension that counts: the latest one for the major version."""
    extensions = DueDateExtension.objects.filter(guideline=version.guideline_id, major=version.major)
    later = extensions.filter(
        Q(granted_at__gt=OuterRef("granted_at")) | Q(granted_at=OuterRef("granted_at"), pk__gt=OuterRef("pk")),
        employee=OuterRef("employee"),
    )
    return Q(extensions__in=Subquery(extensions.exclude(Exists(later)).values("pk")))


def query_inputs(version, day):
    """Everything in_scope and with_status write into their SQL besides the values of the tables: a
    key under which the compiled query may be reused (prepared.PreparedQueries). None when the SQL
    reads the clock (today, with a re-acknowledgement interval counted back from now): it is built
    for every request then."""
    guideline = version.guideline
    today = timezone.localdate()
    if (guideline.reacknowledge_days and day == today) or guideline.retired_at is not None:
        return None  # a retired guideline's list is empty: nothing to compile
    return (version.pk, version.guideline_id, version.major, major_published_on(version), guideline.due_days,
            guideline.reacknowledge_days, guideline.audience_everyone, day, day == today, keeps_history())


def with_status(employees, version, day, status=""):
    """Annotate `ack` and `extension` (LEFT JOINs, at most one row each), `acknowledged_at`,
    `due_date` and `status` (the module's rules). With `status`, keep only the employees in it.

    The employees should be `in_scope(version, day)`: out of scope has no status here.
    """
    guideline = version.guideline
    published_on = major_published_on(version)
    due_period = timedelta(days=guideline.due_days)
    start_date = organisation_on(day).field("start_date")  # a joiner's, as recorded on the day
    employees = employees.annotate(
        ack=FilteredRelation("acknowledgements", condition=_counting_acknowledgement(version, day)),
        extension=FilteredRelation("extensions", condition=_latest_extension(version)),
        acknowledged_at=F("ack__acknowledged_at"),
        due_date=Coalesce(
            "extension__due_date",
            Case(
                When(**{f"{start_date}__gt": published_on}, then=Cast(F(start_date) + due_period, DateField())),
                default=Value(published_on + due_period),
            ),
        ),
    )
    # An uncorrelated `id IN (...)`, not a correlated EXISTS: PostgreSQL hashes the few exemptions
    # once per query, and estimates its cost per query rather than per employee (an estimate of
    # millions sends the planner into JIT compilation that takes longer than the count).
    exempt = Q(pk__in=Exemption.objects.active_on(day).filter(guideline=guideline.pk).values("employee_id"))
    # Overdue: `day` is after the due date. The conditions compare the due date's inputs rather than
    # the computed date, whose selectivity the planner cannot estimate (it then expects one row
    # and probes the acknowledgements once per employee).
    joiner = Q(**{f"{start_date}__gt": published_on})
    # Spelled out rather than ~joiner: negating a condition on an annotation (the start date of a past
    # day's record) would leave out the employees without a start date.
    not_joiner = Q(**{f"{start_date}__isnull": True}) | Q(**{f"{start_date}__lte": published_on})
    overdue = Q(extension__due_date__lt=day) | Q(joiner, Q(**{f"{start_date}__lt": day - due_period}),
                                                 extension__isnull=True)
    pending = Q(extension__due_date__gte=day) | Q(joiner, Q(**{f"{start_date}__gte": day - due_period}),
                                                  extension__isnull=True)
    if published_on + due_period < day:
        overdue |= Q(not_joiner, extension__isnull=True)
    else:
        pending |= Q(not_joiner, extension__isnull=True)
    acknowledged = Q(ack__isnull=False)
    if status:
        # Filtering spells out the precedence, so the planner sees plain conditions, not a CASE.
        condition = {
            Status.ACKNOWLEDGED: acknowledged,
            Status.EXEMPT: ~acknowledged & exempt,
            Status.OVERDUE: ~acknowledged & ~exempt & overdue,
            Status.PENDING: ~acknowledged & ~exempt & pending,
        }[status]
        return employees.filter(condition).annotate(status=Value(status))
    return employees.annotate(status=Case(
        When(acknowledged, then=Value(Status.ACKNOWLEDGED)),
        When(exempt, then=Value(Status.EXEMPT)),
        When(overdue, then=Value(Status.OVERDUE)),
        default=Value(Status.PENDING),
    ))
