"""Dashboards: where everyone stands on a guideline version (HR and auditors), and where a
manager's direct reports stand on the current guidelines. The figures come from dashboards.py."""

import csv

from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from .. import comprehension, dashboards, notifications, questions, status
from ..access import dashboard_required, manager_required
from ..dashboards import csv_cell as _cell  # one defusing for every CSV
from ..forms import ListFilterForm
from ..models import Employee, Guideline, Version, reader_language
from ..security import security_event
from ..status import Status
from .lookups import filters_or_400, guideline_or_404, released_version_or_404

PAGE_SIZE = 50
EXPORT_CHUNK_ROWS = 2000
BADGES = {Status.ACKNOWLEDGED: "ok", Status.PENDING: "todo", Status.OVERDUE: "overdue", Status.EXEMPT: "muted"}


def _list_page(request, rows, summary, filters, version, *, marks=False):
    """One page of the employee list. Without a search its length is known from the summary,
    which saves counting every in-scope employee a second time. `marks`: each employee's open
    objections and exception requests (HR and auditors; not a manager's team page)."""
    paginator = Paginator(
        rows.select_related("user").only(
            "employee_number", "start_date", "user__first_name", "user__last_name", "user__email",
        ),
        PAGE_SIZE,
    )
    if not filters["search"]:
        # Paginator.count is a cached property: setting it skips the COUNT query.
        counts = summary.counts
        if filters["department"]:
            department = next((d for d in summary.departments if str(d.filter_value) == filters["department"]), None)
            counts = department.counts if department else dashboards.Counts()
        paginator.count = getattr(counts, filters["status"]) if filters["status"] else counts.in_scope
    page = paginator.get_page(request.GET.get("page"))
    last_reminders = notifications.last_reminders(version, [employee.pk for employee in page])
    objections = questions.open_objections_of_major(version, [employee.pk for employee in page]) if marks else {}
    for employee in page:
        employee.status_label, employee.status_badge = Status(employee.status).label, BADGES[employee.status]
        employee.last_reminder = last_reminders.get(employee.pk)
        # One mark per kind, leading to the latest of that kind.
        employee.open_objections = list({item.kind: item for item in objections.get(employee.pk, [])}.values())
    return page


def _status_context(request, version, summary, filters, rows, *, marks=False):
    return {
        "version": version,
        "summary": summary,
        "chart": dashboards.trend_chart(summary.trend),
        # Drawn for a phone's width, so that its labels stay readable there (the wide one shrinks).
        "narrow_chart": dashboards.trend_chart(summary.trend, width=340, height=220, left=58, right=12),
        "trend_table": dashboards.trend_changes(summary.trend),
        "filters": filters,
        "statuses": Status.choices,
        "page": _list_page(request, rows, summary, filters, version, marks=marks),
    }


@require_GET
@dashboard_required
def overview(request):
    day = timezone.localdate()
    guidelines = list(Guideline.objects.by_title())
    current = {v.guideline_id: v for v in Version.objects.published().filter(guideline__retired_at__isnull=True)}
    rows, retired = [], []
    for guideline in guidelines:
        if guideline.retired_at is not None:
            retired.append(guideline)
            continue
        version = current.get(guideline.pk)
        if version:
            version.guideline = guideline
        rows.append({"guideline": guideline, "version": version})
    counts = dashboards.version_counts(current.values(), day)
    for row in rows:
        row["counts"] = counts[row["version"].pk] if row["version"] else None
    return render(request, "guidelines/dashboards/overview.html", {"rows": rows, "retired": retired, "day": day})


