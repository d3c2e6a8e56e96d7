"""HR: import employees from the HR system's CSV export (a dry run first, then the real thing)."""

from django.conf import settings
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from .. import imports
from ..access import hr_required
from ..accounts import fresh_sign_in_required
from ..forms import EmployeeImportForm
from ..models import ImportChange, ImportRun

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
            elif result.run.outcome == ImportRun.Outcome.DRY_RUN:
                # The next step is applying the same file: offer that, unticked.
                form = EmployeeImportForm(initial={"dry_run": False})
        else:
            status = 400
    else:
        form = EmployeeImportForm()

    recent_runs = ImportRun.objects.select_related("by").defer("errors")[:RECENT_RUNS]
    changes, changes_total = result.changes(CHANGES_SHOWN) if result else ([], 0)
    context = {
        "changes": [_change_row(*change) for change in changes],
        "changes_hidden": changes_total - len(changes),
        "changed_fields": result.plan.changed_fields() if result and result.plan else {},
        "form": form,
        "result": result,
        "errors_shown": result.errors[: imports.MAX_STORED_ERRORS] if result else [],
        "errors_hidden": max(0, len(result.errors) - imports.MAX_STORED_ERRORS) if result else 0,
        "recent_runs": list(recent_runs),
        "max_upload": filesizeformat(settings.IMPORT_MAX_BYTES),
        "last_applied": imports.last_applied_import(),
    }
    return render(request, "guidelines/hr/import.html", context, status=status)


def _shown(value):
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return value


def _change_row(employee_number, action, fields):
    """One employee's change for the result page: [(field, old, new)] with empty values as a dash."""
    return {
        "employee_number": employee_number,
        "action": ImportChange.Action(action).label,
        "fields": [(name, _shown(old), _shown(new)) for name, (old, new) in fields.items()],
    }
