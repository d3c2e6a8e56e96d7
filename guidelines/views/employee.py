import re
from functools import reduce
from operator import or_

from allauth.account.authentication import get_authentication_records
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .. import services
from ..access import employee_required
from ..content import diff_blocks
from ..forms import AcknowledgeForm
from ..models import Acknowledgement, Guideline, Version


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


def _released_versions(guideline):
    return list(guideline.versions.released().prefetch_related("texts"))


def _pick_version(versions, number):
    if number is None:
        return next((v for v in versions if v.status == Version.Status.PUBLISHED), None)
    if not re.fullmatch(r"\d{1,6}\.\d{1,6}", number):
        raise Http404(_("Version numbers look like 2.0 or 2.1."))
    return next((v for v in versions if v.number == number), None)


def _readable_by(request, guideline):
    if request.user.has_perm("guidelines.manage") or request.user.has_perm("guidelines.audit"):
        return True
    return request.employee is not None and guideline.includes(request.employee)


def _detail_context(request, guideline, versions, version, language, form=None):
    employee = request.employee
    current = next((v for v in versions if v.status == Version.Status.PUBLISHED), None)
    text = version.text_in(language)
    ack = previous_ack = None
    if employee and current:
        ack = services.current_acknowledgement(employee=employee, guideline=guideline, major=current.major)
        if ack is None:
            previous_ack = (
                Acknowledgement.objects.for_employee(employee)
                .filter(guideline=guideline)
                .select_related("version")
                .order_by("-sequence")
                .first()
            )
    changes = None
    if previous_ack and version == current and previous_ack.version_id != current.pk:
        old_version = next(v for v in versions if v.pk == previous_ack.version_id)
        changes = {"since": old_version, "blocks": diff_blocks(old_version.text_in(language).body, text.body)}
    can_acknowledge = (
        employee is not None
        and version == current
        and ack is None
        and guideline.retired_at is None
        and guideline.includes(employee)
        and employee.is_employed_on(timezone.localdate())
    )
    if can_acknowledge and form is None:
        channel = Acknowledgement.Channel.EMAIL if request.GET.get("via") == "email" else Acknowledgement.Channel.WEB
        form = AcknowledgeForm(initial={"version": version.pk, "language": text.language, "channel": channel})
    return {
        "guideline": guideline,
        "version": version,
        "current": current,
        "versions": versions,
        "text": text,
        "languages": [(t.language, t.get_language_display()) for t in version.texts.all()],
        "ack": ack,
        "previous_ack": previous_ack,
        "due_date": guideline.due_date_for(employee, current) if employee and current else None,
        "changes": changes,
        "form": form if can_acknowledge else None,
    }


@require_GET
@employee_required
def home(request):
    employee = request.employee
    versions = list(
        Version.objects.published()
        .filter(guideline__in=Guideline.objects.for_employee(employee))
        .select_related("guideline")
        .prefetch_related("texts")
    )
    acks = {
        (ack.guideline_id, ack.major): ack
        for ack in Acknowledgement.objects.for_employee(employee)
        .filter(reduce(or_, [Q(guideline=v.guideline_id, major=v.major) for v in versions], Q(pk__in=[])))
        .select_related("guideline", "version")
        .order_by("cycle")
    }
    today, now = timezone.localdate(), timezone.now()
    pending, done = [], []
    for version in versions:
        item = {
            "guideline": version.guideline,
            "version": version,
            "text": version.text_in(request.LANGUAGE_CODE),
            "due_date": version.guideline.due_date_for(employee, version),
        }
        ack = acks.get((version.guideline_id, version.major))
        if ack and ack.is_valid_on(now):
            done.append({**item, "ack": ack})
        else:
            item["overdue"] = item["due_date"] < today
            pending.append(item)
    pending.sort(key=lambda item: item["due_date"])
    return render(request, "guidelines/home.html", {"pending": pending, "done": done, "today": today})


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


@require_POST
@employee_required
def acknowledge(request, slug):
    guideline = _guideline_or_404(slug)
    form = AcknowledgeForm(request.POST)
    if not form.is_valid() and ("version" in form.errors or "language" in form.errors or "channel" in form.errors):
        return render(request, "400.html", {"message": _("The form was incomplete or altered. Please try again.")},
                      status=400)
    versions = _released_versions(guideline)
    version = next((v for v in versions if v.pk == form.cleaned_data["version"]), None)
    if version is None:
        return render(request, "400.html", {"message": _("That version does not belong to this guideline.")},
                      status=400)
    language = form.cleaned_data["language"]
    if not form.is_valid():
        context = _detail_context(request, guideline, versions, version, language, form=form)
        return render(request, "guidelines/guideline_detail.html", context, status=400)
    try:
        ack, created = services.acknowledge(
            employee=request.employee,
            version=version,
            language=language,
            meta=_request_meta(request, form.cleaned_data["channel"]),
        )
    except ValidationError as error:
        current = next((v for v in versions if v.status == Version.Status.PUBLISHED), None)
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