@require_GET
@dashboard_required
def guideline_dashboard(request, slug):
    guideline = guideline_or_404(slug)
    version, versions = released_version_or_404(guideline, request.GET.get("version"))
    form, bad_request = filters_or_400(request, ListFilterForm)
    if bad_request:
        return bad_request
    filters = form.cleaned_data
    day = timezone.localdate()
    summary = dashboards.summary(version, day)
    rows = dashboards.employee_list(version, day, **filters)
    context = _status_context(request, version, summary, filters, rows, marks=True)
    # Each row leads to the employee's page (HR and auditors only: the manager's team page has no links).
    context.update(guideline=guideline, versions=versions, day=day, employee_links=True,
                   open_objections=questions.open_counts_of_major(version),
                   # Which rule of this version nobody understands (the chosen version's own questions).
                   pass_rates=comprehension.pass_rates(version))
    security_event("dashboard_view", request=request, guideline=guideline.slug, version=version.number, filters=filters)
    return render(request, "guidelines/dashboards/guideline.html", context)


class Echo:
    """The csv module writes to a file; this one hands each line straight back (Django's streaming how-to)."""

    def write(self, value):
        return value


def _csv_lines(rows, major):
    writer = csv.writer(Echo())
    local = timezone.get_current_timezone()  # once: looking it up per row costs more than the row
    # The byte-order mark tells Excel the file is UTF-8.
    yield "\ufeff" + writer.writerow(dashboards.EXPORT_COLUMNS)
    lines = []
    for (number, first_name, last_name, email, department, manager, status_value, due_date, acknowledged_at,
         minor, language, channel) in rows.iterator(chunk_size=EXPORT_CHUNK_ROWS):
        lines.append(writer.writerow([
            _cell(number), _cell(f"{first_name} {last_name}".strip() or email), _cell(email),
            _cell(department or ""), _cell(manager or ""), status_value,
            due_date.isoformat(),
            acknowledged_at.astimezone(local).isoformat(timespec="seconds") if acknowledged_at else "",
            f"{major}.{minor}" if minor is not None else "", language or "", channel or "",
        ]))
        # Chunks of lines, not single lines: far fewer writes to the socket, still constant memory.
        if len(lines) == EXPORT_CHUNK_ROWS:
            yield "".join(lines)
            lines = []
    yield "".join(lines)


@require_GET
@dashboard_required
def export(request, slug):
    guideline = guideline_or_404(slug)
    version, _versions = released_version_or_404(guideline, request.GET.get("version"))
    form, bad_request = filters_or_400(request, ListFilterForm)
    if bad_request:
        return bad_request
    filters = form.cleaned_data
    day = timezone.localdate()
    rows = dashboards.export_rows(dashboards.employee_list(version, day, **filters))
    response = StreamingHttpResponse(_csv_lines(rows, version.major), content_type="text/csv; charset=utf-8")
    filename = f"{guideline.slug}-{version.number}-{day.isoformat()}.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    security_event("export", request=request, guideline=guideline.slug, version=version.number, filters=filters)
    return response


@require_GET
@manager_required
def team(request):
    day = timezone.localdate()
    reports = Employee.objects.filter(manager=request.employee)
    current = list(
        Version.objects.published().filter(guideline__retired_at__isnull=True).select_related("guideline")
        .order_by(f"guideline__title_{reader_language()}", "guideline__slug")
    )
    context = {"day": day, "report_count": status.employed_on(day, reports).count(), "current": current}
    if not current:
        return render(request, "guidelines/dashboards/team.html", context)
    slug = request.GET.get("guideline")
    version = next((v for v in current if v.guideline.slug == slug), None) if slug else current[0]
    if version is None:
        raise Http404(_("There is no current guideline at this address."))
    form, bad_request = filters_or_400(request, ListFilterForm)
    if bad_request:
        return bad_request
    filters = form.cleaned_data
    counts = dashboards.version_counts(current, day, reports)
    summary = dashboards.summary(version, day, reports)
    rows = dashboards.employee_list(version, day, reports, **filters)
    context.update(_status_context(request, version, summary, filters, rows))
    context.update(guideline=version.guideline, rows=[{"version": v, "counts": counts[v.pk]} for v in current])
    security_event("team_view", request=request, guideline=version.guideline.slug, filters=filters)
    return render(request, "guidelines/dashboards/team.html", context)
