"""The API's endpoints. They parse the request and shape the answer; what counts and who may see it
come from the same modules as the pages: status.py and dashboards.py (the status engine), access.py
(roles), reports/jobs.py (auditor packs). Lists page with an opaque cursor on a unique key, one
query per page however deep."""

import base64
import binascii
import json
import re
from datetime import date

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import FileResponse, Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import access, dashboards, questions, tasks
from .. import status as status_engine
from ..forms import ListFilterForm
from ..models import (
    Acknowledgement,
    ApiToken,
    AuditEvent,
    ChainHead,
    Employee,
    Guideline,
    Objection,
    Report,
    Version,
    VersionText,
)
from ..prepared import PreparedQueries
from ..reports import jobs
from . import serializers
from .authentication import ReportRateThrottle, TokenRateThrottle

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

REFUSALS = {
    401: OpenApiResponse(description="No token, or an invalid, expired or revoked one."),
    403: OpenApiResponse(description="The token's scopes or its account's roles do not allow this."),
    429: OpenApiResponse(description="Too many requests for this token; Retry-After says when to try again."),
}


def _refusals(*codes):
    return {code: REFUSALS[code] for code in codes}


class ApiView(APIView):
    required_scope = ApiToken.Scope.READ_STATUS
    throttle_classes = [TokenRateThrottle]


# Parsing ------------------------------------------------------------------------------------------


def _as_of(request, reach, version=None):
    """The as-of day: today by default; a past day (not before the version's publication) for HR and
    auditors. A manager sees today only, as on the team page."""
    text = request.query_params.get("as_of", "")
    today = timezone.localdate()
    if not text:
        return today
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise exceptions.ValidationError({"as_of": [_("Give a date as YYYY-MM-DD.")]}) from None
    if day > today:
        raise exceptions.ValidationError({"as_of": [_("The date cannot be in the future.")]})
    if version is not None and day < timezone.localdate(version.published_at):
        published_on = timezone.localdate(version.published_at).isoformat()
        raise exceptions.ValidationError({"as_of": [_("Version %(number)s was published on %(day)s.")
                                                    % {"number": version.number, "day": published_on}]})
    if reach is not None and day != today:
        raise exceptions.PermissionDenied(_("Managers see today's status only."))
    return day


def _whole_number(text, most_digits=18):
    """`text` as a whole number written in 0-9, else None. (str.isdigit also passes "²", which int()
    refuses.)"""
    return int(text) if re.fullmatch(rf"[0-9]{{1,{most_digits}}}", text) else None


def _page_size(request):
    text = request.query_params.get("page_size", "")
    if not text:
        return DEFAULT_PAGE_SIZE
    size = _whole_number(text)
    if size is None or not 1 <= size <= MAX_PAGE_SIZE:
        raise exceptions.ValidationError(
            {"page_size": [_("Give a number from 1 to %(most)d.") % {"most": MAX_PAGE_SIZE}]})
    return size


def _encode_cursor(value):
    return base64.urlsafe_b64encode(json.dumps({"after": value}).encode()).decode().rstrip("=")


def _cursor(request, kind):
    """The key the previous page ended with, or None for the first page."""
    text = request.query_params.get("cursor", "")
    if not text:
        return None
    if len(text) > 400:
        text = "!"  # never decoded: refused below
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))["after"]
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        value = None
    if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, str) and "\x00" in value):
        raise exceptions.ValidationError({"cursor": [_("This cursor is not one the API gave out; start again "
                                                       "without it.")]})
    return value


def _next_link(request, rows, page_size, key):
    if len(rows) <= page_size:
        return None
    query = request.query_params.copy()
    query["cursor"] = _encode_cursor(key(rows[page_size - 1]))
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def _released_version(pk):
    version = Version.objects.released().select_related("guideline").filter(pk=pk).first()
    if version is None:
        raise Http404(_("There is no published version with this id."))
    return version


# Guidelines and versions ---------------------------------------------------------------------------


