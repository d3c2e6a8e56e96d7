"""What several views look up the same way: a guideline by its address, a released version by its
number, list filters from the query string. Each answers 404 or 400 with a message that says what
is wrong."""

import re

from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _

from ..models import Guideline, Version

VERSION_NUMBER = re.compile(r"\d{1,6}\.\d{1,6}")


def guideline_or_404(slug, *related):
    guidelines = Guideline.objects.select_related(*related) if related else Guideline.objects
    guideline = guidelines.filter(slug=slug).first()
    if guideline is None:
        raise Http404(_("There is no guideline at this address."))
    return guideline


def check_version_number(number):
    """404 for anything that cannot be a version number (before it reaches a query)."""
    if not VERSION_NUMBER.fullmatch(number):
        raise Http404(_("Version numbers look like 2.0 or 2.1."))


def released_version_or_404(guideline, number):
    """(version, every released version): the one numbered `number`, or by default the current one
    (the latest once the guideline is retired)."""
    versions = list(guideline.versions.released().only("guideline_id", "major", "minor", "status", "published_at"))
    if not versions:
        raise Http404(_("This guideline has no published version yet."))
    for version in versions:
        version.guideline = guideline
    if number is None:
        return next((v for v in versions if v.status == Version.Status.PUBLISHED), versions[0]), versions
    check_version_number(number)
    version = next((v for v in versions if v.number == number), None)
    if version is None:
        raise Http404(_("This guideline has no published version %(number)s.") % {"number": number})
    return version, versions


def filters_or_400(request, form_class):
    """(the valid filter form, None), or (None, a 400 page that says which filter is wrong)."""
    form = form_class(request.GET)
    if form.is_valid():
        return form, None
    problems = "; ".join(f"{form.fields[name].label}: {' '.join(errors)}" for name, errors in form.errors.items())
    message = _("The list cannot be filtered that way (%(problems)s).") % {"problems": problems}
    return None, render(request, "400.html", {"message": message}, status=400)
