"""HR: import employees from the HR system's CSV export (a dry run first, then applying the file it checked)."""

from django.conf import settings
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from .. import imports
from ..access import hr_required
from ..accounts import fresh_sign_in_required
from ..forms import EmployeeImportForm
from ..models import ImportChange, ImportRun

# The columns of the file (and the account's active flag) as HR calls them.
FIELD_LABELS = {
    "email": _("E-mail address"),
    "username": _("User name"),
    "first_name": _("First name"),
    "last_name": _("Last name"),
    "is_active": _("Account active"),
    "department": _("Department"),
    "manager_employee_number": _("Manager (employee number)"),
    "start_date": _("Start date"),
    "end_date": _("End date"),
    "language": _("Language"),
}
RECENT_RUNS = 5
CHANGES_SHOWN = 200  # employees whose changes the result page lists field by field


@require_http_methods(["GET", "POST"])
@hr_required
@fresh_sign_in_required
def employee_import(request):
    result = None
    status = 200
    if request.method == "POST":
        form = EmployeeImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            result = imports.run_import(upload.read(), source=upload.name, by=request.user,
                                        dry_run=form.cleaned_data["dry_run"], request=request)
            if result.errors:
                status = 400
            else:
                form = EmployeeImportForm()  # the next file starts as a dry run again
        else:
            status = 400
    else:
        form = EmployeeImportForm()
    return _import_page(request, form, result, status)


@require_POST
@hr_required
@fresh_sign_in_required
def import_apply(request):
    """Apply the file a dry run checked ("Apply this file"), if it still does what the dry run showed."""
    try:
        result = imports.apply_checked_file(request.POST.get("token", ""), by=request.user, request=request)
    except imports.ApplyRefused as refused:
        return _import_page(request, EmployeeImportForm(), None, 409 if refused.stale else 400,
                            refusal=refused.message)
    return _import_page(request, EmployeeImportForm(), result, 400 if result.errors else 200)


def _import_page(request, form, result, status, refusal=""):
    recent_runs = ImportRun.objects.select_related("by").defer("errors")[:RECENT_RUNS]
    changes, changes_total = result.listed_changes(CHANGES_SHOWN) if result else ([], 0)
    context = {
        "changes": [_change_row(*change) for change in changes],
        "changes_hidden": changes_total - len(changes),
        "changed_fields": [(FIELD_LABELS.get(name, name), count) for name, count in
                           (result.plan.changed_fields() if result and result.plan else {}).items()],
        "form": form,
        "result": result,
        "refusal": refusal,
        "errors_shown": result.errors[: imports.MAX_STORED_ERRORS] if result else [],
        "errors_hidden": max(0, len(result.errors) - imports.MAX_STORED_ERRORS) if result else 0,
        "recent_runs": list(recent_runs),
        "max_upload": filesizeformat(settings.IMPORT_MAX_BYTES),
        "last_applied": imports.last_applied_import(),
    }
    return render(request, "guidelines/hr/import.html", context, status=status)


def _shown(value):
    """A value as the change list shows it; None for none (a new employee's old values, a cleared field)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return value


def _change_row(employee_number, action, fields, name, employee_pk):
    """One employee's change for the result page: [(field, old, new)], None standing for no value."""
    end_date = fields.get("end_date")
    return {
        "employee_number": employee_number,
        "name": name,
        "employee_pk": employee_pk,
        "action": ImportChange.Action(action).label,
        "created": action == ImportChange.Action.CREATED,
        # A leaver: the change gives them an end date.
        "leaver": bool(end_date and end_date[1]),
        "fields": [(FIELD_LABELS.get(field, field), _shown(old), _shown(new)) for field, (old, new) in fields.items()],
    }
