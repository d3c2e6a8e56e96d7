"""HR and auditors: find an employee by name, number or e-mail address; one employee's page (where they
stand on each guideline, their acknowledgements with receipt, certificate and proof of reading, exemptions
and extensions, with HR's actions on them, their questions to owners and their objections and exception
requests); the receipt of one of their acknowledgements."""

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from .. import employees, questions
from ..access import evidence_reader_required
from ..forms import EmployeeSearchForm
from ..status import Status
from .dashboards import BADGES

PAGE_SIZE = 50


@require_GET
@evidence_reader_required
def employee_search(request):
    form = EmployeeSearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    page = Paginator(employees.search(query, by=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    # The form is a search, not something to correct: a query that is too long is searched shortened.
    return render(request, "guidelines/hr/employee_search.html",
                  {"search_form": form, "query": query, "page": page})


def _employee_or_404(request, pk):
    employee = employees.employee_or_none(pk, by=request.user)
    if employee is None:
        raise Http404(_("There is no such employee."))
    return employee


@require_GET
@evidence_reader_required
def employee_detail(request, pk):
    employee = _employee_or_404(request, pk)
    overview = employees.overview(employee, by=request.user)
    rows = [{"row": row, "label": Status(row.standing.status).label, "badge": BADGES[row.standing.status]}
            for row in overview.rows]
    return render(request, "guidelines/hr/employee_detail.html", {
        "employee": employee,
        "overview": overview,
        "rows": rows,
        "threads": questions.threads_of(employee, by=request.user),
        "may_act": request.user.has_perm("guidelines.manage"),
    })


@require_GET
@evidence_reader_required
def employee_receipt(request, pk, ack):
    employee = _employee_or_404(request, pk)
    acknowledgement = employees.acknowledgement_of(employee, ack, by=request.user)
    if acknowledgement is None:
        raise Http404(_("This employee has no such acknowledgement."))
    return render(request, "guidelines/receipt.html", {"ack": acknowledgement, "of_employee": employee})
