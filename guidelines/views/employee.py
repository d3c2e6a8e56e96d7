import functools

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Window
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import comprehension, publishing, questions, services, status
from ..access import employee_required, is_hr_or_auditor
from ..accounts import request_evidence
from ..content import diff_between, released_texts
from ..forms import AcknowledgeForm, ReadingReportForm
from ..models import (
    LANGUAGES,
    Acknowledgement,
    Employee,
    Guideline,
    Objection,
    Question,
    QuizQuestion,
    Reading,
    ReadingProgress,
    Version,
    VersionText,
)
from ..prepared import PreparedQuery
from .lookups import check_version_number, guideline_or_404


def _content_language(request):
    language = request.GET.get("lang") or request.POST.get("language") or request.LANGUAGE_CODE
    if language not in LANGUAGES:
        raise Http404(_("This guideline is available in Dutch (nl) and English (en) only."))
    return language


RECENT_VERSIONS = 5
VERSION_FIELDS = ("guideline_id", "major", "minor", "status", "published_at", "leading_language", "require_read_to_end")


def _released_versions(guideline, *fields):
    """Every published version, newest first, without texts (those are loaded for one or two), with
    VERSION_FIELDS and `fields`."""
    versions = list(guideline.versions.released().only(*VERSION_FIELDS, *fields))
    for version in versions:
        version.guideline = guideline
    return versions


def _recent_released(slug, employee_id):
    """The latest released versions of the guideline `slug` with the guideline and its owner, each
    with the number of released versions, whether the employee opened it before, and whether they
    asked about the guideline or objected to it (then the page lists their threads)."""
    return (
        Version.objects.released().filter(guideline__slug=slug).select_related("guideline__owner")
        .only(*VERSION_FIELDS, "guideline")
        .annotate(released_count=Window(Count("pk")),
                  opened=Exists(Reading.objects.filter(employee=employee_id, version=OuterRef("pk"))),
                  has_questions=Exists(QuizQuestion.objects.filter(version=OuterRef("pk"))),
                  asked=Exists(Question.objects.filter(employee=employee_id, guideline=OuterRef("guideline"))),
                  objected=Exists(Objection.objects.filter(employee=employee_id, guideline=OuterRef("guideline"))))
    )[:RECENT_VERSIONS]


# Without an employee (HR or an auditor reading) the id is None: no reading matches NULL.
_recent_versions = PreparedQuery(Version, _recent_released, str, int)


class Versions:
    """The versions a guideline page shows: the RECENT_VERSIONS latest released ones (newest first),
    how many were released, and the current one. Publication numbers versions upwards and
    supersedes the previous one, so the current version, if any, is the newest."""

    def __init__(self, guideline, recent, count):
        self.guideline, self.recent, self.count = guideline, recent, count
        for version in recent:
            version.guideline = guideline
        self.current = next((v for v in recent if v.status == Version.Status.PUBLISHED), None)

    @classmethod
    def of(cls, slug, employee=None):
        """The guideline of `slug` and its latest versions in one query (and one more for a guideline
        that has no released version yet). `opened` on each: whether `employee` opened it before."""
        recent = _recent_versions(slug, employee.pk if employee is not None else None)
        if not recent:
            return cls(guideline_or_404(slug, "owner"), [], 0)
        return cls(recent[0].guideline, recent, recent[0].released_count)

    def pick(self, number):
        """The version numbered `number` (the current one for None), or None."""
        if number is None:
            return self.current
        check_version_number(number)
        version = next((v for v in self.recent if v.number == number), None)
        if version is None and self.count > len(self.recent):
            major, minor = number.split(".")
            version = self.guideline.versions.released().only(*VERSION_FIELDS).filter(
                major=int(major), minor=int(minor)).first()
            if version is not None:
                version.guideline = self.guideline
        return version


def _in_audience(request, guideline):
    return request.employee is not None and guideline.includes(request.employee)


