"""Acknowledging and the evidence around it: exemptions and extensions, readings, the audit trail,
the e-mail-link channel, sealing and verifying the chain.

Other writes live with their subject: publishing.py (drafts, approval, publication, retirement),
imports.py (the HR import), notifications/ (the notification log), reports/ (PDF reports)."""

import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import chain, chain_reading, content, status, webhook_events
from .access import require_permission
from .models import (
    BATCH_ROWS,
    Acknowledgement,
    AuditEvent,
    ChainHead,
    DueDateExtension,
    Employee,
    Exemption,
    NotificationLog,
    QuizQuestion,
    Reading,
    ReadingProgress,
    Version,
)
from .prepared import PreparedQuery


def record_audit_event(*, action, actor=None, guideline=None, version=None, **details):
    return AuditEvent.objects.create(
        action=action, actor=actor, guideline=guideline, version=version, details=details
    )


# Exemptions and due dates -------------------------------------------------------------------


def grant_exemption(*, employee, guideline, by, reason, starts_on=None, ends_on=None):
    require_permission(by, "guidelines.manage")
    if not reason.strip():
        raise ValidationError(_("An exemption needs a reason."))
    starts_on = starts_on or timezone.localdate()
    if ends_on and ends_on < starts_on:
        raise ValidationError(_("The exemption cannot end before it starts."))
    with transaction.atomic():
        exemption = Exemption.objects.create(employee=employee, guideline=guideline, reason=reason.strip(),
                                             starts_on=starts_on, ends_on=ends_on, granted_by=by)
        record_audit_event(action=AuditEvent.Action.EXEMPTION_GRANTED, actor=by, guideline=guideline,
                           employee_number=employee.employee_number, reason=exemption.reason,
                           starts_on=str(starts_on), ends_on=str(ends_on) if ends_on else None)
    return exemption


def revoke_exemption(*, exemption, by):
    require_permission(by, "guidelines.manage")
    with transaction.atomic():
        exemption = Exemption.objects.select_for_update().get(pk=exemption.pk)
        if exemption.revoked_at:
            raise ValidationError(_("This exemption was already revoked."))
        exemption.revoked_by, exemption.revoked_at = by, timezone.now()
        exemption.save(update_fields=["revoked_by", "revoked_at"])
        record_audit_event(action=AuditEvent.Action.EXEMPTION_REVOKED, actor=by, guideline=exemption.guideline,
                           employee_number=exemption.employee.employee_number)
    return exemption


def extend_due_date(*, employee, version, by, due_date, reason):
    require_permission(by, "guidelines.manage")
    if not reason.strip():
        raise ValidationError(_("An extension needs a reason."))
    if due_date <= status.due_date(employee, version):
        raise ValidationError(_("The new due date must be later than the current one."))
    with transaction.atomic():
        extension = DueDateExtension.objects.create(employee=employee, guideline=version.guideline,
                                                    major=version.major, due_date=due_date,
                                                    reason=reason.strip(), granted_by=by)
        record_audit_event(action=AuditEvent.Action.DUE_DATE_EXTENDED, actor=by, guideline=version.guideline,
                           version=version, employee_number=employee.employee_number,
                           due_date=str(due_date), reason=extension.reason)
    return extension


# Acknowledging --------------------------------------------------------------------------


@dataclass
class RequestMeta:
    """What the request tells about how the acknowledgement was made."""

    channel: str = Acknowledgement.Channel.WEB
    auth_method: str = "unknown"
    ip_address: str | None = None
    user_agent: str = ""
    # After a sign-in through an identity provider: its subject and its amr (space-separated) and acr.
    sso_subject: str = ""
    sso_amr: str = ""
    sso_acr: str = ""


# An acknowledgement counts as made through an e-mail link only when the page was opened from a
# link we sent to this employee: the link carries a signed reference to its notification log row.
# A form field saying "email" proves nothing, so the channel never comes from the client.
EMAIL_LINK_SALT = "guidelines.email-link"
EMAIL_LINK_MAX_AGE = timedelta(days=120)


def email_link_token(notification_pk):
    return signing.dumps(notification_pk, salt=EMAIL_LINK_SALT)


