"""HR: "remind now" for a version, and the notification log with every failed or pending e-mail."""

import logging
from datetime import timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from .. import dashboards, notifications, tasks
from ..access import hr_required
from ..forms import LogFilterForm
from ..models import NotificationLog
from .lookups import filters_or_400, guideline_or_404

logger = logging.getLogger(__name__)
PAGE_SIZE = 50
SUMMARY_DAYS = 30


@hr_required
def nudge(request, slug):
    """ "Remind now": a confirmation page saying who will be e-mailed; only its POST queues the reminders."""
    guideline = guideline_or_404(slug)
    current = guideline.versions.published().first()
    if current is None or guideline.retired_at:
        return render(request, "400.html", {"message": _("This guideline has no current version to remind about.")},
                      status=409)
    current.guideline = guideline
    counts = dashboards.version_counts([current], timezone.localdate())[current.pk]
    outstanding = counts.pending + counts.overdue
    if request.method != "POST":
        return render(request, "guidelines/hr/nudge_confirm.html",
                      {"guideline": guideline, "version": current, "outstanding": outstanding})
    if request.POST.get("version") != str(current.pk):
        message = _("The version you looked at is no longer current; reminders are only sent for version "
                    "%(number)s. Please look at its figures first.") % {"number": current.number}
        return render(request, "400.html", {"message": message}, status=409)
    try:
        tasks.nudge_version.delay(current.pk, request.user.pk)
    except Exception:  # the broker is down: say so rather than pretend
        logger.exception("Could not queue the nudge for version %s", current.pk)
        return render(request, "400.html", {"message": _("The reminders could not be queued because the task "
                                                         "queue is unavailable. Please try again later.")},
                      status=503)
    messages.success(request, _(
        "Reminders are on their way to the %(count)s employees who have not acknowledged version %(number)s. "
        "Anyone who already received a reminder today is not e-mailed again."
    ) % {"count": outstanding, "number": current.number})
    return redirect("guidelines:dashboard_guideline", slug=guideline.slug)


@require_GET
@hr_required
def notification_log(request):
    form, bad_request = filters_or_400(request, LogFilterForm)
    if bad_request:
        return bad_request
    since = timezone.localdate() - timedelta(days=SUMMARY_DAYS)
    totals = dict(NotificationLog.objects.filter(day__gte=since).values_list("status").annotate(n=Count("pk"))
                  .order_by())
    rows = NotificationLog.objects.select_related("recipient__user").order_by("-claimed_at", "-pk")
    for name in ("status", "kind"):
        if form.cleaned_data[name]:
            rows = rows.filter(**{name: form.cleaned_data[name]})
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    summary = [
        {"status": status, "label": label, "count": totals.get(status, 0)}
        for status, label in NotificationLog.Status.choices
    ]
    return render(request, "guidelines/hr/notifications.html", {
        "form": form, "page": page, "summary": summary, "since": since,
        # A claim older than its lease is free for the next retry.
        "stuck_after": timezone.now() - notifications.CLAIM_LEASE,
    })

