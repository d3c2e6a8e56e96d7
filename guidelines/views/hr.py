"""HR: guidelines, drafts, four-eyes review, publication, retirement, exemptions and extensions."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.text import get_text_list
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import comprehension, employees, publishing, questions, services, status
from ..access import hr_required
from ..accounts import fresh_sign_in_required
from ..content import diff_blocks, render_markdown
from ..forms import (
    ApproveForm,
    DraftForm,
    EmployeeSearchForm,
    ExemptionForm,
    ExtensionForm,
    GuidelineForm,
    PublishForm,
    QuestionsForm,
    ReasonForm,
    SendBackForm,
    WorksCouncilConsentForm,
)
from ..models import (
    LANGUAGES,
    Acknowledgement,
    DueDateExtension,
    Exemption,
    Guideline,
    Version,
)
from .lookups import guideline_or_404


def _draft(pk):
    version = (Version.objects.select_related("guideline", "created_by", "approved_by", "works_council_recorded_by")
               .filter(pk=pk).first())
    if version is None:
        raise Http404(_("There is no such draft."))
    return version


def _may_review(user):
    return user.has_perm("guidelines.manage") or user.has_perm("guidelines.approve")


def _in_scope(guideline):
    return status.audience_on(guideline, timezone.localdate())


@require_GET
@hr_required
def guideline_list(request):
    guidelines = Guideline.objects.by_title().select_related("owner").annotate(
        drafts=Count("versions", filter=Q(versions__status__in=Version.EDITABLE_STATUSES)),
        awaiting_review=Count("versions", filter=Q(versions__status=Version.Status.DRAFT,
                                                   versions__review_requested_at__isnull=False)),
    )
    current = {v.guideline_id: v for v in Version.objects.published()}
    rows = [{"guideline": g, "current": current.get(g.pk)} for g in guidelines]
    return render(request, "guidelines/hr/guideline_list.html", {"rows": rows})


def _save_guideline_form(request, form):
    guideline = form.save(commit=False)
    guideline.owner = form.cleaned_data["owner_email"]
    publishing.save_guideline(
        guideline=guideline, by=request.user,
        audience_departments=form.cleaned_data["audience_departments"],
        audience_groups=form.cleaned_data["audience_groups"],
    )
    messages.success(request, _("The guideline settings were saved."))
    return redirect("guidelines:hr_guideline", slug=guideline.slug)


@hr_required
def guideline_new(request):
    form = GuidelineForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        return _save_guideline_form(request, form)
    status = 400 if request.method == "POST" else 200
    return render(request, "guidelines/hr/guideline_form.html", {"form": form, "guideline": None}, status=status)


@hr_required
def guideline_edit(request, slug):
    guideline = guideline_or_404(slug, "owner")
    form = GuidelineForm(request.POST or None, instance=guideline)
    if request.method == "POST" and form.is_valid():
        return _save_guideline_form(request, form)
    status = 400 if request.method == "POST" else 200
    return render(request, "guidelines/hr/guideline_form.html", {"form": form, "guideline": guideline},
                  status=status)


@require_GET
@hr_required
def guideline_detail(request, slug):
    guideline = guideline_or_404(slug, "owner")
    versions = list(guideline.versions.select_related("created_by", "approved_by", "published_by",
                                                      "works_council_recorded_by"))
    current = next((v for v in versions if v.status == Version.Status.PUBLISHED), None)
    drafts = [v for v in versions if v.is_editable]
    for draft in drafts:
        draft.consent = publishing.consent_of(draft)
    released = [v for v in versions if not v.is_editable]
    exemptions = Exemption.objects.filter(guideline=guideline).select_related("employee__user", "granted_by")
    extensions = DueDateExtension.objects.filter(guideline=guideline).select_related("employee__user", "granted_by")
    open_counts = questions.open_counts(released)
    return render(request, "guidelines/hr/guideline_detail.html", {
        "guideline": guideline,
        "current": current,
        # Which rule nobody understands: per question of the current version's check.
        "pass_rates": comprehension.pass_rates(current) if current else [],
        "drafts": drafts,
        "released": released,
        # The consent column, for a guideline that requires it now or did when a version was published.
        "show_consent": guideline.requires_works_council_consent or any(v.has_works_council_consent for v in released),
        # Per version: the questions waiting for an answer, the objections and exception requests for HR.
        "open_rows": [(version, open_counts[version.pk]) for version in released if open_counts[version.pk].any],
        "exemptions": exemptions[:100],
        "extensions": extensions[:100],
        "exemption_form": ExemptionForm(),
        "extension_form": ExtensionForm(),
        "in_scope": _in_scope(guideline).count(),
    })


def _initial_texts(guideline):
    """A new draft starts from the current version's texts."""
    current = guideline.versions.published().prefetch_related("texts").first()
    if current is None:  # the first draft: the guideline's titles
        return {"leading_language": "nl", "title_nl": guideline.title_nl, "title_en": guideline.title_en}
    initial = {"leading_language": current.leading_language}
    for text in current.texts.all():
        initial.update({f"title_{text.language}": text.title, f"body_{text.language}": text.body})
    return initial


