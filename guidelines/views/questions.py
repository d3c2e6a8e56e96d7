"""Questions and objections (guidelines.questions): from a guideline's page an employee asks its owner a
question or records an objection or exception request, and finds their own threads under "My
questions"; a thread's page, where the employee follows up and the owner or HR answers; an objection's
page, where HR records its handling; the inbox of the owners and HR. Who may see and do what is decided
in guidelines.questions: someone else's thread or objection is not found (404)."""

import math

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from .. import questions, status
from ..access import employee_required
from ..accounts import fresh_sign_in_required, request_evidence, sign_in_label
from ..content import released_texts
from ..forms import InboxFilterForm, ObjectionForm, QuestionForm, ReplyForm, ResolveForm
from ..models import LANGUAGES, Acknowledgement, Version
from ..security import security_event
from .lookups import check_version_number, guideline_or_404

# Rows per list of the inbox; beyond, the page says to filter by guideline.
INBOX_ROWS = 200
# The fields whose own checks a service repeats: its refusal lands on the field.
TEXT_ERRORS = ("required", "control_character", "max_length")


def _released(guideline, *, number=None, pk=None):
    """A released version of the guideline: by pk, by number, or the current one; None if there is none."""
    versions = guideline.versions.released()
    if pk is not None:
        version = versions.filter(pk=pk).first()
    elif number is not None:
        check_version_number(number)
        major, minor = number.split(".")
        version = versions.filter(major=int(major), minor=int(minor)).first()
    else:
        version = versions.filter(status=Version.Status.PUBLISHED).first()
    if version is not None:
        version.guideline = guideline
    return version


def _text(version, language):
    """The language variant shown: `language`, else the legally leading one."""
    variants = released_texts([version])[version.pk]
    return variants.get(language) or variants.get(version.leading_language) or next(iter(variants.values()))


def _reading(request, guideline):
    """(version, language) a GET names: ?version= (default the current one) and ?lang= (default the page's)."""
    version = _released(guideline, number=request.GET.get("version"))
    if version is None:
        raise Http404(_("This guideline has no such published version."))
    language = request.GET.get("lang") or request.LANGUAGE_CODE
    if language not in LANGUAGES:
        raise Http404(_("This guideline is available in Dutch (nl) and English (en) only."))
    return version, _text(version, language).language


def _allowed(check, employee, version):
    """A GET of a form the employee may not use: 403 for someone it does not concern, 404 with the
    reason for a version it cannot be about (retired, not current)."""
    try:
        check(employee, version)
    except ValidationError as error:
        raise Http404(error.messages[0]) from error


def _posted(request, guideline, form):
    """(version, language, None) of a posted form, or (None, None, a 400 page) when its hidden fields were
    missing or altered."""
    form.is_valid()
    if "version" in form.errors or "language" in form.errors:
        return None, None, render(request, "400.html", {"message": _("The form was incomplete or altered. Please "
                                                                      "try again.")}, status=400)
    version = _released(guideline, pk=form.cleaned_data["version"])
    if version is None:
        return None, None, render(request, "400.html", {"message": _("That version does not belong to this "
                                                                      "guideline.")}, status=400)
    return version, form.cleaned_data["language"], None


def _refusal(form, error, text_field):
    """A service's refusal on the form: on the text field for what the field checks too, else for the form."""
    form.add_error(text_field if error.code in TEXT_ERRORS else None, error)


def _too_many(request, render_page, form, error):
    """429: the form again, with what was typed and when the next message may go."""
    form.add_error(None, error)
    seconds = max(1, math.ceil((error.retry_at - timezone.now()).total_seconds()))
    security_event("rate_limited", request=request, outcome="denied", bucket="questions", retry_after=seconds)
    response = render_page(status=429)
    response["Retry-After"] = str(seconds)
    return response


