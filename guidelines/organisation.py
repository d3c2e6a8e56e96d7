"""The organisation as it was recorded on a day: each employee's department, manager and employment
dates, whether their account was active, and their role groups.

Who was in scope for a guideline on a past day depends on where people worked then, not now. On
PostgreSQL, database triggers (django-pghistory) append every change of these facts to history
tables (models.EmployeeHistory, AccountHistory and RoleGroupHistory), however the change was made,
with who made it and in which import run when the change ran inside `recorded()`.

The rule for a past day: the last record made before the end of that day (local time). Before an
employee's first record the first record stands: history began with a record of everyone already
there (migration 0015), and the employment dates on the record still decide who was employed. Today
is read from the tables themselves, which the latest records equal by construction.

SQLite, the embedded demo database, has no such triggers: there every day is read as today.
status.py asks this module; nothing else reads the history tables for scope.
"""

import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, connection
from django.db.models import Exists, F, FilteredRelation, OuterRef, Q
from django.db.models.lookups import LessThan
from django.utils import timezone

from .models import AccountHistory, Employee, EmployeeHistory, RoleGroupHistory

RECORD = "organisation_then"  # the employee's record of the day in an annotated queryset, and its columns' prefix


def keeps_history():
    return connection.vendor == "postgresql"


@contextmanager
def recorded(*, source, by=None, import_run=None):
    """Every change of the organisation in the block is recorded with its source ("import", "admin",
    …), the user who made it and the import run. Session-wide for the block, so it also covers
    transactions opened inside it; pghistory's own context() prefixes every statement with SQL,
    which PostgreSQL's server-side parameter binding (settings: DATABASE_PREPARED_STATEMENTS) refuses."""
    if not keeps_history():
        yield
        return
    context = {"source": source, "by": getattr(by, "pk", by), "import_run": getattr(import_run, "pk", import_run)}
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('pghistory.context_metadata', true)")
        outer = cursor.fetchone()[0] or ""
        cursor.execute("SELECT set_config('pghistory.context_metadata', %s, false)", [json.dumps(context)])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('pghistory.context_metadata', %s, false)", [outer])
        except DatabaseError:
            pass  # a failed transaction: rolling it back undoes the setting made in it as well


def _ranks_above(moment, created, pk):
    """Condition on a history record: it ranks above the record made at `created` with `pk`. The rule
    of the record of a day: records made before `moment` first, the latest of them; else the first
    record. Rows of one transaction share their time, so the pk orders them."""
    before, other_before = Q(pgh_created_at__lt=moment), Q(LessThan(created, moment))
    later = Q(pgh_created_at__gt=created) | Q(pgh_created_at=created, pgh_id__gt=pk)
    earlier = Q(pgh_created_at__lt=created) | Q(pgh_created_at=created, pgh_id__lt=pk)
    return (before & ~other_before) | (before & other_before & later) | (~before & ~other_before & earlier)


def _of_the_day(records, moment, *partition):
    """`records` (whole partitions of a history table) narrowed to each partition's record of the day:
    the one no other record of its partition ranks above."""
    better = records.model.objects.filter(**{name: OuterRef(name) for name in partition}).filter(
        _ranks_above(moment, OuterRef("pgh_created_at"), OuterRef("pgh_id")))
    return records.filter(~Exists(better))


@dataclass(frozen=True)
class Organisation:
    """Where the organisation's facts are read for one day: today's tables (`moment` None) or the
    history's records of the day. The names from `field()` work in filters, order_by() and F() on a
    queryset from `employees()`."""

    moment: datetime | None

    FIELDS = ("department", "manager", "start_date", "end_date")

    @property
    def historical(self):
        return self.moment is not None

    def field(self, name):
        return f"{RECORD}_{name}" if self.historical else name

    def employees(self, employees=None):
        """Employees with their record of the day (those without one had not been recorded yet)."""
        employees = Employee.objects.all() if employees is None else employees
        if not self.historical or RECORD in employees.query._filtered_relations:
            return employees
        # The record's columns are annotations, and every later filter names those: a filter on the
        # history relation itself would join it once more (it is multi-valued). The record of the
        # day is the one no other record of the employee ranks above (see _ranks_above), which
        # PostgreSQL runs as one hash anti-join.
        employees = (employees.annotate(**{RECORD: FilteredRelation("history")})
                     .alias(**{self.field(name): F(f"{RECORD}__{name}")  # usable, not loaded with each row
                               for name in ("pgh_id", "pgh_created_at", *self.FIELDS)}))
        better = EmployeeHistory.objects.filter(pgh_obj=OuterRef("pk")).filter(
            _ranks_above(self.moment, OuterRef(self.field("pgh_created_at")), OuterRef(self.field("pgh_id"))))
        return employees.filter(~Exists(better), **{f"{self.field('pgh_id')}__isnull": False})

    def with_names(self, employees):
        """`employees()` annotated with department_name and manager_number of the day."""
        prefix = f"{RECORD}__" if self.historical else ""
        return employees.annotate(department_name=F(f"{prefix}department__name"),
                                  manager_number=F(f"{prefix}manager__employee_number"))

    def employed_on(self, day):
        """Condition on `employees()`: employed on the day (active account, started, not yet left; the
        end date is the first day without employment)."""
        start, end = self.field("start_date"), self.field("end_date")
        employed = (Q(**{f"{start}__isnull": True}) | Q(**{f"{start}__lte": day})) & (
            Q(**{f"{end}__isnull": True}) | Q(**{f"{end}__gt": day}))
        if not self.historical:
            return employed & Q(user__is_active=True)
        # Only an account that was ever switched off can have been off on the day: few records to sort.
        ever_off = AccountHistory.objects.filter(is_active=False).values("pgh_obj_id")
        of_the_day = _of_the_day(AccountHistory.objects.filter(pgh_obj__in=ever_off), self.moment, "pgh_obj")
        off = of_the_day.filter(is_active=False).values("pgh_obj_id")
        return employed & ~Q(user__in=off)

    def in_audience(self, guideline):
        """Condition on `employees()`: in the guideline's audience by department or role group."""
        if guideline.audience_everyone:
            return Q()
        departments = guideline.audience_departments.values("pk")
        groups = guideline.audience_groups.values("pk")
        if not self.historical:
            members = Employee.objects.filter(user__groups__in=groups).values("pk")
            return Q(department__in=departments) | Q(pk__in=members)
        memberships = RoleGroupHistory.objects.filter(group__in=groups)
        members = _of_the_day(memberships, self.moment, "user", "group").exclude(pgh_label="removed")
        return Q(**{f"{self.field('department')}__in": departments}) | Q(user__in=members.values("user_id"))


def organisation_on(day):
    """The organisation of `day`: today's tables for today (and wherever no history is kept), else
    the records made before the end of the day."""
    if day >= timezone.localdate() or not keeps_history():
        return Organisation(None)
    from .status import end_of_day  # status asks this module, so not at the top

    return Organisation(end_of_day(day))