def _guideline_data(guideline, current):
    return {
        "slug": guideline.slug, "title_nl": guideline.title_nl, "title_en": guideline.title_en,
        "audience_everyone": guideline.audience_everyone,
        "audience_departments": sorted(d.name for d in guideline.audience_departments.all()),
        "audience_groups": sorted(g.name for g in guideline.audience_groups.all()),
        "due_days": guideline.due_days, "reacknowledge_days": guideline.reacknowledge_days,
        "requires_works_council_consent": guideline.requires_works_council_consent,
        "retired_at": guideline.retired_at,
        "current_version": current and {"id": current.pk, "number": current.number,
                                        "published_at": current.published_at},
    }


def _guidelines():
    return Guideline.objects.order_by("slug").prefetch_related("audience_departments", "audience_groups")


def _current_versions():
    return {v.guideline_id: v for v in Version.objects.published().only("guideline_id", "major", "minor",
                                                                           "published_at")}


class GuidelineList(ApiView):
    @extend_schema(summary="Every guideline", responses={200: serializers.GuidelineSerializer(many=True),
                                                        **_refusals(401, 403, 429)})
    def get(self, request):
        current = _current_versions()
        return Response([_guideline_data(g, current.get(g.pk)) for g in _guidelines()])


class GuidelineDetail(ApiView):
    @extend_schema(summary="One guideline", responses={200: serializers.GuidelineSerializer,
                                                      404: OpenApiResponse(description="No such guideline."),
                                                      **_refusals(401, 403, 429)})
    def get(self, request, slug):
        guideline = _guidelines().filter(slug=slug).first()
        if guideline is None:
            raise Http404(_("There is no guideline at this address."))
        return Response(_guideline_data(guideline, _current_versions().get(guideline.pk)))


def _with_texts(versions):
    return versions.select_related("guideline").prefetch_related(
        Prefetch("texts", queryset=VersionText.objects.order_by("language")))


def _version_data(version):
    return serializers.VersionSerializer(version).data | {
        "texts": [serializers.VersionTextSerializer(text).data for text in version.texts.all()]}


class GuidelineVersions(ApiView):
    @extend_schema(summary="A guideline's published versions, newest first, with their texts and hashes",
                   responses={200: serializers.VersionSerializer(many=True),
                              404: OpenApiResponse(description="No such guideline."), **_refusals(401, 403, 429)})
    def get(self, request, slug):
        guideline = Guideline.objects.filter(slug=slug).first()
        if guideline is None:
            raise Http404(_("There is no guideline at this address."))
        versions = _with_texts(guideline.versions.released()).order_by("-major", "-minor")
        return Response([_version_data(version) for version in versions])


class VersionDetail(ApiView):
    @extend_schema(summary="One published version with its texts and hashes",
                   responses={200: serializers.VersionSerializer,
                              404: OpenApiResponse(description="No published version with this id."),
                              **_refusals(401, 403, 429)})
    def get(self, request, pk):
        version = _with_texts(Version.objects.released()).filter(pk=pk).first()
        if version is None:
            raise Http404(_("There is no published version with this id."))
        return Response(_version_data(version))


# Status ------------------------------------------------------------------------------------------

AS_OF = OpenApiParameter("as_of", OpenApiTypes.DATE, description="The day to count on (default today); "
                         "HR and auditors only, not before the version's publication.")
NO_NUL = r"^[^\x00]*$"  # PostgreSQL refuses a NUL in a query's text: such a value is a 400


def _text(max_length, pattern=NO_NUL):
    return {"type": "string", "maxLength": max_length, "pattern": pattern}


FILTERS = [
    OpenApiParameter("status", OpenApiTypes.STR, enum=list(status_engine.Status.values)),
    OpenApiParameter("department", _text(9, r"^(\d{1,9}|none)$"),
                     description='A department id (see the status counts), or "none" for employees without one.'),
    OpenApiParameter("search", _text(100), description="Part of a name, employee number or e-mail address."),
]
PAGING = [
    OpenApiParameter("cursor", _text(400, r"^[A-Za-z0-9_-]*$"), description="From the previous page's `next`."),
    OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                     description=f"Default {DEFAULT_PAGE_SIZE}."),
]


