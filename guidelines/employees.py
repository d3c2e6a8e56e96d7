"""One employee as HR and auditors see them: finding them by name, number or e-mail address, and their
page (where they stand on every guideline in scope, their acknowledgements, exemptions and extensions).

Everyone here reads everyone's evidence, so every function asks access.require_evidence_reader first,
whatever calls it. Statuses come from the status engine (status.standings), never worked out here.
"""

from dataclasses import dataclass

from django.db.models import Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from . import status
from .access import require_evidence_reader
from .models import Acknowledgement, DueDateExtension, Employee, Exemption, Guideline, Version, reader_language

SEARCH_MAX_LENGTH = 100


def search(query, *, by):
    """Employees whose name, employee number or e-mail address contains `query` (case-insensitive),
    by name; everyone when `query` is empty. A queryset: the caller pages it (a count and a page)."""
    require_evidence_reader(by)
    employees = Employee.objects.select_related("user", "department").only(
        "employee_number", "start_date", "end_date", "department__name",
        "user__first_name", "user__last_name", "user__email", "user__is_active",
    )
    query = " ".join(query.split())[:SEARCH_MAX_LENGTH]
    if query:
        employees = employees.alias(name=Concat("user__first_name", Value(" "), "user__last_name")).filter(
            Q(name__icontains=query) | Q(employee_number__icontains=query) | Q(user__email__icontains=query)
        )
    return employees.order_by("user__last_name", "user__first_name", "employee_number")


def employee_or_none(pk, *, by):
    require_evidence_reader(by)
    return Employee.objects.select_related("user", "department", "manager__user").filter(pk=pk).first()


@dataclass(frozen=True)
class GuidelineRow:
    guideline: Guideline
    version: Version  # the current published version
    standing: status.Standing
    exemption: Exemption | None  # the one active today, if any


@dataclass(frozen=True)
class Overview:
    employee: Employee
    rows: list  # GuidelineRow, for every guideline the employee is in scope of, by title
    out_of_scope: int  # current guidelines the employee is not in scope of
    acknowledgements: list
    exemptions: list
    extensions: list


def overview(employee, *, by):
    """Everything the employee page shows, in a number of queries that does not grow with the employee's
    guidelines, acknowledgements, exemptions or extensions."""
    require_evidence_reader(by)
    versions = list(Version.objects.published().filter(guideline__retired_at__isnull=True)
                    .select_related("guideline").order_by(f"guideline__title_{reader_language()}", "guideline__pk"))
    standings = status.standings(employee, versions)
    day = timezone.localdate()
    exemptions = list(Exemption.objects.filter(employee=employee)
                      .select_related("guideline", "granted_by", "revoked_by").order_by("-granted_at", "-pk"))
    active_today = set(Exemption.objects.active_on(day).filter(employee=employee).values_list("pk", flat=True))
    active = {}
    for exemption in exemptions:
        if exemption.pk in active_today:
            active.setdefault(exemption.guideline_id, exemption)
    rows = [GuidelineRow(version.guideline, version, standings[version.pk], active.get(version.guideline_id))
            for version in versions if standings[version.pk].in_scope]
    acknowledgements = list(Acknowledgement.objects.filter(employee=employee)
                            .select_related("guideline", "version").order_by("-acknowledged_at", "-pk"))
    extensions = list(DueDateExtension.objects.filter(employee=employee)
                      .select_related("guideline", "granted_by").order_by("-granted_at", "-pk"))
    return Overview(employee=employee, rows=rows, out_of_scope=len(versions) - len(rows),
                    acknowledgements=acknowledgements, exemptions=exemptions, extensions=extensions)


def acknowledgement_of(employee, pk, *, by):
    """One of the employee's acknowledgements (None if it is not theirs), for its receipt."""
    require_evidence_reader(by)
    return Acknowledgement.objects.select_related("guideline", "version").filter(employee=employee, pk=pk).first()