# The employee's forms ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@employee_required
def ask(request, slug):
    """Ask the owner a question about the version being read."""
    guideline = guideline_or_404(slug, "owner")
    if request.method == "GET":
        version, language = _reading(request, guideline)
        _allowed(questions.check_may_ask, request.employee, version)
        form = QuestionForm(initial={"version": version.pk, "language": language})
    else:
        form = QuestionForm(request.POST)
        version, language, refused = _posted(request, guideline, form)
        if refused:
            return refused

    def page(status=200):
        return render(request, "guidelines/questions/ask.html", {
            "form": form, "guideline": guideline, "version": version, "text": _text(version, language),
            "owner": guideline.owner}, status=status)

    if request.method == "GET":
        return page()
    if form.is_valid():
        try:
            question = questions.ask(employee=request.employee, version=version, language=language,
                                     text=form.cleaned_data["text"])
        except questions.TooManyMessages as error:
            return _too_many(request, page, form, error)
        except ValidationError as error:
            _refusal(form, error, "text")
        else:
            messages.success(request, _("Your question has been sent to %(name)s, the owner of this guideline. You "
                                        "will get the answer by e-mail.") % {"name": _name(guideline.owner)})
            return redirect("guidelines:question", pk=question.pk)
    return page(status=400)


@require_http_methods(["GET", "POST"])
@employee_required
def object_to(request, slug):
    """Record an objection or an exception request about the current version."""
    guideline = guideline_or_404(slug, "owner")
    if request.method == "GET":
        version, language = _reading(request, guideline)
        _allowed(questions.check_may_object, request.employee, version)
        form = ObjectionForm(initial={"version": version.pk, "language": language})
    else:
        form = ObjectionForm(request.POST)
        version, language, refused = _posted(request, guideline, form)
        if refused:
            return refused

    def page(status=200):
        employee = request.employee
        standing = status_of(employee, version)
        return render(request, "guidelines/questions/object.html", {
            "form": form, "guideline": guideline, "version": version, "text": _text(version, language),
            "due_date": standing.due_date if standing else None,
            "acknowledged": bool(standing and standing.acknowledgement)}, status=status)

    if request.method == "GET":
        return page()
    if form.is_valid():
        try:
            objection = questions.record_objection(
                employee=request.employee, version=version, language=language, kind=form.cleaned_data["kind"],
                reason=form.cleaned_data["reason"], meta=request_evidence(request, Acknowledgement.Channel.WEB))
        except questions.TooManyMessages as error:
            return _too_many(request, page, form, error)
        except ValidationError as error:
            _refusal(form, error, "reason")
        else:
            messages.success(request, _("Your %(kind)s has been recorded. HR will answer it; you will get the answer "
                                        "by e-mail.") % {"kind": objection.get_kind_display()})
            return redirect("guidelines:objection", pk=objection.pk)
    return page(status=400)


def status_of(employee, version):
    """The employee's standing on the version's guideline today (None before a joiner's first day, or when
    it does not apply to them)."""
    guideline = version.guideline
    current = version if version.status == Version.Status.PUBLISHED else guideline.versions.published().first()
    if current is None:
        return None
    current.guideline = guideline
    audience = {guideline.pk} if guideline.includes(employee) else set()
    return status.standings(employee, [current], audience=audience)[current.pk]


@require_GET
@employee_required
def my_questions(request):
    own_questions, own_objections = questions.own_threads(request.employee)
    return render(request, "guidelines/questions/mine.html", {
        "questions": own_questions, "objections": own_objections,
        "handles": questions.handles_any(request.user)})


# A thread, an objection -------------------------------------------------------------------------------------


def _name(user):
    return user.get_full_name() or user.email


@require_http_methods(["GET", "POST"])
def question(request, pk):
    """The thread: the employee follows up, the owner or HR answers."""
    thread = get_object_or_404(questions.with_state(questions.visible_questions(request.user)), pk=pk)
    own = request.employee is not None and thread.employee_id == request.employee.pk
    answers = questions.may_answer(request.user, thread)
    form = None
    if own or answers:
        form = ReplyForm(request.POST if request.method == "POST" else None)
        if own:
            form.fields["text"].label = _("Your message")
            form.fields["text"].error_messages["required"] = _("Write what you want to add.")
            form.fields["text"].help_text = _("The owner gets it by e-mail.")
        else:
            form.fields["text"].help_text = _("%(name)s gets your answer by e-mail.") % {
                "name": thread.employee.full_name}

    def page(status=200):
        return render(request, "guidelines/questions/thread.html", {
            # The title in the reader's language; the thread says which language the question was read in.
            "question": thread, "messages_in_thread": list(thread.messages.select_related("author")),
            "text": _text(thread.version, request.LANGUAGE_CODE), "form": form, "own": own, "answers": answers,
            "is_open": questions.is_open(thread)}, status=status)

    if request.method == "GET":
        return page()
    if form is None:
        raise PermissionDenied(_("Only the employee who asked, the owner of the guideline and HR write here."))
    if form.is_valid():
        try:
            if own:
                questions.follow_up(question=thread, employee=request.employee, text=form.cleaned_data["text"])
            else:
                questions.answer(question=thread, by=request.user, text=form.cleaned_data["text"])
        except questions.TooManyMessages as error:
            return _too_many(request, page, form, error)
        except ValidationError as error:
            _refusal(form, error, "text")
        else:
            if own:
                messages.success(request, _("Added to your question; the owner has been told."))
            else:
                messages.success(request, _("Your answer has been sent to %(name)s.") % {
                    "name": thread.employee.full_name})
            return redirect("guidelines:question", pk=thread.pk)
    return page(status=400)