def _draft_initial(version):
    initial = {"leading_language": version.leading_language, "effective_date": version.effective_date,
               "require_read_to_end": version.require_read_to_end}
    for text in version.texts.all():
        initial.update({f"title_{text.language}": text.title, f"body_{text.language}": text.body,
                        f"summary_{text.language}": text.change_summary})
    return initial


def _save_draft_form(request, form, version):
    version.leading_language = form.cleaned_data["leading_language"]
    version.effective_date = form.cleaned_data["effective_date"]
    version.require_read_to_end = form.cleaned_data["require_read_to_end"]
    try:
        version = publishing.save_draft(version=version, by=request.user, texts=form.texts())
    except ValidationError as error:
        messages.error(request, error.messages[0])
        return redirect("guidelines:hr_guideline", slug=version.guideline.slug)
    messages.success(request, _("The draft was saved."))
    return redirect("guidelines:hr_draft", pk=version.pk)


@hr_required
def draft_new(request, slug):
    guideline = guideline_or_404(slug, "owner")
    if guideline.retired_at:
        raise PermissionDenied(_("This guideline is retired; it cannot get new versions."))
    form = DraftForm(request.POST or None, initial=_initial_texts(guideline))
    if request.method == "POST" and form.is_valid():
        return _save_draft_form(request, form, Version(guideline=guideline))
    status = 400 if request.method == "POST" else 200
    return render(request, "guidelines/hr/draft_form.html",
                  {"form": form, "guideline": guideline, "version": None}, status=status)


def _comparison(version):
    """Per language: the diff of the draft against the current published version."""
    current = version.guideline.versions.published().prefetch_related("texts").first()
    if current is None:
        return None, {}
    old = {t.language: t.body for t in current.texts.all()}
    new = {t.language: t.body for t in version.texts.all()}
    return current, {lang: diff_blocks(old.get(lang, ""), new.get(lang, "")) for lang in LANGUAGES}


@hr_required
def draft_edit(request, pk):
    version = _draft(pk)
    if not version.is_editable:
        return redirect("guidelines:hr_guideline", slug=version.guideline.slug)
    form = DraftForm(request.POST or None, initial=_draft_initial(version))
    if request.method == "POST" and form.is_valid():
        return _save_draft_form(request, form, version)
    status = 400 if request.method == "POST" else 200
    return render(request, "guidelines/hr/draft_form.html",
                  {"form": form, "guideline": version.guideline, "version": version}, status=status)


def _name(user):
    return user.get_full_name() or user.email


def _names(users, conjunction):
    return get_text_list([_name(user) for user in users], conjunction)


def _draft_texts(version):
    """Per language: (text, its rendered preview, its diff against the current version), and the current version."""
    texts = {t.language: t for t in version.texts.all()}
    previews = {lang: render_markdown(text.body) for lang, text in texts.items()}
    current, diffs = _comparison(version)
    return texts, [(texts.get(lang), previews.get(lang, ""), diffs.get(lang)) for lang in LANGUAGES], current


