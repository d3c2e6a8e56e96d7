"""What an auditor pack and a certificate contain: the choices an auditor makes, checked, and the
evidence gathered for them. Rendering to PDF is rendering.py; nothing here writes.

"As of" a day means the state at the end of that day (Europe/Amsterdam): acknowledgements,
exemptions, extensions and reminders are append-only with their moments, so the past is
reconstructed exactly. The population, their departments and managers are the organisation as
recorded on that day (organisation.py), read with the employment dates of that record.
"""

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import dashboards
from ..accounts import amr_methods, provider_second_factor, sign_in_description
from ..models import (
    BATCH_ROWS,
    LANGUAGES,
    Checkpoint,
    Department,
    DueDateExtension,
    Exemption,
    Guideline,
    NotificationItem,
    NotificationLog,
    Objection,
    Report,
    Version,
)
from ..organisation import organisation_on
from ..status import Status, end_of_day, in_scope, with_status

ALL_VERSIONS = Report.EVERY_VERSION


@dataclass
class PackRequest:
    guideline: Guideline
    versions: list  # the versions whose acknowledgements are reported, oldest first
    department: Department | None
    as_of: date
    language: str
    version_choice: str  # "all" or a number such as "2.0"

    @property
    def moment(self):
        """The end of the as-of day."""
        return end_of_day(self.as_of)

    def parameters(self):
        return {"guideline": self.guideline.slug, "version": self.version_choice,
                "department": self.department.name if self.department else None,
                "as_of": self.as_of.isoformat(), "language": self.language}


def parse_pack(*, guideline_slug, version="", department="", as_of="", language="en", today=None):
    """Check an auditor's choices; ValidationError with a message saying what is wrong."""
    today = today or timezone.localdate()
    guideline = Guideline.objects.filter(slug=guideline_slug).first()
    if guideline is None:
        raise ValidationError(_("There is no guideline %(slug)s.") % {"slug": guideline_slug}, code="guideline")
    if language not in LANGUAGES:
        raise ValidationError(_("The report language must be nl or en."), code="language")
    if as_of:
        try:
            day = date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
        except ValueError:
            raise ValidationError(_("The as-of date must be a date such as 2026-03-31."), code="as_of") from None
    else:
        day = today
    if day > today:
        raise ValidationError(_("The as-of date lies in the future; a report can only show what has happened."),
                              code="as_of")
    moment = end_of_day(day)
    released = list(guideline.versions.filter(published_at__lt=moment).order_by("major", "minor"))
    if not released:
        raise ValidationError(
            _("%(title)s had no published version on %(date)s.") % {"title": guideline.title, "date": day},
            code="as_of")
    version = (version or "").strip()
    if version in ("", ALL_VERSIONS):
        # One section per major version: its latest minor version on the day.
        latest = {}
        for candidate in released:
            latest[candidate.major] = candidate
        versions = [latest[major] for major in sorted(latest)] if version == ALL_VERSIONS else [released[-1]]
        choice = ALL_VERSIONS if version == ALL_VERSIONS else released[-1].number
    else:
        if not re.fullmatch(r"\d{1,6}\.\d{1,6}", version):
            raise ValidationError(_("Version numbers look like 2.0 or 2.1."), code="version")
        versions = [v for v in guideline.versions.released() if v.number == version]
        if not versions:
            raise ValidationError(_("%(title)s has no published version %(number)s.")
                                  % {"title": guideline.title, "number": version}, code="version")
        if versions[0].published_at >= moment:
            raise ValidationError(_("Version %(number)s was published after %(date)s.")
                                  % {"number": version, "date": day}, code="as_of")
        choice = version
    for item in versions:
        item.guideline = guideline
    chosen_department = None
    if department:
        chosen_department = Department.objects.filter(Q(name=department) | Q(pk=department if str(department).isdigit()
                                                                               else None)).first()
        if chosen_department is None:
            raise ValidationError(_("There is no department %(name)s.") % {"name": department}, code="department")
        population = in_scope(versions[-1], day, department_members(day, chosen_department))
        if not guideline.audience_everyone and not guideline.audience_departments.filter(
                pk=chosen_department.pk).exists() and not population.exists():
            raise ValidationError(_("The department %(name)s is not in the audience of %(title)s.")
                                  % {"name": chosen_department.name, "title": guideline.title}, code="department")
    return PackRequest(guideline, versions, chosen_department, day, language, choice)


