"""Who is in scope of a guideline version on a day, and where each of them stands.

The dashboards, the team page and the CSV export take their figures from these functions only.
Everything is computed in SQL: the employees are LEFT JOINed to the acknowledgement and the
due-date extension that count (at most one of each per employee), so the counts, the department
breakdown and the trend come from one GROUP BY, and a page runs the same few queries for ten
employees or a hundred thousand.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import models
from django.db.models import Case, Count, DateField, Exists, F, FilteredRelation, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Cast, Coalesce, Concat, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Acknowledgement, Department, DueDateExtension, Employee, Exemption

NO_DEPARTMENT = "none"
SORTS = {
    "name": ("user__last_name", "user__first_name", "employee_number"),
    "due_date": ("due_date", "user__last_name", "user__first_name", "employee_number"),
}


class Status(models.TextChoices):
    ACKNOWLEDGED = "acknowledged", _("acknowledged")
    PENDING = "pending", _("pending")
    OVERDUE = "overdue", _("overdue")
    EXEMPT = "exempt", _("exempt")


def moment_of(day):
    """The moment acknowledgements count until: None (no limit) for today, else the end of `day`."""
    if day == timezone.localdate():
        return None
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


# Scope and status ---------------------------------------------------------------------------


def in_scope(version, day, employees=None):
    """Employees employed on `day` and in the guideline's audience; nobody once the guideline is retired.

    `employees` narrows the population first, e.g. to a manager's direct reports.
    """
    guideline = version.guideline
    employees = Employee.objects.all() if employees is None else employees
    if guideline.retired_at is not None:
        return employees.none()
    employees = employees.employed_on(day)
    if not guideline.audience_everyone:
        # A subquery rather than the audience joins: someone in two audience groups is one row, not two.
        employees = employees.filter(pk__in=Employee.objects.in_audience_of(guideline).values("pk"))
    return employees


def valid_acknowledgements(version, day):
    """Acknowledgements of the version's major version that count on `day`.

    Any minor version counts (editorial versions carry acknowledgements over); with a
    re-acknowledgement interval, only those younger than the interval.
    """
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


def with_status(employees, version, day, status=""):
    """Annotate `ack` and `extension` (LEFT JOINs, at most one row each), `acknowledged_at`,
    `due_date` and `status`. With `status`, keep only the employees in that status.

    Status: exempt (an exemption from the guideline is active on `day`), else acknowledged, else
    overdue (`day` is after the due date), else pending. The due date is the latest extension for
    the major version, else the publication date (or a joiner's later start date) plus the
    guideline's due period, as in services.due_date_for.
    """
    guideline = version.guideline
    published_on = timezone.localdate(version.published_at)
    due_period = timedelta(days=guideline.due_days)
    employees = employees.annotate(
        ack=FilteredRelation("acknowledgements", condition=_counting_acknowledgement(version, day)),
        extension=FilteredRelation("extensions", condition=_latest_extension(version)),
        acknowledged_at=F("ack__acknowledged_at"),
        due_date=Coalesce(
            "extension__due_date",
            Case(
                When(start_date__gt=published_on, then=Cast(F("start_date") + due_period, DateField())),
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
    joiner = Q(start_date__gt=published_on)
    overdue = Q(extension__due_date__lt=day) | Q(joiner, extension__isnull=True, start_date__lt=day - due_period)
    pending = Q(extension__due_date__gte=day) | Q(joiner, extension__isnull=True, start_date__gte=day - due_period)
    if published_on + due_period < day:
        overdue |= Q(~joiner, extension__isnull=True)
    else:
        pending |= Q(~joiner, extension__isnull=True)
    if status:
        # Filtering spells out the precedence, so the planner sees plain conditions, not a CASE.
        condition = {
            Status.EXEMPT: exempt,
            Status.ACKNOWLEDGED: ~exempt & Q(ack__isnull=False),
            Status.OVERDUE: ~exempt & Q(ack__isnull=True) & overdue,
            Status.PENDING: ~exempt & Q(ack__isnull=True) & pending,
        }[status]
        return employees.filter(condition).annotate(status=Value(status))
    return employees.annotate(status=Case(
        When(exempt, then=Value(Status.EXEMPT)),
        When(ack__isnull=False, then=Value(Status.ACKNOWLEDGED)),
        When(overdue, then=Value(Status.OVERDUE)),
        default=Value(Status.PENDING),
    ))


# Counts and trend -------------------------------------------------------------------------------


@dataclass
class Counts:
    acknowledged: int = 0
    pending: int = 0
    overdue: int = 0
    exempt: int = 0

    def __add__(self, other):
        return Counts(*(getattr(self, status) + getattr(other, status) for status in Status.values))

    @property
    def in_scope(self):
        return self.acknowledged + self.pending + self.overdue + self.exempt

    def percent(self, number):
        return 100 * number / self.in_scope if self.in_scope else 0.0

    @property
    def acknowledged_percent(self):
        return self.percent(self.acknowledged)

    @property
    def by_status(self):
        """For templates: each status with its label, count and share of the in-scope employees."""
        return [
            {"status": status, "label": status.label, "count": getattr(self, status),
             "percent": self.percent(getattr(self, status))}
            for status in Status
        ]


@dataclass
class DepartmentCounts:
    id: int | None
    name: str | None
    counts: Counts = field(default_factory=Counts)

    @property
    def filter_value(self):
        return self.id if self.id is not None else NO_DEPARTMENT


@dataclass
class TrendPoint:
    day: date
    acknowledged: int
    percent: float


@dataclass
class Summary:
    counts: Counts
    departments: list
    trend: list


def summary(version, day, employees=None):
    """Counts, counts per department and the trend for one version, from one GROUP BY query.

    Departments are sorted by name, employees without a department last. The trend is the
    acknowledgement rate on each day from publication to `day`: the acknowledged employees by the
    local date of the acknowledgement that counts for them (an earlier minor version's from the
    first day), divided by today's in-scope count, so it ends at today's acknowledged percentage.
    """
    rows = (
        with_status(in_scope(version, day, employees), version, day)
        .values("department_id", "status", ack_day=TruncDate("ack__acknowledged_at"))
        .annotate(number=Count("pk"))
        .order_by()
    )
    departments, per_day = {}, {}
    for row in rows:
        counts = departments.setdefault(row["department_id"], DepartmentCounts(row["department_id"], None)).counts
        setattr(counts, row["status"], getattr(counts, row["status"]) + row["number"])
        if row["status"] == Status.ACKNOWLEDGED:
            per_day[row["ack_day"]] = per_day.get(row["ack_day"], 0) + row["number"]
    # The names in a second, tiny query: grouping by the joined name too made PostgreSQL sort every row.
    names = dict(Department.objects.filter(pk__in=[pk for pk in departments if pk]).values_list("pk", "name"))
    for department in departments.values():
        department.name = names.get(department.id)
    departments = sorted(departments.values(), key=lambda row: (row.name is None, row.name or ""))
    counts = sum((row.counts for row in departments), Counts())
    return Summary(counts, departments, _trend(version, day, per_day, counts.in_scope))


def _trend(version, day, per_day, in_scope_count):
    published_on = timezone.localdate(version.published_at)
    acknowledged = sum(number for ack_day, number in per_day.items() if ack_day < published_on)
    points = []
    for offset in range((day - published_on).days + 1):
        current = published_on + timedelta(days=offset)
        acknowledged += per_day.get(current, 0)
        percent = 100 * acknowledged / in_scope_count if in_scope_count else 0.0
        points.append(TrendPoint(current, acknowledged, percent))
    return points


def version_counts(versions, day, employees=None):
    """{version pk: Counts} for several versions (e.g. every current one) in a single UNION query."""
    counts = {version.pk: Counts() for version in versions}
    parts = [
        with_status(in_scope(version, day, employees), version, day)
        .values("status")
        .annotate(number=Count("pk"), version_pk=Value(version.pk))
        .values("version_pk", "status", "number")
        .order_by()
        for version in versions
        if version.guideline.retired_at is None
    ]
    if parts:
        for row in parts[0].union(*parts[1:], all=True).order_by():
            setattr(counts[row["version_pk"]], row["status"], row["number"])
    return counts


def trend_chart(points, *, width=960, height=260, left=56, right=16, top=16, bottom=36):
    """The trend as SVG coordinates: a polyline, grid lines every 25 % and the first and last date.

    Coordinates are strings already: templates would localise floats ("12,5" in Dutch).
    """
    if not points:
        return None
    plot_width, plot_height = width - left - right, height - top - bottom
    step = plot_width / max(len(points) - 1, 1)

    def x(index):
        return f"{left + index * step:.1f}"

    def y(percent):
        return f"{top + plot_height * (1 - min(percent, 100) / 100):.1f}"

    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "label_x": left - 8,
        "date_y": height - 10,
        "line": " ".join(f"{x(i)},{y(point.percent)}" for i, point in enumerate(points)),
        "end": {"x": x(len(points) - 1), "y": y(points[-1].percent)},
        "grid": [{"y": y(percent), "label": f"{percent} %"} for percent in (0, 25, 50, 75, 100)],
        "first_day": points[0].day,
        "last_day": points[-1].day,
    }


def trend_changes(points):
    """The days on which the rate changed, plus the first and the last day: the table under the chart."""
    return [
        point for i, point in enumerate(points)
        if i in (0, len(points) - 1) or point.acknowledged != points[i - 1].acknowledged
    ]


# The employee list ------------------------------------------------------------------------------


def employee_list(version, day, employees=None, *, status="", department="", search="", sort="name"):
    """In-scope employees annotated with status, due date and acknowledged_at; filtered and sorted.

    `department` is a department pk or NO_DEPARTMENT; `search` matches the name, employee number
    or e-mail address (case-insensitive, anywhere); `sort` is a key of SORTS.
    """
    rows = with_status(in_scope(version, day, employees), version, day, status)
    if department == NO_DEPARTMENT:
        rows = rows.filter(department__isnull=True)
    elif department:
        rows = rows.filter(department=department)
    if search:
        rows = rows.alias(name=Concat("user__first_name", Value(" "), "user__last_name")).filter(
            Q(name__icontains=search) | Q(employee_number__icontains=search) | Q(user__email__icontains=search)
        )
    return rows.order_by(*SORTS[sort])


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(…), +cmd|…).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text):
    """Text from the HR system or an editor, defused for spreadsheets: a cell starting with = + - @,
    a tab or a carriage return gets an apostrophe in front, which spreadsheets show as text. The
    dashboard export and the CSV embedded in the auditor pack both write their text cells with this."""
    return "'" + text if isinstance(text, str) and text[:1] in FORMULA_STARTS else text


EXPORT_COLUMNS = [
    "employee_number", "name", "email", "department", "manager_employee_number", "status", "due_date",
    "acknowledged_at", "version_acknowledged", "language", "channel",
]


def export_rows(rows):
    """The employee list as tuples for the CSV export: employee_number, first_name, last_name, email,
    department, manager_employee_number, status, due_date, acknowledged_at, and the minor version
    (of the list's major version), language and channel of the acknowledgement that counts."""
    return rows.values_list(
        "employee_number", "user__first_name", "user__last_name", "user__email", "department__name",
        "manager__employee_number", "status", "due_date", "acknowledged_at", "ack__version__minor",
        "ack__language", "ack__channel",
    )