@require_GET
def draft_detail(request, pk):
    if not _may_review(request.user):
        raise PermissionDenied(_("You do not have access to this page."))
    version = _draft(pk)
    texts, rows, current = _draft_texts(version)
    waiting = version.status == Version.Status.DRAFT and version.review_requested_at is not None
    fingerprint = publishing.fingerprint_of(version, texts.values())
    return render(request, "guidelines/hr/draft_detail.html", {
        "version": version,
        "guideline": version.guideline,
        "texts": rows,
        "current": current,
        "fingerprint": fingerprint,
        "consent": publishing.consent_of(version, fingerprint),
        "may_approve": waiting and publishing.may_approve(request.user, version),
        "may_send_back": waiting and request.user.has_perm("guidelines.approve"),
        "may_edit": request.user.has_perm("guidelines.manage") and version.is_editable,
        "is_hr": request.user.has_perm("guidelines.manage"),
        "approvers": _names(publishing.approvers_of(version), _("or")) if waiting else "",
        "title": version.title,
        "four_eyes": settings.GUIDELINES_FOUR_EYES,
        "questions": comprehension.questions_of(version),
    })


@hr_required
def draft_questions(request, pk):
    """The draft's comprehension check: up to five questions; saving withdraws an approval."""
    version = _draft(pk)
    if not version.is_editable:
        return redirect("guidelines:hr_draft", pk=version.pk)
    form = QuestionsForm(request.POST or None, initial=QuestionsForm.initial_for(comprehension.questions_of(version)))
    if request.method == "POST" and form.is_valid():
        filled = form.questions()
        try:
            comprehension.set_questions(version=version, by=request.user, questions=[q for _slot, q in filled])
        except ValidationError as error:
            # Each problem on the first field of its question's slot (set_questions numbers the filled ones).
            by_question = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
            for key, problems in by_question.items():
                slot = filled[int(key.rsplit("_", 1)[1]) - 1][0] if key.startswith("question_") else None
                for problem in problems:
                    form.add_error(f"q{slot}_text_nl" if slot else None, problem)
        else:
            messages.success(request, _("The questions were saved.") if filled
                             else _("The draft has no questions now."))
            return redirect("guidelines:hr_draft", pk=version.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "guidelines/hr/draft_questions.html",
                  {"form": form, "version": version, "guideline": version.guideline}, status=status)


def _reviewable(request, pk):
    """The draft an approver decides on: 403 without the approve permission; a version that is no longer a
    draft waiting for approval sends them back to its page, saying so."""
    if not request.user.has_perm("guidelines.approve"):
        raise PermissionDenied(_("You do not have access to this page."))
    version = _draft(pk)
    if version.status != Version.Status.DRAFT or version.review_requested_at is None:
        messages.info(request, _("This draft is not waiting for approval (any more)."))
        return version, redirect("guidelines:hr_draft", pk=version.pk)
    return version, None


@fresh_sign_in_required
def draft_approve(request, pk):
    """The confirmation of an approval: the approver confirms they read the draft; only this POST approves."""
    version, elsewhere = _reviewable(request, pk)
    if elsewhere:
        return elsewhere
    if not publishing.may_approve(request.user, version):
        raise PermissionDenied(_("The author of a draft cannot approve it; ask another approver."))
    texts, _rows, current = _draft_texts(version)
    # The draft as the approver read it on its page; a change since then voids the approval.
    read = request.GET.get("fingerprint") or publishing.fingerprint_of(version, texts.values())
    form = ApproveForm(request.POST or None, initial={"fingerprint": read})
    if request.method == "POST" and form.is_valid():
        try:
            publishing.approve_version(version=version, by=request.user, fingerprint=form.cleaned_data["fingerprint"])
        except ValidationError as error:
            form.add_error(None, error.messages[0])
        else:
            messages.success(request, _("You approved the draft of the %(title)s (%(draft)s). HR can publish it now.")
                             % {"draft": version.label, "title": version.title})
            return redirect("guidelines:approvals")
    status = 400 if request.method == "POST" else 200
    return render(request, "guidelines/hr/approve_confirm.html", {
        "form": form, "version": version, "guideline": version.guideline, "current": current,
        "texts": [texts[lang] for lang in LANGUAGES if lang in texts], "title": version.title,
    }, status=status)