def _counts_data(counts):
    return {"in_scope": counts.in_scope, "acknowledged": counts.acknowledged, "pending": counts.pending,
            "overdue": counts.overdue, "exempt": counts.exempt,
            "acknowledged_percent": round(counts.acknowledged_percent, 2)}


class VersionStatus(ApiView):
    @extend_schema(summary="Status counts of a version, in all and per department, as of a day",
                   parameters=[AS_OF], responses={200: serializers.VersionStatusSerializer,
                                                  400: OpenApiResponse(description="A bad date."),
                                                  404: OpenApiResponse(description="No published version."),
                                                  **_refusals(401, 403, 429)})
    def get(self, request, pk):
        reach = access.status_reach(request.user)
        version = _released_version(pk)
        day = _as_of(request, reach, version)
        summary = dashboards.summary(version, day, reach)
        return Response({
            "version": {"id": version.pk, "number": version.number, "published_at": version.published_at},
            "guideline": version.guideline.slug, "as_of": day,
            "scope": "everyone" if reach is None else "direct reports",
            "counts": _counts_data(summary.counts),
            "departments": [{"department_id": row.id, "department": row.name, "counts": _counts_data(row.counts)}
                            for row in summary.departments],
        })


# A client pages through the list with the same version, day and filters: the query is built and
# compiled once for them (its ORM work took as long as PostgreSQL's), the cursor is its one value.
_first_pages = PreparedQueries(Employee)
_later_pages = PreparedQueries(Employee, str)


def _status_page(version, day, reach, user, filters, page_size, after):
    """The page's rows (one more than the page, to tell whether there is a next) as export_rows
    tuples, by employee number after `after`, within `user`'s reach (access.status_reach)."""

    def build(*after):
        rows = dashboards.employee_list(version, day, reach, **filters).order_by("employee_number")
        if after:
            rows = rows.filter(employee_number__gt=after[0])
        return dashboards.export_rows(rows)[:page_size + 1]

    inputs = status_engine.query_inputs(version, day)
    if inputs is None:
        return list(build(*(() if after is None else (after,))))
    key = (*inputs, None if reach is None else user.pk, tuple(sorted(filters.items())), page_size)
    if after is None:
        return _first_pages.get(key, build)()
    return _later_pages.get(key, build)(after)


class VersionEmployees(ApiView):
    @extend_schema(summary="Each in-scope employee's status on a version, as of a day, by employee number",
                   parameters=[AS_OF, *FILTERS, *PAGING],
                   responses={200: serializers.EmployeeStatusPageSerializer,
                              400: OpenApiResponse(description="A bad filter, date, page size or cursor."),
                              404: OpenApiResponse(description="No published version."), **_refusals(401, 403, 429)})
    def get(self, request, pk):
        reach = access.status_reach(request.user)
        version = _released_version(pk)
        day = _as_of(request, reach, version)
        form = ListFilterForm(request.query_params)
        if not form.is_valid():
            raise exceptions.ValidationError({name: list(errors) for name, errors in form.errors.items()})
        filters = {key: form.cleaned_data[key] for key in ("status", "department", "search")}
        page_size, after = _page_size(request), _cursor(request, str)
        tuples = _status_page(version, day, reach, request.user, filters, page_size, after)
        # Dates and times become text here (times in UTC, as the database gives them), so that the JSON
        # encoder meets only strings and numbers: its fallback, called a thousand times, costs more.
        major = version.major
        results = [
            {"employee_number": number, "name": f"{first_name} {last_name}".strip(), "email": email,
             "department": department, "manager_employee_number": manager, "status": status_value,
             "due_date": due_date and due_date.isoformat(),
             "acknowledged_at": acknowledged_at and acknowledged_at.isoformat(),
             "version_acknowledged": None if minor is None else f"{major}.{minor}",
             "language": language, "channel": channel}
            for (number, first_name, last_name, email, department, manager, status_value, due_date,
                 acknowledged_at, minor, language, channel) in tuples[:page_size]
        ]
        return Response({"as_of": day.isoformat(),
                         "next": _next_link(request, tuples, page_size, key=lambda row: row[0]), "results": results})