def channel_for(*, employee, email_link=""):
    """The channel of an acknowledgement: e-mail link if `email_link` is a valid token of an e-mail
    sent to `employee`, otherwise web."""
    if email_link and employee is not None:
        try:
            notification_pk = signing.loads(email_link, salt=EMAIL_LINK_SALT, max_age=EMAIL_LINK_MAX_AGE)
        except signing.BadSignature:
            return Acknowledgement.Channel.WEB
        if NotificationLog.objects.filter(pk=notification_pk, recipient=employee).exists():
            return Acknowledgement.Channel.EMAIL
    return Acknowledgement.Channel.WEB


@lru_cache(maxsize=512)
def acknowledgement_statement(*, title, number, language):
    with translation.override(language):
        return _("I have read and understood the %(title)s, version %(number)s.") % {
            "title": title, "number": number
        }


def minimised_ip(ip_address):
    mode = settings.EVIDENCE_IP_ADDRESS
    if not ip_address or mode == "none":
        return None
    try:
        address = ipaddress.ip_address(ip_address)
    except ValueError:
        return None
    if mode == "truncated":
        prefix = 24 if address.version == 4 else 48
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
    return str(address)


def _latest_acknowledgement(*, employee, guideline, major):
    return (
        Acknowledgement.objects.filter(employee=employee, guideline=guideline, major=major)
        .select_related("guideline", "version")
        .order_by("-cycle")
        .first()
    )


def current_acknowledgement(*, employee, guideline, major, moment=None):
    """The employee's valid acknowledgement of a major version, or None."""
    ack = _latest_acknowledgement(employee=employee, guideline=guideline, major=major)
    if ack and ack.is_valid_on(moment or timezone.now()):
        return ack
    return None


def check_can_acknowledge(*, employee, version):
    """Raise PermissionDenied / ValidationError with a message the employee can act on."""
    if version.status != Version.Status.PUBLISHED or version.guideline.retired_at:
        raise ValidationError(
            _("Version %(number)s is not the current version of this guideline; please read the current one.")
            % {"number": version.number},
            code="not_current",
        )
    if not employee.is_employed_on(timezone.localdate()):
        raise PermissionDenied(_("Your employment record is not active, so you cannot acknowledge guidelines."))
    if not version.guideline.includes(employee):
        raise PermissionDenied(_("This guideline does not apply to you, so you cannot acknowledge it."))


def build_acknowledgement(*, employee, version, text, at, meta, cycle=1, first_opened_at=None, read_to_end_at=None,
                          seconds_on_text=None, answers=""):
    """An unsaved acknowledgement with every evidence field filled in, not yet sealed."""
    manager = employee.manager
    return Acknowledgement(
        employee=employee,
        guideline=version.guideline,
        version=version,
        major=version.major,
        cycle=cycle,
        language=text.language,
        content_hash=text.content_hash,
        statement=acknowledgement_statement(title=text.title, number=version.number, language=text.language),
        acknowledged_at=at,
        first_opened_at=first_opened_at,
        channel=meta.channel,
        auth_method=meta.auth_method,
        ip_address=minimised_ip(meta.ip_address),
        user_agent=meta.user_agent[:512] if settings.EVIDENCE_USER_AGENT else "",
        employee_number=employee.employee_number,
        employee_name=employee.full_name,
        department_name=employee.department.name if employee.department_id else "",
        manager_employee_number=manager.employee_number if manager else "",
        manager_name=manager.full_name if manager else "",
        # A provider's claims are its own text: cut to the columns rather than fail the acknowledgement.
        sso_subject=meta.sso_subject[:255],
        sso_amr=meta.sso_amr[:200],
        sso_acr=meta.sso_acr[:200],
        read_to_end_at=read_to_end_at,
        seconds_on_text=seconds_on_text,
        answers=answers,
    )