@fresh_sign_in_required
def draft_send_back(request, pk):
    """An approver returns a draft to its author: a comment is needed, and only this POST sends it back."""
    version, elsewhere = _reviewable(request, pk)
    if elsewhere:
        return elsewhere
    form = SendBackForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            publishing.send_back(version=version, by=request.user, comment=form.cleaned_data["comment"])
        except ValidationError as error:
            form.add_error(None, error.messages[0])
        else:
            messages.success(request, _("The draft of the %(title)s (%(draft)s) was sent back to its author.")
                             % {"draft": version.label, "title": version.title})
            return redirect("guidelines:approvals")
    status = 400 if request.method == "POST" else 200
    return render(request, "guidelines/hr/send_back_confirm.html",
                  {"form": form, "version": version, "guideline": version.guideline,
                   "title": version.title}, status=status)


@require_POST
@hr_required
def draft_preview(request):
    """The sanitised HTML of Markdown typed in the editor (the live preview)."""
    source = request.POST.get("body", "")
    if len(source) > 200_000:
        return HttpResponse(_("The text is too long to preview."), status=400, content_type="text/plain")
    return HttpResponse(render_markdown(source), content_type="text/html; charset=utf-8")


@require_POST
@fresh_sign_in_required
def draft_review(request, pk):
    """The author asks for approval. Approving and sending back have their own confirmation pages: a
    request for them here (an old page) leads there and decides nothing."""
    version = _draft(pk)
    action = request.POST.get("action")
    if action in ("approve", "send_back") and request.user.has_perm("guidelines.approve"):
        return redirect("guidelines:hr_draft_approve" if action == "approve" else "guidelines:hr_draft_send_back",
                        pk=version.pk)
    if action != "request" or not request.user.has_perm("guidelines.manage"):
        raise PermissionDenied(_("You do not have access to this page."))
    try:
        asked = publishing.request_review(version=version, by=request.user)
    except ValidationError as error:
        messages.error(request, error.messages[0])
        return render(request, "400.html", {"message": error.messages[0]}, status=400)
    if asked.emailed:
        messages.success(request, _("Approval requested; we e-mailed %(names)s.")
                         % {"names": _names(asked.emailed, _("and"))})
    if asked.not_emailed:
        messages.warning(request, _("%(names)s may approve it too, but we have no e-mail address for them: "
                                    "please tell them yourself.") % {"names": _names(asked.not_emailed, _("and"))})
    if not asked.emailed and not asked.not_emailed:
        messages.warning(request, _("Approval requested, but nobody besides you can approve this draft. Ask an "
                                    "administrator to give a second person the approver role."))
    return redirect("guidelines:hr_draft", pk=version.pk)


@hr_required
@fresh_sign_in_required
def draft_publish(request, pk):
    """Confirmation page: material or editorial, and who will be asked; then publish."""
    version = _draft(pk)
    guideline = version.guideline
    if not version.is_editable:
        return redirect("guidelines:hr_guideline", slug=guideline.slug)
    current = guideline.versions.published().first()
    form = PublishForm(request.POST or None, initial={"change": "material" if current is None else None})
    if request.method == "POST" and form.is_valid():
        material = current is None or form.cleaned_data["change"] == "material"
        try:
            version = publishing.publish_version(version=version, by=request.user, material=material)
        except ValidationError as error:
            form.add_error(None, error.messages[0])
        else:
            messages.success(request, _("Version %(number)s is published.") % {"number": version.number})
            return redirect("guidelines:hr_guideline", slug=guideline.slug)
    in_scope = _in_scope(guideline)
    acknowledged_current = 0
    if current:
        acknowledged_current = Acknowledgement.objects.filter(
            guideline=guideline, major=current.major, employee__in=in_scope
        ).values("employee").distinct().count()
    status = 400 if request.method == "POST" else 200
    return render(request, "guidelines/hr/publish_confirm.html", {
        "form": form,
        "version": version,
        "guideline": guideline,
        "current": current,
        "next_material": f"{current.major + 1}.0" if current else "1.0",
        "next_editorial": f"{current.major}.{_next_minor(guideline, current)}" if current else None,
        "in_scope": in_scope.count(),
        "acknowledged_current": acknowledged_current,
        "four_eyes_missing": version.status != Version.Status.APPROVED and settings.GUIDELINES_FOUR_EYES,
        "awaiting_approval": version.status == Version.Status.DRAFT and version.review_requested_at is not None,
        "consent": publishing.consent_of(version),
    }, status=status)