# The evidence ---------------------------------------------------------------------------------------


def department_members(day, department):
    """The employees in `department` on the day (employed or not), as an `organisation_on(day)` queryset."""
    organisation = organisation_on(day)
    return organisation.employees().filter(**{organisation.field("department"): department.pk})


def population(pack, version):
    employees = department_members(pack.as_of, pack.department) if pack.department else None
    return in_scope(version, pack.as_of, employees)


def employee_rows(pack, version):
    """Every in-scope employee with status and the acknowledgement that counts, as dicts, streamed,
    ordered by department, name and number."""
    rows = organisation_on(pack.as_of).with_names(with_status(population(pack, version), version, pack.as_of)).values(
        "employee_number", "user__first_name", "user__last_name", "department_name", "manager_number", "status",
        "due_date", "ack__acknowledged_at", "ack__version__major", "ack__version__minor", "ack__language",
        "ack__channel", "ack__content_hash", "ack__sequence", "ack__auth_method", "ack__sso_subject", "ack__sso_amr",
        "ack__sso_acr", "ack__seal_format", "ack__first_opened_at", "ack__read_to_end_at", "ack__seconds_on_text",
        "ack__answers", "pk",
    ).order_by("department_name", "user__last_name", "user__first_name", "employee_number")
    return rows.iterator(chunk_size=BATCH_ROWS)


def count_rows(pack):
    return sum(population(pack, version).count() for version in pack.versions)


CSV_COLUMNS = [
    "guideline", "major_version", "employee_number", "first_name", "last_name", "department",
    "manager_employee_number", "status",
    "due_date", "version_read", "language", "acknowledged_at_utc", "channel", "content_hash", "record_number",
    "sign_in", "provider_subject", "provider_amr", "provider_acr",
    "first_opened_at_utc", "read_to_end_at_utc", "seconds_on_text", "comprehension_answers",
]


def _utc(moment):
    return moment.astimezone(timezone.UTC).isoformat() if moment else ""


def csv_record(pack, version, row):
    """One row of employee_rows() as a line of the embedded CSV (CSV_COLUMNS), times in UTC. The text
    from the HR system is defused for spreadsheets like the dashboard export (dashboards.csv_cell)."""
    acknowledged = row["ack__acknowledged_at"]
    cell = dashboards.csv_cell
    return [
        pack.guideline.slug, version.major, cell(row["employee_number"]), cell(row["user__first_name"]),
        cell(row["user__last_name"]), cell(row["department_name"] or ""), cell(row["manager_number"] or ""),
        row["status"], row["due_date"].isoformat(),
        f"{row['ack__version__major']}.{row['ack__version__minor']}" if acknowledged else "",
        row["ack__language"] or "", acknowledged.astimezone(timezone.UTC).isoformat() if acknowledged else "",
        row["ack__channel"] or "", row["ack__content_hash"] or "", row["ack__sequence"] or "",
        row["ack__auth_method"] or "", cell(row["ack__sso_subject"] or ""), cell(row["ack__sso_amr"] or ""),
        cell(row["ack__sso_acr"] or ""),
        _utc(row["ack__first_opened_at"]) if acknowledged else "", _utc(row["ack__read_to_end_at"]),
        "" if row["ack__seconds_on_text"] is None else row["ack__seconds_on_text"], row["ack__answers"] or "",
    ]


class ReadingKind:
    """How an acknowledgement's reading is proven (seal format 3): the text shown to its end, shown
    in part, or only opened (the page reported nothing, e.g. without JavaScript); or not recorded
    (sealed before the proof of reading existed)."""

    END, PART, OPENED, NOT_RECORDED = "end", "part", "opened", "not_recorded"

    @classmethod
    def of(cls, row):
        if (row["ack__seal_format"] or 0) < 3:
            return cls.NOT_RECORDED
        if row["ack__read_to_end_at"]:
            return cls.END
        return cls.OPENED if row["ack__seconds_on_text"] is None else cls.PART