def acknowledge(*, employee, version, language, meta, reading_tracked=False):
    """Record that `employee` read and understood `version` in `language`.

    Returns (acknowledgement, created). Acknowledging again while a valid acknowledgement of
    the same major version exists returns that one with created=False.

    `reading_tracked`: the page reported the reading (js/reading.js runs). Then a version that
    requires reading to the end is refused until the text was shown to its end; without it the
    acknowledgement stands on when the text was opened, and says so. The form's word is not needed
    where the server holds the page's reports of this version: the script ran, so a form that claims
    it did not cannot skip the end.
    """
    check_can_acknowledge(employee=employee, version=version)
    # Published, so its texts are frozen: content.released_texts may answer from the cache.
    text = content.released_texts([version])[version.pk].get(language)
    if text is None:
        raise ValidationError(_("This version has no text in the chosen language."), code="language")

    try:
        with transaction.atomic():
            # The chain head's row lock serialises every append, so each record links to
            # exactly one predecessor and a second click by the same employee waits here.
            [head] = _locked_chain_head()
            now = timezone.now()
            # Read after the lock (a statement of its own, so it sees what committed while we waited).
            employee, latest = _acknowledging(employee, version)
            if latest and latest.is_valid_on(now):
                return latest, False
            # seconds_on_text is None only when the page never reported on this version.
            tracked = reading_tracked or employee.seconds_on_text is not None
            if version.require_read_to_end and tracked and employee.read_to_end_at is None:
                raise ValidationError(_("Read the text to its end first: the button works once you have reached "
                                        "the end."), code="read_to_end")
            answers = ""
            if employee.comprehension_questions:
                from . import comprehension  # it asks this module who may acknowledge

                answers = comprehension.final_answers(employee, version)
            ack = build_acknowledgement(
                employee=employee,
                version=version,
                text=text,
                at=now,
                meta=meta,
                cycle=latest.cycle + 1 if latest else 1,
                first_opened_at=employee.first_opened_at,
                read_to_end_at=employee.read_to_end_at,
                seconds_on_text=employee.seconds_on_text,
                answers=answers,
            )
            ack.sequence, ack.previous_seal = head.sequence + 1, head.seal
            ack.seal = chain.compute_seal(ack, guideline_slug=version.guideline.slug, version_number=version.number)
            ack.save()
            ChainHead.objects.filter(pk=1).update(sequence=ack.sequence, seal=ack.seal)
            webhook_events.emit(webhook_events.Event.ACKNOWLEDGEMENT_CREATED, f"acknowledgement.created:{ack.pk}",
                                webhook_events.acknowledgement_created(ack, version), at=now)
    except IntegrityError:
        # Only reachable if the lock was bypassed (e.g. SQLite without IMMEDIATE): the other
        # request's record stands.
        existing = current_acknowledgement(employee=employee, guideline=version.guideline, major=version.major)
        if existing is None:
            raise
        return existing, False
    return ack, True


def _employee_as_evidence(employee_id, guideline_id, major, version_id):
    acks = (Acknowledgement.objects.filter(employee=OuterRef("pk"), guideline=guideline_id, major=major)
            .order_by("-cycle"))
    first_opened = Reading.objects.filter(employee=OuterRef("pk"), version=version_id).values("first_opened_at")
    progress = ReadingProgress.objects.filter(employee=OuterRef("pk"), version=version_id)
    questions = QuizQuestion.objects.filter(version=version_id).values("version").annotate(n=Count("pk"))
    return (
        Employee.objects.select_related("user", "department", "manager__user")
        .annotate(first_opened_at=Subquery(first_opened[:1]), latest_pk=Subquery(acks.values("pk")[:1]),
                  read_to_end_at=Subquery(progress.values("read_to_end_at")[:1]),
                  seconds_on_text=Subquery(progress.values("seconds_on_text")[:1]),
                  comprehension_questions=Subquery(questions.values("n")[:1]))
        .filter(pk=employee_id)
    )


# Every acknowledgement asks these: compiled once (prepared.py).
_employee_as_evidence_of = PreparedQuery(Employee, _employee_as_evidence, int, int, int, int)
_locked_chain_head = PreparedQuery(ChainHead, lambda: ChainHead.objects.select_for_update().filter(pk=1))


def _acknowledging(employee, version):
    """The employee with their user, department and manager at this moment (part of the evidence),
    when they first opened `version` (`first_opened_at`, or None) and how far they read it
    (`read_to_end_at`, `seconds_on_text`: None without a report from the page), in one query; and their latest
    acknowledgement of its major version, or None (a query more only if there is one)."""
    [employee] = _employee_as_evidence_of(employee.pk, version.guideline_id, version.major, version.pk)
    latest = None
    if employee.latest_pk is not None:
        latest = Acknowledgement.objects.select_related("guideline", "version").get(pk=employee.latest_pk)
    return employee, latest


def record_reading(*, employee, version):
    """Remember when the employee first opened this version (a no-op after the first time)."""
    Reading.objects.bulk_create(
        [Reading(employee=employee, version=version, first_opened_at=timezone.now())], ignore_conflicts=True
    )