def _detail_context(request, versions, version, language, *, in_audience, form=None, wrong=()):
    employee, guideline, current = request.employee, versions.guideline, versions.current
    ack = previous_ack = standing = None
    if employee and current:
        standing = status.standings(employee, [current], audience={guideline.pk} if in_audience else set())[current.pk]
        ack = standing.acknowledgement
        previous_ack = None if ack else standing.latest_acknowledgement
    compare_with = previous_ack.version if previous_ack and version == current else None
    if compare_with == current:
        compare_with = None
    texts = released_texts([version, compare_with])
    text = _text_in(texts[version.pk], version, language)
    changes = None
    if compare_with:
        old_text = _text_in(texts[compare_with.pk], compare_with, language)
        # The template renders the diff once per process (its cache key: both texts and their
        # fingerprints); `blocks` is computed only then.
        changes = {"since": compare_with, "key": f"{old_text.pk}:{old_text.content_hash}:{text.pk}:{text.content_hash}",
                   "blocks": functools.partial(diff_between, old_text, text)}
    can_acknowledge = standing is not None and version == current and standing.may_acknowledge
    if can_acknowledge and form is None:
        via = request.GET.get("via", "")
        form = AcknowledgeForm(initial={"version": version.pk, "language": text.language, "via": via[:200]},
                               questions=_questions(version), language=text.language)
    # Whether the text was shown to its end before (a query only where the version requires it).
    read_to_end = can_acknowledge and version.require_read_to_end and bool(_read_to_end(employee.pk, version.pk))
    # The employee's own questions and objections about this guideline (queries only when there are some).
    own_questions = own_objections = ()
    if employee and versions.recent and (versions.recent[0].asked or versions.recent[0].objected):
        own_questions, own_objections = questions.own_threads_about(employee, guideline)
    return {
        "guideline": guideline,
        "version": version,
        "current": current,
        "recent_versions": versions.recent,
        "version_count": versions.count,
        "text": text,
        "languages": [(t.language, t.get_language_display()) for t in texts[version.pk].values()],
        "ack": ack,
        "previous_ack": previous_ack,
        "due_date": standing.due_date if standing else None,
        "changes": changes,
        "form": form if can_acknowledge else None,
        "read_to_end": read_to_end,
        # The check's questions with the passage to read again after a wrong answer.
        "quiz": [{"field": form[f"q{question.pk}"], "number": number,
                  "hint": question.hint(text.language) if f"q{question.pk}" in wrong else ""}
                 for number, question in enumerate(form.questions, start=1)] if can_acknowledge else [],
        # Asking the owner and objecting: for an employee the guideline applies to (questions.py decides).
        "may_ask": in_audience and employee is not None and not guideline.retired_at,
        "may_object": in_audience and employee is not None and version == current,
        "own_questions": own_questions,
        "own_objections": own_objections,
    }


def _text_in(variants, version, language):
    """The variant in `language`, else the legally leading one. `variants`: {language: VersionText}."""
    return variants.get(language) or variants.get(version.leading_language) or next(iter(variants.values()))


def _current_texts(department_id, user_id):
    """The texts of the current versions of the guidelines of the employee in this department with
    this account, with version and guideline."""
    employee = Employee(department_id=department_id, user_id=user_id)
    return (
        VersionText.objects.filter(version__status=Version.Status.PUBLISHED,
                                   version__guideline__in=Guideline.objects.for_employee(employee))
        .select_related("version__guideline")
        .only("language", "title", "version__major", "version__minor", "version__published_at",
              "version__leading_language", "version__guideline__slug", "version__guideline__due_days",
              "version__guideline__reacknowledge_days", "version__guideline__retired_at")
    )


_current_texts_for = PreparedQuery(VersionText, _current_texts, int, int)


