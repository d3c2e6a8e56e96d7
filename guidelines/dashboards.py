"""The figures of the dashboards, the team page and the CSV export: counts per status and
department, the trend, the filtered employee list.

Who is in scope and in which status comes from guidelines.status (`in_scope`, `with_status`).
Everything is computed in SQL: the counts, the department breakdown and the trend come from one
GROUP BY, and a page runs the same few queries for ten employees or a hundred thousand.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Count, F, Q, Value
from django.db.models.functions import Concat, TruncDate
from django.utils import timezone

from .models import Department
from .organisation import organisation_on
from .status import Status, in_scope, with_status

NO_DEPARTMENT = "none"
SORTS = {
    "name": ("user__last_name", "user__first_name", "employee_number"),
    "due_date": ("due_date", "user__last_name", "user__first_name", "employee_number"),
}


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
    department = organisation_on(day).field("department")  # as recorded on the day
    rows = (
        with_status(in_scope(version, day, employees), version, day)
        .values("status", department_pk=F(department), ack_day=TruncDate("ack__acknowledged_at"))
        .annotate(number=Count("pk"))
        .order_by()
    )
    departments, per_day = {}, {}
    for row in rows:
        counts = departments.setdefault(row["department_pk"], DepartmentCounts(row["department_pk"], None)).counts
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


def trend_chart(points, *, width=720, height=240, left=56, right=16, top=16, bottom=36):
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
    """In-scope employees annotated with status, due date, acknowledged_at, and the department_name and
    manager_number of the day; filtered and sorted.

    `department` is a department pk or NO_DEPARTMENT; `search` matches the name, employee number
    or e-mail address (case-insensitive, anywhere); `sort` is a key of SORTS.
    """
    organisation = organisation_on(day)  # departments and managers as recorded on the day
    rows = organisation.with_names(with_status(in_scope(version, day, employees), version, day, status))
    if department == NO_DEPARTMENT:
        rows = rows.filter(**{f"{organisation.field('department')}__isnull": True})
    elif department:
        rows = rows.filter(**{organisation.field("department"): department})
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
        "employee_number", "user__first_name", "user__last_name", "user__email", "department_name",
        "manager_number", "status", "due_date", "acknowledged_at", "ack__version__minor",
        "ack__language", "ack__channel",
    )