class Readings:
    """The proof of reading of a pack's acknowledgements: how many of each ReadingKind, and the
    median time on the text, tallied while the per-employee rows stream past."""

    LABELS = {
        ReadingKind.END: gettext_lazy("The text was on screen to its end"),
        ReadingKind.PART: gettext_lazy("The text was on screen, not to its end"),
        ReadingKind.OPENED: gettext_lazy("Opened only: the page reported no reading (no JavaScript)"),
        ReadingKind.NOT_RECORDED: gettext_lazy("Not recorded: acknowledged before reading was recorded"),
    }

    def __init__(self):
        self.counts, self.seconds = Counter(), []

    def add(self, row):
        if row["ack__acknowledged_at"]:
            self.counts[ReadingKind.of(row)] += 1
            if row["ack__seconds_on_text"] is not None:
                self.seconds.append(row["ack__seconds_on_text"])

    def rows(self):
        return [{"kind": kind, "label": label, "count": self.counts[kind]} for kind, label in self.LABELS.items()
                if self.counts[kind]]

    def median_seconds(self):
        return statistics.median_low(self.seconds) if self.seconds else None


class SignIns:
    """How the acknowledgements in a pack were signed in: a count per recorded method, with whether
    the identity provider reported a second factor (accounts.sign_in_label names each), tallied while
    the per-employee rows stream past."""

    def __init__(self):
        self.counts = Counter()

    def add(self, row):
        if row["ack__acknowledged_at"]:
            method = row["ack__auth_method"]
            provider_mfa = method.startswith("sso:") and provider_second_factor(amr_methods(row["ack__sso_amr"]))
            self.counts[(method, provider_mfa)] += 1

    def rows(self):
        """One dict per method (label, method, provider_second_factor, count), most frequent first."""
        return [{"label": sign_in_description(method, provider_mfa), "method": method,
                 "provider_second_factor": provider_mfa, "count": count}
                for (method, provider_mfa), count in self.counts.most_common()]


@dataclass
class VersionSection:
    version: object
    summary: object
    outstanding: list = field(default_factory=list)


def version_sections(pack):
    """Per reported version: the counts and departments as of the day, and the outstanding employees
    with their reminder history."""
    sections = []
    for version in pack.versions:
        summary = dashboards.summary(version, pack.as_of, population(pack, version))
        sections.append(VersionSection(version, summary, outstanding(pack, version)))
    return sections


def outstanding(pack, version):
    """Pending and overdue employees (as of the day) with due dates and every e-mail that reminded them."""
    rows = list(
        organisation_on(pack.as_of).with_names(with_status(population(pack, version), version, pack.as_of))
        .filter(status__in=[Status.PENDING, Status.OVERDUE])
        .select_related("user")
        .order_by("department_name", "user__last_name", "user__first_name", "employee_number")
    )
    history = reminder_history([row.pk for row in rows], version, pack.moment)
    for row in rows:
        row.reminders = history.get(row.pk, [])
        row.overdue = row.status == Status.OVERDUE
    return rows


def reminder_history(employee_ids, version, until):
    """{employee pk: [(sent at, kind label), …]} for the e-mails about the version's major version
    sent to the employees themselves (escalations went to their managers). The employees are asked
    for in batches: a pack may list more outstanding employees than a query may have parameters."""
    versions = Version.objects.filter(guideline=version.guideline_id, major=version.major)
    history = {}
    for start in range(0, len(employee_ids), BATCH_ROWS):
        sent = (NotificationItem.objects
                .filter(employee__in=employee_ids[start:start + BATCH_ROWS], version__in=versions,
                        notification__status="sent", notification__sent_at__lt=until)
                .exclude(notification__kind=NotificationLog.Kind.ESCALATION)
                .values_list("employee_id", "notification__sent_at", "notification__kind"))
        for employee_pk, sent_at, kind in sent:
            history.setdefault(employee_pk, []).append((sent_at, NotificationLog.Kind(kind).label))
    for entries in history.values():
        entries.sort()
    return history


def exemptions(pack):
    """Exemptions granted by the end of the day (with whether each was still active then)."""
    rows = list(Exemption.objects.filter(guideline=pack.guideline, granted_at__lt=pack.moment)
                .select_related("employee__user", "granted_by", "revoked_by").order_by("granted_at"))
    for row in rows:
        row.revoked_then = row.revoked_at is not None and row.revoked_at < pack.moment
    if pack.department:
        members = set(department_members(pack.as_of, pack.department).values_list("pk", flat=True))
        rows = [row for row in rows if row.employee_id in members]
    return rows


