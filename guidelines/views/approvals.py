"""Approvers: the drafts waiting for their approval (the four-eyes rule decides which: publishing)."""

from django.contrib.auth import get_user_model
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .. import publishing
from ..access import approver_required


@require_GET
@approver_required
def inbox(request):
    drafts = list(publishing.awaiting_approval(request.user))
    askers = get_user_model().objects.in_bulk({draft.requested_by_id for draft in drafts} - {None})
    rows = [{"version": draft, "title": draft.title,
             "requested_by": askers.get(draft.requested_by_id)} for draft in drafts]
    return render(request, "guidelines/approvals.html", {"rows": rows})