# Evidence ----------------------------------------------------------------------------------------

EVIDENCE_FILTERS = [
    OpenApiParameter("guideline", _text(100), description="A guideline's slug."),
    OpenApiParameter("version", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
                     description="A version's id."),
    OpenApiParameter("employee_number", _text(100), description="An employee number, as the record holds it."),
]


def _evidence_filters(request):
    """The filters the evidence lists share (EVIDENCE_FILTERS), as lookups on their records, which copy
    the guideline, version and employee number alike. A value that cannot be one is a 400 naming it."""
    filters, lookups = request.query_params, {}
    if text := filters.get("version", ""):
        if (version := _whole_number(text)) is None:
            raise exceptions.ValidationError({"version": [_("Give a version's id (a number).")]})
        lookups["version_id"] = version
    for name, field in (("guideline", "guideline__slug"), ("employee_number", "employee_number")):
        if value := filters.get(name, ""):
            if "\x00" in value or len(value) > 100:
                raise exceptions.ValidationError({name: [_("This value is not valid.")]})
            lookups[field] = value
    return lookups


ACK_COLUMNS = ("id", "sequence", "guideline", "major", "minor", "cycle", "employee_number", "employee_name",
               "department", "language", "content_hash", "statement", "acknowledged_at", "first_opened_at",
               "read_to_end_at", "seconds_on_text", "answers", "channel", "auth_method", "previous_seal", "seal",
               "seal_format")


class AcknowledgementList(ApiView):
    required_scope = ApiToken.Scope.READ_EVIDENCE

    @extend_schema(
        summary="The acknowledgements in chain order, with their seals",
        parameters=[*EVIDENCE_FILTERS, *PAGING],
        responses={200: serializers.AcknowledgementPageSerializer,
                   400: OpenApiResponse(description="A bad filter, page size or cursor."), **_refusals(401, 403, 429)},
    )
    def get(self, request):
        access.require_evidence_reader(request.user)
        page_size, after = _page_size(request), _cursor(request, int)
        records = Acknowledgement.objects.order_by("sequence").filter(**_evidence_filters(request))
        if after is not None:
            records = records.filter(sequence__gt=after)
        tuples = list(records.values_list(
            "pk", "sequence", "guideline__slug", "major", "version__minor", "cycle", "employee_number",
            "employee_name", "department_name", "language", "content_hash", "statement", "acknowledged_at",
            "first_opened_at", "read_to_end_at", "seconds_on_text", "answers", "channel", "auth_method",
            "previous_seal", "seal", "seal_format",
        )[:page_size + 1])
        results = []
        for row in tuples[:page_size]:
            record = dict(zip(ACK_COLUMNS, row, strict=True))
            record["version"] = f"{record.pop('major')}.{record.pop('minor')}"
            results.append(record)
        return Response({"next": _next_link(request, tuples, page_size, key=lambda row: row[1]), "results": results})


OPEN_CHOICES = {"true": True, "false": False}
OBJECTION_COLUMNS = ("id", "kind", "guideline", "major", "minor", "employee_number", "employee_name", "department",
                     "language", "content_hash", "statement", "reason", "recorded_at", "first_opened_at")
RESOLUTION_COLUMNS = ("resolution_id", "outcome", "note", "resolved_at", "first_name", "last_name", "email",
                      "exemption")