def _consent_frozen():
    return _("This version is published; the works council's consent to it can no longer change.")


@require_http_methods(["GET", "POST"])
@hr_required
@fresh_sign_in_required
def draft_consent(request, pk):
    """HR records the works council's consent to a draft, or records it again (a correction, or consent to a
    changed text). The form carries the draft as HR saw it; an error comes back on it, with what was typed."""
    version = _draft(pk)
    if not version.is_editable:
        messages.info(request, _consent_frozen())
        return redirect("guidelines:hr_draft", pk=version.pk)
    fingerprint = publishing.fingerprint_of(version)
    form = WorksCouncilConsentForm(request.POST or None, initial={"fingerprint": fingerprint})
    if request.method == "POST" and form.is_valid():
        try:
            version = publishing.record_works_council_consent(
                version=version, by=request.user, consented_on=form.cleaned_data["consented_on"],
                reference=form.cleaned_data["reference"], note=form.cleaned_data["note"],
                fingerprint=form.cleaned_data["fingerprint"])
        except ValidationError as error:
            form.add_error(None, error)  # a field's own rule under the field, anything else above the form
        else:
            messages.success(request, _("The works council's consent (%(reference)s) is recorded for this draft.")
                             % {"reference": version.works_council_reference})
            return redirect("guidelines:hr_draft", pk=version.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "guidelines/hr/consent_form.html", {
        "form": form, "version": version, "guideline": version.guideline, "title": version.title,
        "consent": publishing.consent_of(version, fingerprint),
    }, status=status)


@require_http_methods(["GET", "POST"])
@hr_required
@fresh_sign_in_required
def draft_consent_withdraw(request, pk):
    """GET asks "Withdraw the works council's consent to this draft?" with a reason; only the POST withdraws."""
    version = _draft(pk)
    if not version.is_editable or not version.has_works_council_consent:
        messages.info(request, _consent_frozen() if not version.is_editable
                      else _("No consent of the works council is recorded for this draft."))
        return redirect("guidelines:hr_draft", pk=version.pk)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            publishing.withdraw_works_council_consent(version=version, by=request.user,
                                                      reason=form.cleaned_data["reason"])
        except ValidationError as error:
            form.add_error(None, error.messages[0])
        else:
            messages.success(request, _("The works council's consent to this draft was withdrawn. It cannot be "
                                        "published before their consent is recorded again."))
            return redirect("guidelines:hr_draft", pk=version.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "guidelines/hr/consent_withdraw_confirm.html", {
        "form": form, "version": version, "guideline": version.guideline, "title": version.title,
    }, status=status)


def _next_minor(guideline, current):
    minors = guideline.versions.released().filter(major=current.major).values_list("minor", flat=True)
    return max(minors) + 1