@require_http_methods(["GET", "POST"])
def objection(request, pk):
    """An objection or exception request with its evidence and HR's handling; HR records the handling here."""
    record = get_object_or_404(questions.visible_objections(request.user), pk=pk)
    resolution = questions.resolution_of(record)
    may_resolve = resolution is None and questions.may_resolve(request.user, record)
    if request.method == "POST":
        if resolution is not None:
            messages.info(request, _("This has been handled already."))
            return redirect("guidelines:objection", pk=record.pk)
        if not may_resolve:
            raise PermissionDenied(_("Only HR handles objections and exception requests."))
        return _resolve(request, record)
    form = ResolveForm(kind=record.kind) if may_resolve else None
    return _objection_page(request, record, resolution, form)


def _objection_page(request, record, resolution, form, status=200):
    standing = status_of(record.employee, record.version)
    return render(request, "guidelines/questions/objection.html", {
        "objection": record, "resolution": resolution, "form": form, "standing": standing,
        "own": request.employee is not None and record.employee_id == request.employee.pk,
        "evidence_reader": request.user.has_perm("guidelines.manage") or request.user.has_perm("guidelines.audit"),
        "sign_in": sign_in_label(record.auth_method, record.sso_amr),
        # The title in the reader's language; the facts say which language variant was shown.
        "text": _text(record.version, request.LANGUAGE_CODE)}, status=status)


@fresh_sign_in_required  # it may grant an exemption
def _resolve(request, record):
    form = ResolveForm(request.POST, kind=record.kind)
    if form.is_valid():
        try:
            resolution = questions.resolve(objection=record, by=request.user, outcome=form.cleaned_data["outcome"],
                                           note=form.cleaned_data["note"], ends_on=form.cleaned_data.get("ends_on"))
        except ValidationError as error:
            _refusal(form, error, "note")
        else:
            messages.success(request, _("Recorded: %(outcome)s. %(name)s has been told by e-mail.") % {
                "outcome": resolution.get_outcome_display(), "name": record.employee.full_name})
            return redirect("guidelines:objection", pk=record.pk)
    return _objection_page(request, record, None, form, status=400)


# The inbox of the owners and HR -----------------------------------------------------------------------------


@require_GET
def inbox(request):
    """The questions and objections the signed-in owner or HR handles, open ones by default, per guideline
    and version."""
    if not questions.handles_any(request.user):
        raise PermissionDenied(_("This page is for the owners of guidelines and for HR."))
    form = InboxFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        problems = "; ".join(f"{form.fields[name].label}: {' '.join(errors)}" for name, errors in form.errors.items())
        return render(request, "400.html", {"message": _("The list cannot be filtered that way (%(problems)s).")
                                            % {"problems": problems}}, status=400)
    guideline, show = form.cleaned_data["guideline"], form.cleaned_data["show"]
    threads = questions.with_state(questions.handled_questions(request.user))
    objections = questions.handled_objections(request.user)
    if guideline is not None:
        threads, objections = threads.filter(guideline=guideline), objections.filter(guideline=guideline)
    if show == "open":
        threads = threads.filter(last_role=questions.Role.EMPLOYEE)
        objections = objections.filter(resolution__isnull=True)
    threads = list(threads.order_by("guideline__slug", "-version__major", "-version__minor", "-last_at")
                   [:INBOX_ROWS + 1])
    objections = list(objections.order_by("guideline__slug", "-version__major", "-version__minor", "-recorded_at")
                      [:INBOX_ROWS + 1])
    return render(request, "guidelines/questions/inbox.html", {
        "form": form, "filters": form.cleaned_data, "threads": threads[:INBOX_ROWS],
        "objections": objections[:INBOX_ROWS], "more": len(threads) > INBOX_ROWS or len(objections) > INBOX_ROWS,
        "show": show, "chosen": guideline})