class ObjectionList(ApiView):
    required_scope = ApiToken.Scope.READ_EVIDENCE

    @extend_schema(
        summary="The objections and exception requests in the order they were recorded, with HR's handling",
        description="Evidence like an acknowledgement (the version and language shown, with its hash), which "
                    "does not count as one. HR handles each later: page again with `open=true`, or subscribe to "
                    "the `objection.resolved` webhook, to learn of the handling of one already fetched.",
        parameters=[
            *EVIDENCE_FILTERS,
            OpenApiParameter("kind", OpenApiTypes.STR, enum=list(Objection.Kind.values),
                             description="objection, or exception (an exception request)."),
            OpenApiParameter("open", OpenApiTypes.BOOL,
                             description="true: only those HR has not handled yet; false: only handled ones."),
            *PAGING,
        ],
        responses={200: serializers.ObjectionPageSerializer,
                   400: OpenApiResponse(description="A bad filter, page size or cursor."), **_refusals(401, 403, 429)},
    )
    def get(self, request):
        # Who reads them through the API: evidence readers, as for acknowledgements; which rows: those
        # questions.py lets the account read (every one, for them).
        access.require_evidence_reader(request.user)
        page_size, after = _page_size(request), _cursor(request, int)
        records = questions.visible_objections(request.user).filter(**_evidence_filters(request)).order_by("pk")
        if kind := request.query_params.get("kind", ""):
            if kind not in Objection.Kind.values:
                raise exceptions.ValidationError({"kind": [_("Give objection or exception (an exception "
                                                             "request).")]})
            records = records.filter(kind=kind)
        if still_open := request.query_params.get("open", ""):
            if still_open not in OPEN_CHOICES:
                raise exceptions.ValidationError({"open": [_("Give true or false.")]})
            records = records.filter(resolution__isnull=OPEN_CHOICES[still_open])
        if after is not None:
            records = records.filter(pk__gt=after)
        tuples = list(records.values_list(
            "pk", "kind", "guideline__slug", "major", "version__minor", "employee_number", "employee_name",
            "department_name", "language", "content_hash", "statement", "reason", "recorded_at", "first_opened_at",
            "resolution__pk", "resolution__outcome", "resolution__note", "resolution__resolved_at",
            "resolution__resolved_by__first_name", "resolution__resolved_by__last_name",
            "resolution__resolved_by__email", "resolution__exemption_id",
        )[:page_size + 1])
        width = len(OBJECTION_COLUMNS)
        results = []
        for row in tuples[:page_size]:
            record = dict(zip(OBJECTION_COLUMNS, row[:width], strict=True))
            record["version"] = f"{record['major']}.{record.pop('minor')}"
            handled = dict(zip(RESOLUTION_COLUMNS, row[width:], strict=True))
            record["resolution"] = None if handled["resolution_id"] is None else {
                "outcome": handled["outcome"], "note": handled["note"], "resolved_at": handled["resolved_at"],
                # As the objection's page names who handled it.
                "resolved_by": f"{handled['first_name']} {handled['last_name']}".strip() or handled["email"],
                "exemption_id": handled["exemption"],
            }
            results.append(record)
        return Response({"next": _next_link(request, tuples, page_size, key=lambda row: row[0]), "results": results})


class ChainVerification(ApiView):
    required_scope = ApiToken.Scope.READ_EVIDENCE

    @extend_schema(summary="The result of the evidence chain's latest check (nightly, or run by an auditor)",
                   responses={200: serializers.ChainVerificationSerializer, **_refusals(401, 403, 429)})
    def get(self, request):
        access.require_evidence_reader(request.user)
        latest = AuditEvent.objects.filter(action=AuditEvent.Action.CHAIN_VERIFIED).order_by("-at", "-pk").first()
        details = latest.details if latest else {}
        fields = ("intact", "checked", "head_sequence", "head_seal", "first_break_sequence", "problem",
                  "checkpoints_checked")
        return Response({"verified_at": latest and latest.at, **{name: details.get(name) for name in fields},
                         "current_head_sequence": ChainHead.objects.get(pk=1).sequence})


# Auditor packs -----------------------------------------------------------------------------------


def _report_data(request, report):
    data = serializers.ReportSerializer(report).data
    data["download"] = (request.build_absolute_uri(reverse("api:report-pdf", args=[report.verification_code]))
                        if report.status == Report.Status.DONE else None)
    return data