# The most one report of the reading page may add: it reports every 15 seconds and when it is left.
MAX_SECONDS_PER_REPORT = 120


def record_progress(*, employee, version, seconds, percent):
    """What the reading page reports (js/reading.js): `seconds` more in view, read up to `percent` of
    the text (100: its end was shown). The furthest point only grows; the time adds up, but never
    more than the clock allows since the last report (nor since the page was first opened), so a
    forged report cannot make a quick look a long read. Only for a version the employee opened and
    has not acknowledged yet: afterwards the acknowledgement holds what counted."""
    if not 0 <= seconds <= MAX_SECONDS_PER_REPORT or not 0 <= percent <= 100:
        raise ValidationError(_("This reading report is out of range."), code="range")
    with transaction.atomic():
        opened = Reading.objects.filter(employee=employee, version=version).values_list("first_opened_at", flat=True)
        first_opened_at = opened.first()
        if first_opened_at is None:
            raise ValidationError(_("Open the guideline before reporting how far you read it."), code="not_opened")
        now = timezone.now()
        progress, _created = ReadingProgress.objects.select_for_update().get_or_create(
            employee=employee, version=version, defaults={"updated_at": first_opened_at})
        if Acknowledgement.objects.filter(employee=employee, version=version).exists():
            return progress
        # One second of slack: the browser's clock and ours tick apart.
        allowed = max(0, int((now - progress.updated_at).total_seconds()) + 1)
        progress.seconds_on_text = min(progress.seconds_on_text + min(seconds, allowed),
                                       int((now - first_opened_at).total_seconds()) + 1)
        progress.furthest_percent = max(progress.furthest_percent, percent)
        if percent == 100 and progress.read_to_end_at is None:
            progress.read_to_end_at = now
        progress.updated_at = now
        progress.save()
    return progress


def append_seeded_acknowledgements(acks, *, insert=None):
    """Seal and append prepared acknowledgements in bulk (demo and scale data only).

    Each ack must have guideline and version set (objects, not only ids). `insert` receives an
    iterator of sealed acks (default: bulk_create); it runs inside the transaction that holds the
    chain lock. Sealing is lazy, so the database can store rows while later ones are sealed.
    """
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().get(pk=1)
        tail = {"sequence": head.sequence, "seal": head.seal}

        def sealed():
            for ack in acks:
                ack.sequence, ack.previous_seal = tail["sequence"] + 1, tail["seal"]
                ack.seal = chain.compute_seal(
                    ack, guideline_slug=ack.guideline.slug, version_number=ack.version.number
                )
                tail.update(sequence=ack.sequence, seal=ack.seal)
                yield ack

        if insert is None:
            Acknowledgement.objects.bulk_create(sealed(), batch_size=BATCH_ROWS)
        else:
            insert(sealed())
        ChainHead.objects.filter(pk=1).update(**tail)


# Evidence verification ------------------------------------------------------------------


def verify_evidence(*, actor=None):
    with chain_reading.own_snapshot() as own_snapshot:
        head = ChainHead.objects.get(pk=1)
        vouched = (chain_reading.vouched_beginning(own_snapshot=own_snapshot)
                   if connection.vendor == "postgresql" else None)
        result = chain.verify_chain(chain_reading.chain_records(after=vouched and vouched[0]),
                                    expected_head=(head.sequence, head.seal), after=vouched)
        if result.intact:
            # A chain consistent in itself may still be a rewritten or shortened one: the checkpoints say.
            from . import checkpoints

            check = checkpoints.verify(chain_end=result.head_sequence)
            result.checkpoints_checked = check.checked
            if not check.intact:
                broken = check.first_broken
                result.intact, result.problem = False, check.problem
                result.broken_checkpoint = checkpoints.moment(broken)
                result.first_break_sequence = min(broken.head_sequence, result.head_sequence + 1)
    record_audit_event(
        action=AuditEvent.Action.CHAIN_VERIFIED,
        actor=actor,
        intact=result.intact,
        checked=result.checked,
        head_sequence=result.head_sequence,
        head_seal=result.head_seal,
        first_break_sequence=result.first_break_sequence,
        problem=result.problem,
        checkpoints_checked=result.checkpoints_checked,
        broken_checkpoint=result.broken_checkpoint,
    )
    return result