@require_GET
@employee_required
def home(request):
    employee = request.employee
    current_texts = _current_texts_for(employee.department_id, employee.user_id)
    versions = {}
    for text in current_texts:
        versions.setdefault(text.version_id, (text.version, {}))[1][text.language] = text
    # Every guideline listed is the employee's (Guideline.objects.for_employee above).
    standings = status.standings(employee, [version for version, _ in versions.values()],
                                 audience={version.guideline_id for version, _ in versions.values()})
    pending, done, exempt = [], [], []
    for version, texts in versions.values():
        standing = standings[version.pk]
        item = {
            "guideline": version.guideline,
            "version": version,
            "text": texts.get(request.LANGUAGE_CODE) or texts[version.leading_language],
            "due_date": standing.due_date,
        }
        if standing.status == status.Status.ACKNOWLEDGED:
            done.append({**item, "ack": standing.acknowledgement})
        elif standing.status == status.Status.EXEMPT:
            exempt.append(item)
        elif standing.status is not None:  # not before a joiner's first day
            item["overdue"] = standing.overdue
            pending.append(item)
    pending.sort(key=lambda item: item["due_date"])
    done.sort(key=lambda item: item["text"].title)
    # An approver's own work comes first: the drafts waiting for their approval.
    approvals = (publishing.awaiting_approval(request.user).count()
                 if request.user.has_perm("guidelines.approve") else None)
    return render(request, "guidelines/home.html", {"pending": pending, "done": done, "exempt": exempt,
                                                    "today": timezone.localdate(), "approvals": approvals})


@require_GET
def guideline_detail(request, slug):
    versions = Versions.of(slug, request.employee)
    in_audience = _in_audience(request, versions.guideline)
    if not in_audience and not is_hr_or_auditor(request.user):
        raise PermissionDenied(_("This guideline does not apply to you."))
    version = versions.pick(request.GET.get("version"))
    if version is None:
        raise Http404(_("This guideline has no such published version."))
    language = _content_language(request)
    context = _detail_context(request, versions, version, language, in_audience=in_audience)
    if context["form"] is not None and not version.opened:
        services.record_reading(employee=request.employee, version=version)
    return render(request, "guidelines/guideline_detail.html", context)


@require_GET
def version_list(request, slug):
    guideline = guideline_or_404(slug)
    if not _in_audience(request, guideline) and not is_hr_or_auditor(request.user):
        raise PermissionDenied(_("This guideline does not apply to you."))
    versions = _released_versions(guideline, "works_council_consented_on", "works_council_reference")
    if not versions:  # drafts only: nothing an employee may read yet, and no current version to go back to
        raise Http404(_("This guideline has no published version yet."))
    language = _content_language(request)
    summaries = {
        text.version_id: text
        for text in VersionText.objects.filter(version__in=versions).only("version_id", "language", "title",
                                                                          "change_summary")
        if text.language == language
    }
    rows = [{"version": version, "text": summaries.get(version.pk)} for version in versions]
    title = next((row["text"].title for row in rows if row["text"]), guideline.title)
    return render(request, "guidelines/versions.html",
                  {"guideline": guideline, "rows": rows, "title": title, "language": language,
                   "show_consent": any(version.has_works_council_consent for version in versions)})


_released_version = PreparedQuery(
    Version,
    lambda slug, pk: Version.objects.released().select_related("guideline").filter(guideline__slug=slug, pk=pk)
    .annotate(has_questions=Exists(QuizQuestion.objects.filter(version=OuterRef("pk")))),
    str, int)


_read_to_end = PreparedQuery(
    ReadingProgress, lambda employee, version: ReadingProgress.objects.filter(
        employee=employee, version=version, read_to_end_at__isnull=False).values_list("pk", flat=True)[:1],
    int, int)


def _questions(version):
    """The version's comprehension questions: a query only for a version that has any."""
    return comprehension.questions_of(version) if getattr(version, "has_questions", True) else []


@require_http_methods(["GET", "POST"])
def acknowledge(request, slug):
    if request.method == "GET":
        # A reload of the address the form posted to, or a bookmark of it: the guideline's page has the
        # form (and decides who may see it).
        return redirect("guidelines:detail", slug)
    return _acknowledge(request, slug)


