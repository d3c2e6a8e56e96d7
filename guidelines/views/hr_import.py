"""HR: import employees from the HR system's CSV export (a dry run first, then the real thing)."""

from django import forms
from django.core.validators import FileExtensionValidator
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from .. import imports
from ..access import hr_required
from ..models import ImportRun

MAX_UPLOAD_MB = 20
RECENT_RUNS = 5


class EmployeeImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file from the HR system"),
        validators=[FileExtensionValidator(["csv"], message=_("Choose a .csv file."))],
        error_messages={
            "required": _("Choose a CSV file to upload."),
            "empty": _("The file is empty."),
            "invalid": _("Choose a CSV file to upload."),
        },
    )
    dry_run = forms.BooleanField(
        label=_("Dry run only: show what would change, change nothing"), required=False, initial=True
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_MB * 1024 * 1024:
            raise forms.ValidationError(_("The file is larger than %(size)d MB.") % {"size": MAX_UPLOAD_MB})
        return upload


@require_http_methods(["GET", "POST"])
@hr_required
def employee_import(request):
    result = None
    status = 200
    if request.method == "POST":
        form = EmployeeImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            result = imports.run_import(upload.read(), source=upload.name, by=request.user,
                                        dry_run=form.cleaned_data["dry_run"])
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
    context = {
        "form": form,
        "result": result,
        "errors_shown": result.errors[: imports.MAX_STORED_ERRORS] if result else [],
        "errors_hidden": max(0, len(result.errors) - imports.MAX_STORED_ERRORS) if result else 0,
        "recent_runs": list(recent_runs),
        "max_upload_mb": MAX_UPLOAD_MB,
        "last_applied": imports.last_applied_import(),
    }
    return render(request, "guidelines/hr/import.html", context, status=status)