def _own_pack(request, code):
    """An auditor pack this token's account requested (HR and auditors read only their own through the API:
    a client has no business with a person's reports)."""
    access.require_evidence_reader(request.user)
    report = None if "\x00" in code else Report.objects.filter(
        verification_code=code, kind=Report.Kind.AUDIT_PACK, requested_by=request.user).first()
    if report is None:
        raise Http404(_("There is no report with this code for this token's account."))
    return report


class ReportList(ApiView):
    required_scope = ApiToken.Scope.REQUEST_REPORTS
    throttle_classes = [TokenRateThrottle, ReportRateThrottle]

    @extend_schema(summary="The auditor packs this token's account requested, newest first",
                   responses={200: serializers.ReportSerializer(many=True), **_refusals(401, 403, 429)})
    def get(self, request):
        access.require_evidence_reader(request.user)
        reports = Report.objects.filter(kind=Report.Kind.AUDIT_PACK, requested_by=request.user)[:100]
        return Response([_report_data(request, report) for report in reports])

    @extend_schema(summary="Request an auditor pack; it is generated in the background",
                   request=serializers.ReportRequestSerializer,
                   responses={202: serializers.ReportSerializer,
                              400: OpenApiResponse(description="The choices do not make a pack; the message "
                                                               "says why."),
                              503: OpenApiResponse(description="The task queue is unavailable; the report is "
                                                               "marked failed."),
                              **_refusals(401, 403, 429)})
    def post(self, request):
        choices = serializers.ReportRequestSerializer(data=request.data)
        choices.is_valid(raise_exception=True)
        data = choices.validated_data
        try:
            report = jobs.start_audit_pack(
                user=request.user, guideline_slug=data["guideline"], version=data["version"],
                department=data["department"], as_of=data["as_of"].isoformat() if data["as_of"] else "",
                language=data["language"])
        except ValidationError as error:
            field = error.code if error.code in choices.fields else "non_field_errors"
            raise exceptions.ValidationError({field: error.messages}) from None
        try:
            tasks.generate_report.delay(report.pk)
        except Exception:  # the broker is down: the report is recorded as failed, with why
            jobs.fail(report, _("The task queue is unavailable."))
            report.refresh_from_db()
            return Response(_report_data(request, report), status=status.HTTP_503_SERVICE_UNAVAILABLE)
        headers = {"Location": request.build_absolute_uri(reverse("api:report", args=[report.verification_code]))}
        return Response(_report_data(request, report), status=status.HTTP_202_ACCEPTED, headers=headers)


class ReportDetail(ApiView):
    required_scope = ApiToken.Scope.REQUEST_REPORTS

    @extend_schema(summary="An auditor pack's progress and, once ready, its hash and where to fetch it",
                   responses={200: serializers.ReportSerializer, 404: OpenApiResponse(description="No such report."),
                              **_refusals(401, 403, 429)})
    def get(self, request, code):
        return Response(_report_data(request, _own_pack(request, code)))


class ReportPdf(ApiView):
    required_scope = ApiToken.Scope.REQUEST_REPORTS

    @extend_schema(summary="The auditor pack's PDF",
                   responses={(200, "application/pdf"): OpenApiTypes.BINARY,
                              404: OpenApiResponse(description="No such report, or its file is gone."),
                              409: OpenApiResponse(description="Not ready yet."), **_refusals(401, 403, 429)})
    def get(self, request, code):
        report = _own_pack(request, code)
        if report.status != Report.Status.DONE:
            return Response({"detail": _("This report is not ready yet.")}, status=status.HTTP_409_CONFLICT)
        file = jobs.file_for_download(report, by=request.user)
        if file is None:
            raise Http404(_("The file of this report is no longer available; please generate it again."))
        return FileResponse(file, as_attachment=True, content_type="application/pdf",
                            filename=f"{report.kind}-{report.verification_code}.pdf")
