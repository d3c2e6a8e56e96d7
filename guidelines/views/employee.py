import re

from allauth.account.authentication import get_authentication_records
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .. import services, status
from ..access import employee_required, is_hr_or_auditor
from ..content import diff_blocks
from ..forms import AcknowledgeForm
from ..models import Acknowledgement, Guideline, Version, VersionText


def _auth_method(request):
    records = get_authentication_records(request, request.user)
    if not records:
        return "session"
    last = records[-1]
    if last.get("method") == "socialaccount":
        return f"sso:{last.get('provider', '')}"
    return last.get("method", "unknown")


def _request_meta(request, channel):
    return services.RequestMeta(
        channel=channel,
        auth_method=_auth_method(request),
        ip_address=request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


def _content_language(request):
    language = request.GET.get("lang") or request.POST.get("language") or request.LANGUAGE_CODE
    if language not in ("nl", "en"):
        raise Http404(_("This guideline is available in Dutch (nl) and English (en) only."))
    return language


def _guideline_or_404(slug):
    guideline = Guideline.objects.select_related("owner").filter(slug=slug).first()
    if guideline is None:
        raise Http404(_("There is no guideline at this address."))
    return guideline


RECENT_VERSIONS = 5


def _released_versions(guideline):
    """Every published version, newest first, without texts (those are loaded for one or two)."""
    versions = list(
        guideline.versions.released().only("guideline_id", "major", "minor", "status", "published_at",
                                           "leading_language")
    )
    for version in versions:
        version.guideline = guideline
    return versions


def _current(versions):
    return next((v for v in versions if v.status == Version.Status.PUBLISHED), None)


def _pick_version(versions, number):
    if number is None:
        return _current(versions)
    if not re.fullmatch(r"\d{1,6}\.\d{1,6}", number):
        raise Http404(_("Version numbers look like 2.0 or 2.1."))
    return next((v for v in versions if v.number == number), None)


def _readable_by(request, guideline):
    if request.employee is not None and guideline.includes(request.employee):
        return True
    return is_hr_or_auditor(request.user)


def _detail_context(request, guideline, versions, version, language, form=None):
    employee = request.employee
    current = _current(versions)
    ack = previous_ack = standing = None
    if employee and current:
        standing = status.standings(employee, [current], audience={guideline.pk})[current.pk]
        ack = standing.acknowledgement
        previous_ack = None if ack else standing.latest_acknowledgement
    by_pk = {v.pk: v for v in versions}
    for known in (ack, previous_ack):
        if known:
            known.version = by_pk[known.version_id]
    compare_with = previous_ack.version if previous_ack and version == current else None
    if compare_with == current:
        compare_with = None
    texts = list(VersionText.objects.filter(version__in=[v for v in (version, compare_with) if v]))
    text = _text_in(texts, version, language)
    changes = None
    if compare_with:
        old_text = _text_in(texts, compare_with, language)
        changes = {"since": compare_with, "blocks": diff_blocks(old_text.body, text.body)}
    can_acknowledge = standing is not None and version == current and standing.may_acknowledge
    if can_acknowledge and form is None:
        via = request.GET.get("via", "")
        form = AcknowledgeForm(initial={"version": version.pk, "language": text.language, "via": via[:200]})
    return {
        "guideline": guideline,
        "version": version,
        "current": current,
        "recent_versions": versions[:RECENT_VERSIONS],
        "version_count": len(versions),
        "text": text,
        "languages": [(t.language, t.get_language_display()) for t in texts if t.version_id == version.pk],
        "ack": ack,
        "previous_ack": previous_ack,
        "due_date": standing.due_date if standing else None,
        "changes": changes,
        "form": form if can_acknowledge else None,
    }


def _text_in(texts, version, language):
    """The variant in `language`, else the legally leading one."""
    variants = {t.language: t for t in texts if t.version_id == version.pk}
    return variants.get(language) or variants.get(version.leading_language) or next(iter(variants.values()))


@require_GET
@employee_required
def home(request):
    employee = request.employee
    current_texts = (
        VersionText.objects.filter(version__status=Version.Status.PUBLISHED,
                                   version__guideline__in=Guideline.objects.for_employee(employee))
        .select_related("version__guideline")
        .only("language", "title", "version__major", "version__minor", "version__published_at",
              "version__leading_language", "version__guideline__slug", "version__guideline__due_days",
              "version__guideline__reacknowledge_days")
    )
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
    return render(request, "guidelines/home.html",
                  {"pending": pending, "done": done, "exempt": exempt, "today": timezone.localdate()})


@require_GET
def guideline_detail(request, slug):
    guideline = _guideline_or_404(slug)
    if not _readable_by(request, guideline):
        raise PermissionDenied(_("This guideline does not apply to you."))
    versions = _released_versions(guideline)
    version = _pick_version(versions, request.GET.get("version"))
    if version is None:
        raise Http404(_("This guideline has no such published version."))
    language = _content_language(request)
    context = _detail_context(request, guideline, versions, version, language)
    if context["form"] is not None:
        services.record_reading(employee=request.employee, version=version)
    return render(request, "guidelines/guideline_detail.html", context)


@require_GET
def version_list(request, slug):
    guideline = _guideline_or_404(slug)
    if not _readable_by(request, guideline):
        raise PermissionDenied(_("This guideline does not apply to you."))
    versions = _released_versions(guideline)
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
                  {"guideline": guideline, "rows": rows, "title": title, "language": language})


@require_POST
@employee_required
def acknowledge(request, slug):
    guideline = _guideline_or_404(slug)
    form = AcknowledgeForm(request.POST)
    if not form.is_valid() and ("version" in form.errors or "language" in form.errors or "via" in form.errors):
        return render(request, "400.html", {"message": _("The form was incomplete or altered. Please try again.")},
                      status=400)
    version = (
        guideline.versions.released().filter(pk=form.cleaned_data["version"]).prefetch_related("texts").first()
    )
    if version is None:
        return render(request, "400.html", {"message": _("That version does not belong to this guideline.")},
                      status=400)
    version.guideline = guideline
    language = form.cleaned_data["language"]
    if not form.is_valid():
        context = _detail_context(request, guideline, _released_versions(guideline), version, language, form=form)
        return render(request, "guidelines/guideline_detail.html", context, status=400)
    try:
        ack, created = services.acknowledge(
            employee=request.employee,
            version=version,
            language=language,
            meta=_request_meta(request, services.channel_for(employee=request.employee,
                                                             email_link=form.cleaned_data["via"])),
        )
    except ValidationError as error:
        current = guideline.versions.published().first()
        return render(request, "guidelines/not_current.html",
                      {"guideline": guideline, "message": error.messages[0], "current": current}, status=409)
    if not created:
        return render(request, "guidelines/already_acknowledged.html", {"ack": ack, "guideline": guideline})
    messages.success(request, _("Thank you. Your acknowledgement has been recorded."))
    return redirect("guidelines:receipt", pk=ack.pk)


@require_GET
@employee_required
def receipt(request, pk):
    ack = get_object_or_404(
        Acknowledgement.objects.for_employee(request.employee).select_related("guideline", "version"), pk=pk
    )
    return render(request, "guidelines/receipt.html", {"ack": ack})


@require_GET
@employee_required
def history(request):
    acks = (
        Acknowledgement.objects.for_employee(request.employee)
        .select_related("guideline", "version")
        .order_by("-acknowledged_at")
    )
    page = Paginator(acks, 25).get_page(request.GET.get("page"))
    return render(request, "guidelines/history.html", {"page": page})