@employee_required
def _acknowledge(request, slug):
    form = AcknowledgeForm(request.POST)
    if not form.is_valid() and ("version" in form.errors or "language" in form.errors or "via" in form.errors):
        guideline_or_404(slug)
        return render(request, "400.html", {"message": _("The form was incomplete or altered. Please try again.")},
                      status=400)
    # The version with its guideline in one query; the guideline alone only to tell 404 from 400.
    version = next(iter(_released_version(slug, form.cleaned_data["version"])), None)
    if version is None:
        guideline_or_404(slug)
        return render(request, "400.html", {"message": _("That version does not belong to this guideline.")},
                      status=400)
    guideline = version.guideline
    language = form.cleaned_data["language"]
    # Again with the version's questions, labelled in the language read.
    form = AcknowledgeForm(request.POST, questions=_questions(version), language=language)
    if not form.is_valid():
        versions = Versions.of(slug)
        context = _detail_context(request, versions, version, language, form=form,
                                  in_audience=_in_audience(request, guideline))
        return render(request, "guidelines/guideline_detail.html", context, status=400)
    if form.questions:
        right = comprehension.check_answers(employee=request.employee, version=version, answers=form.answers(),
                                            questions=form.questions)
        wrong = {f"q{pk}" for pk, correct in right.items() if not correct}
        if wrong:
            for number, question in enumerate(form.questions, start=1):
                if f"q{question.pk}" in wrong:
                    form.add_error(f"q{question.pk}", _("Question %(number)s: not quite. Read the passage under it "
                                                        "again and choose once more.") % {"number": number})
            context = _detail_context(request, Versions.of(slug), version, language, form=form, wrong=wrong,
                                      in_audience=_in_audience(request, guideline))
            return render(request, "guidelines/guideline_detail.html", context, status=400)
    try:
        channel = services.channel_for(employee=request.employee, email_link=form.cleaned_data["via"])
        ack, created = services.acknowledge(employee=request.employee, version=version, language=language,
                                            meta=request_evidence(request, channel),
                                            reading_tracked=form.cleaned_data["reading"] == "tracked")
    except ValidationError as error:
        if error.code in ("read_to_end", "comprehension"):
            form.add_error("confirm", error)
            context = _detail_context(request, Versions.of(slug), version, language, form=form,
                                      in_audience=_in_audience(request, guideline))
            return render(request, "guidelines/guideline_detail.html", context, status=400)
        current = guideline.versions.published().first()
        return render(request, "guidelines/not_current.html",
                      {"guideline": guideline, "message": error.messages[0], "current": current}, status=409)
    if not created:
        return render(request, "guidelines/already_acknowledged.html", {"ack": ack, "guideline": guideline})
    messages.success(request, _("Thank you. Your acknowledgement has been recorded."))
    return redirect("guidelines:receipt", pk=ack.pk)


@require_POST
@employee_required
def reading_progress(request, slug):
    """js/reading.js reports how far and how long the text was in view: 204, or 400 with the reason
    (plain text: the script reads only the status)."""
    form = ReadingReportForm(request.POST)
    if not form.is_valid():
        return _refused(_("This reading report is incomplete or out of range."))
    version = next(iter(_released_version(slug, form.cleaned_data["version"])), None)
    if version is None:
        guideline_or_404(slug)
        return _refused(_("That version does not belong to this guideline."))
    try:
        services.record_progress(employee=request.employee, version=version, seconds=form.cleaned_data["seconds"],
                                 percent=form.cleaned_data["percent"])
    except ValidationError as error:
        return _refused(error.messages[0])
    return HttpResponse(status=204)


def _refused(message):
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


@require_GET
@employee_required
def receipt(request, pk):
    ack = get_object_or_404(
        Acknowledgement.objects.for_employee(request.employee).select_related("guideline", "version")
        .prefetch_related("version__texts"), pk=pk
    )
    return render(request, "guidelines/receipt.html", {"ack": ack})


@require_GET
@employee_required
def history(request):
    acks = (
        Acknowledgement.objects.for_employee(request.employee)
        .select_related("guideline", "version")
        .prefetch_related("version__texts")  # the version's title in the reader's language (Version.title)
        .order_by("-acknowledged_at")
    )
    page = Paginator(acks, 25).get_page(request.GET.get("page"))
    return render(request, "guidelines/history.html", {"page": page})
