"""Auditors and HR: the auditor pack (direct download or background with progress), downloads,
personal certificates and the verification page.

Generating and downloading are rate limited per user (settings.REPORT_RATE_LIMITS, fixed windows counted in Django's
cache): above the limit the answer is 429 with a page saying when to try again, and a rate_limited
line in the security log.
"""

import logging
import math
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from .. import tasks
from ..access import dashboard_required, is_hr_or_auditor, require_acknowledgement_reader
from ..forms import PackForm, PublicVerifyForm, VerifyForm
from ..models import Acknowledgement, AuditEvent, Report
from ..reports import jobs, verification
from ..security import client_address, security_event
from ..services import record_audit_event

logger = logging.getLogger(__name__)


def _rate_limited(request, bucket, *, rate=None, who=None, message=None):
    """Count this request in the user's (or `who`'s) current window of `bucket`; a 429 response once
    the window holds more than the limit, else None. A fixed window: the counter's cache key names the
    window, so it needs no reset and expires by itself. cache.add + cache.incr are atomic in Redis."""
    limit, window = rate or settings.REPORT_RATE_LIMITS[bucket]
    now = time.time()
    key = f"guidelines:reports:rate:{bucket}:{who or request.user.pk}:{int(now // window)}"
    cache.add(key, 0, timeout=window + 60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 60)
        count = 1
    if count <= limit:
        return None
    retry_after = max(1, math.ceil((now // window + 1) * window - now))
    security_event("rate_limited", request=request, outcome="denied", bucket=bucket, limit=limit, window=window,
                   count=count)
    again = timezone.localtime(timezone.now() + timedelta(seconds=retry_after)).strftime("%H:%M")
    message = message or _("You have asked for too many reports in a short time. Please try again after %(time)s.")
    response = render(request, "reports/too_many_requests.html", {"message": message % {"time": again}}, status=429)
    response["Retry-After"] = str(retry_after)
    return response





def _download(request, report):
    file = jobs.file_for_download(report, by=request.user)
    if file is None:
        raise Http404(_("The file of this report is no longer available; please generate it again."))
    return FileResponse(file, as_attachment=True, content_type="application/pdf",
                        filename=f"{report.kind}-{report.verification_code}.pdf")


@require_http_methods(["GET", "POST"])
@dashboard_required
def audit_pack(request):
    form = PackForm(request.POST or None, initial={"language": request.LANGUAGE_CODE})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if limited := _rate_limited(request, "generate"):
            return limited
        try:
            report = jobs.start_audit_pack(
                user=request.user, guideline_slug=data["guideline"].slug, version=data["version"],
                department=data["department"].name if data["department"] else "",
                as_of=data["as_of"].isoformat() if data["as_of"] else "", language=data["language"],
            )
        except ValidationError as error:
            # parse_pack's codes name the field the message is about (guideline, version, as_of, ...).
            form.add_error(error.code if error.code in form.fields else None, error.messages[0])
        else:
            if jobs.in_background(report):
                try:
                    tasks.generate_report.delay(report.pk)
                except Exception:  # the broker is down: the report is recorded as failed, with why
                    logger.exception("Could not queue report %s", report.pk)
                    jobs.fail(report, _("The task queue is unavailable."))
                return redirect("guidelines:report_status", code=report.verification_code)
            jobs.generate_now(report)
            report.refresh_from_db()
            return _download(request, report)
    recent = Report.objects.filter(kind=Report.Kind.AUDIT_PACK).select_related("guideline", "requested_by")[:10]
    return render(request, "guidelines/reports/pack.html", {"form": form, "recent": recent},
                  status=400 if request.method == "POST" else 200)


def _own_report(request, code):
    # The address may carry any character (<str:code>); PostgreSQL refuses a NUL in a query's text.
    report = None if "\x00" in code else (
        Report.objects.filter(verification_code=code).select_related("guideline", "requested_by").first())
    if report is None:
        raise Http404(_("There is no report with this code."))
    if report.requested_by_id != request.user.pk and not is_hr_or_auditor(request.user):
        raise PermissionDenied(_("This report was generated for someone else."))
    return report


@require_GET
def report_status(request, code):
    report = _own_report(request, code)
    return render(request, "guidelines/reports/status.html", {"report": report})


@require_GET
def report_download(request, code):
    report = _own_report(request, code)
    if report.status != Report.Status.DONE:
        return render(request, "400.html", {"message": _("This report is not ready yet.")}, status=409)
    if limited := _rate_limited(request, "download"):
        return limited
    return _download(request, report)


@require_GET
def certificate(request, pk):
    ack = Acknowledgement.objects.select_related("guideline", "version", "employee").filter(pk=pk).first()
    if ack is None:
        raise Http404(_("There is no such acknowledgement."))
    require_acknowledgement_reader(request.user, ack)  # before counting against the rate limit
    if limited := _rate_limited(request, "download"):
        return limited
    # Made on the first request for this acknowledgement and language, the stored file after that.
    report = jobs.certificate(acknowledgement=ack, user=request.user, language=request.LANGUAGE_CODE)
    return _download(request, report)


@require_http_methods(["GET", "POST"])
@dashboard_required
def verify(request):
    data = request.POST if request.method == "POST" else (request.GET or None)
    form = VerifyForm(data, request.FILES or None)
    result, status = None, 200
    if form.is_bound and form.is_valid():
        upload, code = form.cleaned_data["file"], form.cleaned_data["code"].strip()
        if upload:
            # Hashed in chunks and opened from its temporary file: never the whole upload in memory.
            result = verification.check_upload(upload, settings.VERIFY_MAX_BYTES)
            status = 400 if result["outcome"] == "not_pdf" else 200
        elif code:
            report = verification.find_by_code(code)
            result = {"outcome": "code_found" if report else "code_unknown", "report": report, "code": code}
            status = 200 if report else 404
        else:
            form.add_error(None, _("Upload a PDF or enter a verification code."))
            status = 400
        if result:
            record_audit_event(action=AuditEvent.Action.REPORT_VERIFIED, actor=request.user,
                               outcome=result["outcome"], digest=result.get("digest"),
                               code=result["report"].verification_code if result.get("report") else code or None)
    elif form.is_bound:
        status = 400
    return render(request, "guidelines/reports/verify.html",
                  {"form": form, "result": result, "now": timezone.now()}, status=status)


@login_not_required
@require_http_methods(["GET", "POST"])
def public_verify(request):
    """For anyone holding one of our PDFs, with no account here (an external auditor, a supervisor):
    upload it, or give its SHA-256 or the code printed on it, and learn only genuine / altered /
    unknown, when it was generated and what it covers (reports.verification.public_facts), never
    anything about a person. Rate limited per client address; every check is an audit event."""
    data = request.POST if request.method == "POST" else (request.GET or None)
    form = PublicVerifyForm(data, request.FILES or None)
    result, status = None, 200
    if form.is_bound and (limited := _rate_limited(
            request, "public_verify", rate=settings.PUBLIC_VERIFY_RATE, who=f"ip:{client_address(request)}",
            message=_("You have checked too many reports in a short time. Please try again after %(time)s."))):
        return limited
    if form.is_bound and form.is_valid():
        upload, digest, code = form.cleaned_data["file"], form.cleaned_data["sha256"], form.cleaned_data["code"]
        if upload:
            result = verification.check_upload(upload, settings.VERIFY_MAX_BYTES)
            status = 400 if result["outcome"] == "not_pdf" else 200
        elif digest:
            report = verification.find_by_digest(digest)
            result = {"outcome": "genuine" if report else "unknown", "report": report, "digest": digest}
        else:
            report = verification.find_by_code(code)
            result, status = {"outcome": "code_found" if report else "code_unknown", "report": report}, (
                200 if report else 404)
        report = result.get("report")
        record_audit_event(action=AuditEvent.Action.REPORT_VERIFIED, actor=None, public=True,
                           ip=client_address(request) or None, outcome=result["outcome"],
                           digest=result.get("digest"), code=report.verification_code if report else code or None)
        security_event("report_verified_public", request=request, outcome=result["outcome"])
        if report:
            result["facts"] = verification.public_facts(report)
            del result["report"]  # the template gets the public facts only
    elif form.is_bound:
        status = 400
    return render(request, "guidelines/reports/public_verify.html", {"form": form, "result": result}, status=status)