def extensions(pack):
    majors = {version.major for version in pack.versions}
    rows = (DueDateExtension.objects.filter(guideline=pack.guideline, major__in=majors,
                                            granted_at__lt=pack.moment)
            .select_related("employee__user", "granted_by").order_by("granted_at"))
    if pack.department:
        rows = rows.filter(employee__in=department_members(pack.as_of, pack.department).values("pk"))
    return list(rows)


def objections(pack):
    """The objections and exception requests about the reported major versions recorded by the end of the
    day, oldest first, each with HR's handling as it stood then (`handled_then`: the ObjectionResolution
    made by then, or None)."""
    majors = {version.major for version in pack.versions}
    rows = (Objection.objects.filter(guideline=pack.guideline, major__in=majors, recorded_at__lt=pack.moment)
            .select_related("version", "resolution__resolved_by", "resolution__exemption")
            .order_by("recorded_at", "pk"))
    if pack.department:
        rows = rows.filter(employee__in=department_members(pack.as_of, pack.department).values("pk"))
    rows = list(rows)
    for row in rows:
        handling = row.handling
        row.handled_then = handling if handling is not None and handling.resolved_at < pack.moment else None
    return rows


OBJECTION_CSV_COLUMNS = [
    "guideline", "version", "kind", "employee_number", "employee_name", "department", "recorded_at_utc",
    "language", "content_hash", "statement", "reason", "first_opened_at_utc", "sign_in", "ip_address",
    "handling", "handled_at_utc", "handled_by", "answer", "exemption_from", "exemption_until",
]


def objection_csv_record(pack, row):
    """One of objections() as a line of the pack's objections.csv: the texts people wrote defused for
    spreadsheets (dashboards.csv_cell), times in UTC; the handling as it stood at the end of the day."""
    cell, handled = dashboards.csv_cell, row.handled_then
    by = handled.resolved_by if handled else None
    exemption = handled.exemption if handled else None
    return [
        pack.guideline.slug, row.version.number, row.kind, cell(row.employee_number), cell(row.employee_name),
        cell(row.department_name), _utc(row.recorded_at), row.language, row.content_hash, cell(row.statement),
        cell(row.reason), _utc(row.first_opened_at), cell(row.auth_method), row.ip_address or "",
        handled.outcome if handled else "open", _utc(handled.resolved_at) if handled else "",
        cell((by.get_full_name() or by.email) if by else ""), cell(handled.note if handled else ""),
        exemption.starts_on.isoformat() if exemption else "",
        exemption.ends_on.isoformat() if exemption and exemption.ends_on else "",
    ]


def version_history(pack):
    """Every version published by the end of the day, with approval, the works council's consent and the
    material/editorial choice."""
    versions = list(pack.guideline.versions.filter(published_at__lt=pack.moment)
                    .select_related("created_by", "approved_by", "published_by", "works_council_recorded_by")
                    .prefetch_related("texts")
                    .order_by("major", "minor"))
    for version in versions:
        texts = {text.language: text for text in version.texts.all()}
        version.text = texts.get(pack.language) or next(iter(texts.values()))
        version.hashes = sorted((text.language, text.content_hash) for text in texts.values())
    return versions


def reported_texts(pack):
    """The full text of each reported version in the report's language, with both variants' hashes."""
    from ..publishing import fingerprint_of  # the one definition of a version's fingerprint

    texts = []
    for version in pack.versions:
        by_language = {text.language: text for text in version.texts.all()}
        texts.append({"version": version, "text": by_language[pack.language],
                      "hashes": sorted((language, text.content_hash) for language, text in by_language.items()),
                      # Whether the works council's recorded consent was given for exactly this text.
                      "consent_current": version.has_works_council_consent and version.works_council_fingerprint
                      == fingerprint_of(version, by_language.values())})
    return texts


# The pack lists the latest checkpoints up to its day (older ones are in the database and its copies).
PACK_CHECKPOINTS = 31


def checkpoints_until(pack):
    """(the latest PACK_CHECKPOINTS checkpoints made by the end of the pack's day, oldest first; how
    many were made by then in all)."""
    made = Checkpoint.objects.filter(made_at__lt=pack.moment)
    return list(made.order_by("-made_at")[:PACK_CHECKPOINTS])[::-1], made.count()


def chain_check(by):
    """Verify the whole acknowledgement chain now (recorded as an audit event)."""
    from ..services import verify_evidence

    return verify_evidence(actor=by)