@hr_required
def guideline_retire(request, slug):
    guideline = guideline_or_404(slug, "owner")
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            publishing.retire_guideline(guideline=guideline, by=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            form.add_error(None, error.messages[0])
        else:
            messages.success(request, _("The guideline is retired. Its versions and acknowledgements stay."))
            return redirect("guidelines:hr_guideline", slug=guideline.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "guidelines/hr/retire_confirm.html",
                  {"form": form, "guideline": guideline, "in_scope": _in_scope(guideline).count()}, status=status)


PICK_LIMIT = 20  # employees listed when HR looks one up by name on an exemption or extension form


def _picker(request, form):
    """The search-then-pick part of an exemption or extension form: the employee chosen (?employee=<pk>,
    or the number typed), and the employees whose name, number or address matches ?q=."""
    search_form = EmployeeSearchForm(request.GET)
    query = search_form.cleaned_data["q"] if search_form.is_valid() else ""
    if form.is_bound and form.has_error("employee_number"):
        # An unknown number: look for what was typed, a name perhaps, among names, numbers and addresses.
        query = form.data.get("employee_number", "").strip()[:100]
    matches, more = [], False
    if query:
        found = list(employees.search(query, by=request.user)[:PICK_LIMIT + 1])
        matches, more = found[:PICK_LIMIT], len(found) > PICK_LIMIT
    chosen = None
    if form.is_bound:
        chosen = getattr(form, "cleaned_data", {}).get("employee_number")  # an Employee once it is valid
    elif request.GET.get("employee", "").isdigit() and len(request.GET["employee"]) < 19:
        chosen = employees.employee_or_none(int(request.GET["employee"]), by=request.user)
        if chosen is not None:
            form.initial["employee_number"] = chosen.employee_number
    asked = form.data if form.is_bound else request.GET
    return {"search_form": search_form, "query": query, "matches": matches, "more_matches": more,
            "chosen": chosen, "return_to": "employee" if asked.get("return_to") == "employee" else "guideline"}


def _return_to(request, form, employee, guideline):
    if form.cleaned_data.get("return_to") == "employee":
        return redirect("guidelines:hr_employee", pk=employee.pk)
    return redirect("guidelines:hr_guideline", slug=guideline.slug)


def _grant_page(request, guideline, form, kind, status):
    context = {"form": form, "guideline": guideline, "kind": kind, **_picker(request, form)}
    return render(request, "guidelines/hr/grant_form.html", context, status=status)


def _initial_return_to(request):
    return {"return_to": "employee" if request.GET.get("return_to") == "employee" else "guideline"}


@require_http_methods(["GET", "POST"])
@hr_required
@fresh_sign_in_required
def exemption_grant(request, slug):
    """The exemption form: find the employee by name (GET ?q=), pick them, give the reason and dates.
    An error comes back on this form, with what was typed."""
    guideline = guideline_or_404(slug, "owner")
    if request.method == "GET":
        return _grant_page(request, guideline, ExemptionForm(initial=_initial_return_to(request)), "exemption", 200)
    form = ExemptionForm(request.POST)
    if form.is_valid():
        employee = form.cleaned_data["employee_number"]
        try:
            services.grant_exemption(employee=employee, guideline=guideline,
                                     by=request.user, reason=form.cleaned_data["reason"],
                                     starts_on=form.cleaned_data["starts_on"], ends_on=form.cleaned_data["ends_on"])
        except ValidationError as error:
            form.add_error(None, error.messages[0])
        else:
            messages.success(request, _("The exemption of %(name)s was recorded.") % {"name": employee.full_name})
            return _return_to(request, form, employee, guideline)
    return _grant_page(request, guideline, form, "exemption", 400)


@require_http_methods(["GET", "POST"])
@hr_required
def exemption_revoke(request, pk):
    """GET asks "Revoke the exemption of X for Y?"; only the confirming POST revokes."""
    exemption = get_object_or_404(Exemption.objects.select_related("guideline", "employee__user"), pk=pk)
    back = "employee" if request.GET.get("return_to", request.POST.get("return_to")) == "employee" else "guideline"
    if request.method == "POST":
        try:
            services.revoke_exemption(exemption=exemption, by=request.user)
        except ValidationError as error:
            return render(request, "400.html", {"message": error.messages[0]}, status=400)
        messages.success(request, _("The exemption of %(name)s was revoked.") % {"name": exemption.employee.full_name})
        if back == "employee":
            return redirect("guidelines:hr_employee", pk=exemption.employee_id)
        return redirect("guidelines:hr_guideline", slug=exemption.guideline.slug)
    return render(request, "guidelines/hr/revoke_confirm.html", {"exemption": exemption, "return_to": back})


@require_http_methods(["GET", "POST"])
@hr_required
def extension_grant(request, slug):
    """The extension form, like the exemption form, for the current version's due date."""
    guideline = guideline_or_404(slug, "owner")
    current = guideline.versions.published().first()
    if request.method == "GET":
        form = ExtensionForm(initial=_initial_return_to(request))
        return _grant_page(request, guideline, form, "extension", 200)
    form = ExtensionForm(request.POST)
    if current is None:
        form.is_valid()
        form.add_error(None, _("This guideline has no published version to extend."))
    elif form.is_valid():
        employee = form.cleaned_data["employee_number"]
        try:
            services.extend_due_date(employee=employee, version=current,
                                     by=request.user, due_date=form.cleaned_data["due_date"],
                                     reason=form.cleaned_data["reason"])
        except ValidationError as error:
            form.add_error(None, error.messages[0])
        else:
            messages.success(request, _("The due date of %(name)s was extended.") % {"name": employee.full_name})
            return _return_to(request, form, employee, guideline)
    return _grant_page(request, guideline, form, "extension", 400)
