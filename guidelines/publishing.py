"""Writing guidelines: settings, drafts, four-eyes review, publication and retirement.

Every function checks its permission here, whatever calls it (HR pages, admin actions, commands):
writing, publishing and retiring need `guidelines.manage`, approving and sending back
`guidelines.approve`. An approval binds to what the approver saw: its fingerprint
(chain.draft_fingerprint over the texts and settings) is stored with it, and publication refuses
a draft that no longer matches, however it was changed. Nobody who wrote any part of a draft
approves it.

A guideline may require the works council's consent (WOR art. 27: rules on employee conduct). HR
records it on a draft with the day, the council's reference and the draft's fingerprint; publication
refuses a draft of such a guideline without a consent recorded for exactly its text.
"""

import logging
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, OuterRef, Subquery
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from . import chain, tasks, webhook_events
from .access import require_permission
from .content import render_markdown
from .models import LANGUAGES, AuditEvent, Employee, Guideline, Version, VersionText
from .services import record_audit_event

logger = logging.getLogger(__name__)


def approve_version(*, version, by, at=None, fingerprint=None):
    """Four-eyes approval: someone with the approve permission who wrote no part of the draft.

    `fingerprint` is the draft as the approver saw it (the review page sends it along); when it
    no longer matches, the draft changed while they read it and the approval is refused.
    """
    require_permission(by, "guidelines.approve")
    with transaction.atomic():
        version = Version.objects.select_for_update().get(pk=version.pk)
        if version.status != Version.Status.DRAFT:
            raise ValidationError(_("Only a draft can be approved; this version is %(status)s.")
                                  % {"status": version.get_status_display()})
        if by.pk in _editors(version):
            raise ValidationError(_("The author of a draft cannot approve it; ask another approver."))
        texts = _check_texts_complete(version)
        current = fingerprint_of(version, texts.values())
        if fingerprint is not None and fingerprint != current:
            raise ValidationError(_("The draft was changed while you were reading it. Please review it again."))
        version.status = Version.Status.APPROVED
        version.approved_by, version.approved_at = by, at or timezone.now()
        version.approved_fingerprint = current
        version.save(update_fields=["status", "approved_by", "approved_at", "approved_fingerprint"])
        record_audit_event(
            action=AuditEvent.Action.VERSION_APPROVED, actor=by, guideline=version.guideline, version=version,
            fingerprint=current, hashes={text.language: chain.content_hash(text.body) for text in texts.values()},
        )
    return version


def fingerprint_of(version, texts=None):
    """The fingerprint of a draft as it is now (texts: its VersionText rows, if already loaded)."""
    questions = [[q.position, q.text_nl, q.text_en, q.choices, q.correct, q.hint_nl, q.hint_en]
                 for q in version.quiz_questions.order_by("position")] if version.pk else []
    return chain.draft_fingerprint(leading_language=version.leading_language, effective_date=version.effective_date,
                                   texts=texts if texts is not None else version.texts.all(),
                                   require_read_to_end=version.require_read_to_end, questions=questions)


def _editors(version):
    """Everyone who wrote any part of the draft: its creator and whoever saved it since."""
    saved_by = AuditEvent.objects.filter(version=version, action=AuditEvent.Action.DRAFT_SAVED,
                                         actor__isnull=False).values_list("actor_id", flat=True)
    return {version.created_by_id, *saved_by}


def may_approve(user, version):
    """The rule approve_version enforces, asked beforehand (to offer the decision or not): the approve
    permission, a draft, and no part of it written by `user`."""
    return (user is not None and user.is_active and user.has_perm("guidelines.approve")
            and version.status == Version.Status.DRAFT and user.pk not in _editors(version))


def _approvers():
    return get_user_model().objects.with_perm("guidelines.approve", is_active=True,
                                              backend="django.contrib.auth.backends.ModelBackend")


def approvers_of(version):
    """Who may approve the draft: every active approver who wrote no part of it, by name."""
    return list(_approvers().exclude(pk__in=_editors(version) - {None}).order_by("first_name", "last_name", "email"))


def awaiting_approval(user):
    """The drafts waiting for `user`'s approval, oldest request first: approval was asked, and `user` wrote
    no part of them (four eyes). Each carries `requested_by_id`, who asked last."""
    require_permission(user, "guidelines.approve")
    written = AuditEvent.objects.filter(action=AuditEvent.Action.DRAFT_SAVED, actor=user,
                                        version__isnull=False).values("version_id")
    asked = AuditEvent.objects.filter(action=AuditEvent.Action.REVIEW_REQUESTED,
                                      version=OuterRef("pk")).order_by("-at", "-pk").values("actor_id")[:1]
    return (Version.objects.filter(status=Version.Status.DRAFT, review_requested_at__isnull=False,
                                   guideline__retired_at__isnull=True)
            .exclude(created_by=user).exclude(pk__in=written)
            .annotate(requested_by_id=Subquery(asked))
            .select_related("guideline").prefetch_related("texts")
            .order_by("review_requested_at", "pk"))


def _check_texts_complete(version):
    texts = {text.language: text for text in version.texts.all()}
    missing = [lang for lang in LANGUAGES if lang not in texts or not texts[lang].body.strip()]
    if missing:
        raise ValidationError(
            _("The text is missing or empty in: %(languages)s.") % {"languages": ", ".join(missing)}
        )
    return texts


def publish_version(*, version, by, material, at=None):
    """Publish a draft as a new major (material) or minor (editorial) version.

    The previous published version becomes superseded. Texts are frozen: their HTML and
    content hashes are computed here, and database triggers refuse later changes.
    `at` backdates the publication (demo data only); it defaults to now.
    """
    require_permission(by, "guidelines.manage")
    with transaction.atomic():
        # Locking the guideline serialises publications, so two drafts cannot both become current.
        guideline = Guideline.objects.select_for_update().get(pk=version.guideline_id)
        version = Version.objects.select_for_update().get(pk=version.pk)
        if guideline.retired_at:
            raise ValidationError(_("This guideline is retired; it cannot get new versions."))
        if not version.is_editable:
            raise ValidationError(_("This version is already %(status)s.") % {"status": version.get_status_display()})
        if settings.GUIDELINES_FOUR_EYES and version.status != Version.Status.APPROVED:
            raise ValidationError(_("This draft must be approved by a second person before it is published."))
        now = at or timezone.now()
        if version.effective_date and version.effective_date < timezone.localdate(now):
            raise ValidationError(_("The effective date lies in the past."))
        texts = _check_texts_complete(version)
        fingerprint = fingerprint_of(version, texts.values())
        if settings.GUIDELINES_FOUR_EYES:
            if version.approved_fingerprint != fingerprint:
                # Changed after approval by any route (admin, shell, SQL): nobody approved this text.
                raise ValidationError(_("This draft was changed after it was approved; it needs a new approval."))
        if guideline.requires_works_council_consent:
            _check_consent(version, fingerprint)

        current = guideline.versions.published().first()
        last = guideline.versions.released().aggregate(major=Max("major"))["major"]
        if last is None:
            version.major, version.minor = 1, 0
        elif material:
            version.major, version.minor = last + 1, 0
        else:
            last_minor = guideline.versions.filter(major=last).aggregate(minor=Max("minor"))["minor"]
            version.major, version.minor = last, last_minor + 1

        for text in texts.values():
            text.body_html = render_markdown(text.body)
            text.content_hash = chain.content_hash(text.body)
        VersionText.objects.bulk_update(texts.values(), ["body_html", "content_hash"])

        if current:
            Version.objects.filter(pk=current.pk).update(status=Version.Status.SUPERSEDED, ended_at=now)
        version.status = Version.Status.PUBLISHED
        version.published_by, version.published_at = by, now
        version.save(update_fields=["major", "minor", "status", "published_by", "published_at"])
        record_audit_event(
            action=AuditEvent.Action.VERSION_PUBLISHED,
            actor=by,
            guideline=guideline,
            version=version,
            number=version.number,
            material=version.is_material,
            previous=current.number if current else None,
            hashes={lang: text.content_hash for lang, text in sorted(texts.items())},
            fingerprint=fingerprint, approved_by=version.approved_by_id,
            works_council=_consent_details(version) if version.has_works_council_consent else None,
        )
        if at is None:
            # After the commit, so a rolled-back publication announces nothing.
            transaction.on_commit(lambda: _announce(version.pk))
            webhook_events.emit(webhook_events.Event.VERSION_PUBLISHED, f"version.published:{version.pk}",
                                webhook_events.version_published(version, guideline), at=now)
    return version


def _announce(version_pk):
    try:
        tasks.announce_version.delay(version_pk)
    except Exception:  # the publication stands; the daily reminders still reach everyone
        logger.exception("Could not queue the announcement of version %s", version_pk)


def save_guideline(*, guideline, by, audience_departments=(), audience_groups=()):
    """Create or change a guideline's settings (title, owner, audience, due period).

    The slug is sealed into every acknowledgement, so it is fixed once a version was published.
    """
    require_permission(by, "guidelines.manage")
    creating = guideline.pk is None
    with transaction.atomic():
        if not creating:
            stored = Guideline.objects.select_for_update().get(pk=guideline.pk)
            if stored.slug != guideline.slug and stored.versions.released().exists():
                raise ValidationError(_("The address (slug) of a published guideline cannot change: "
                                        "its acknowledgements refer to it."))
        guideline.save()
        guideline.audience_departments.set(audience_departments)
        guideline.audience_groups.set(audience_groups)
        record_audit_event(
            action=AuditEvent.Action.GUIDELINE_CREATED if creating else AuditEvent.Action.GUIDELINE_CHANGED,
            actor=by, guideline=guideline, title_nl=guideline.title_nl, title_en=guideline.title_en,
            everyone=guideline.audience_everyone,
            departments=sorted(d.name for d in guideline.audience_departments.all()),
            groups=sorted(g.name for g in guideline.audience_groups.all()),
            due_days=guideline.due_days, reacknowledge_days=guideline.reacknowledge_days,
            works_council_consent=guideline.requires_works_council_consent,
        )
    return guideline


def save_draft(*, version, by, texts):
    """Store a draft's language variants: texts = {language: (title, body, change_summary)}.

    Saving changes a draft back from "approved" to "draft": an approval covers the text it saw.
    """
    require_permission(by, "guidelines.manage")
    with transaction.atomic():
        if version.pk:
            edited = version
            version = Version.objects.select_for_update().get(pk=version.pk)
            if not version.is_editable:
                raise ValidationError(_("This version is published and can no longer be changed."))
            # The settings as edited, on the row as locked.
            version.leading_language, version.effective_date, version.require_read_to_end = (
                edited.leading_language, edited.effective_date, edited.require_read_to_end)
        else:
            version.created_by = by
        version.save()
        for language, (title, body, change_summary) in texts.items():
            VersionText.objects.update_or_create(
                version=version, language=language,
                defaults={"title": title, "body": body, "change_summary": change_summary},
            )
        _draft_changed(version, by)
    return version


def mark_draft_edited(*, version, by):
    """A draft was edited outside save_draft (the admin): it loses any approval, and `by` counts
    as one of its authors."""
    require_permission(by, "guidelines.manage")
    with transaction.atomic():
        version = Version.objects.select_for_update().get(pk=version.pk)
        if not version.is_editable:
            raise ValidationError(_("This version is published and can no longer be changed."))
        _draft_changed(version, by)
    return version


def _draft_changed(version, by):
    was_approved = version.status == Version.Status.APPROVED
    version.status = Version.Status.DRAFT
    version.approved_by = version.approved_at = None
    version.approved_fingerprint = ""
    version.save(update_fields=["status", "approved_by", "approved_at", "approved_fingerprint"])
    fingerprint = fingerprint_of(version)
    record_audit_event(action=AuditEvent.Action.DRAFT_SAVED, actor=by, guideline=version.guideline,
                       version=version, fingerprint=fingerprint, approval_withdrawn=was_approved,
                       # The works council consented to another text: its consent no longer counts.
                       consent_outdated=version.has_works_council_consent
                       and version.works_council_fingerprint != fingerprint)


@dataclass
class ReviewRequest:
    """What request_review did: the draft, the approvers e-mailed, and the approvers who could not be
    (no employee record to address and log the e-mail by). Both empty: nobody else can approve it."""

    version: Version
    emailed: list = field(default_factory=list)
    not_emailed: list = field(default_factory=list)


def request_review(*, version, by):
    """The author asks for approval. Every approver who may approve the draft (approvers_of), except the
    one asking, gets an e-mail; they find it in their approvals inbox too (awaiting_approval)."""
    require_permission(by, "guidelines.manage")
    with transaction.atomic():
        version = Version.objects.select_for_update().get(pk=version.pk)
        if version.status != Version.Status.DRAFT:
            raise ValidationError(_("Only a draft can be sent for approval."))
        _check_texts_complete(version)
        version.review_requested_at, version.review_comment = timezone.now(), ""
        version.save(update_fields=["review_requested_at", "review_comment"])
        approvers = [user for user in approvers_of(version) if user.pk != by.pk]
        addressable = dict(Employee.objects.filter(user__in=approvers).exclude(user__email="")
                           .values_list("user_id", "pk"))
        record_audit_event(action=AuditEvent.Action.REVIEW_REQUESTED, actor=by, guideline=version.guideline,
                           version=version, approvers=sorted(addressable))
        if addressable:
            # After the commit, so a rolled-back request e-mails nobody.
            employee_ids = sorted(addressable.values())
            transaction.on_commit(lambda: _ask_approvers(version.pk, by.pk, employee_ids))
    return ReviewRequest(version, emailed=[user for user in approvers if user.pk in addressable],
                         not_emailed=[user for user in approvers if user.pk not in addressable])


def _ask_approvers(version_pk, by_pk, employee_ids):
    try:
        tasks.ask_approvers.delay(version_pk, by_pk, employee_ids)
    except Exception:  # the request stands; the draft waits in the approvers' inbox
        logger.exception("Could not queue the approval request e-mails of version %s", version_pk)


def send_back(*, version, by, comment):
    """An approver returns a draft to its author with a comment instead of approving it."""
    if not comment.strip():
        raise ValidationError(_("Please say what needs to change."))
    require_permission(by, "guidelines.approve")
    with transaction.atomic():
        version = Version.objects.select_for_update().get(pk=version.pk)
        if version.status != Version.Status.DRAFT:
            raise ValidationError(_("Only a draft can be sent back."))
        version.review_requested_at, version.review_comment = None, comment.strip()
        version.save(update_fields=["review_requested_at", "review_comment"])
        record_audit_event(action=AuditEvent.Action.VERSION_SENT_BACK, actor=by, guideline=version.guideline,
                           version=version, comment=comment.strip())
    return version


def retire_guideline(*, guideline, by, reason):
    """Nobody needs to acknowledge the guideline any more; its versions and evidence stay."""
    if not reason.strip():
        raise ValidationError(_("Please give a reason for retiring this guideline."))
    require_permission(by, "guidelines.manage")
    with transaction.atomic():
        guideline = Guideline.objects.select_for_update().get(pk=guideline.pk)
        if guideline.retired_at:
            raise ValidationError(_("This guideline is already retired."))
        now = timezone.now()
        guideline.retired_at = now
        guideline.save(update_fields=["retired_at"])
        guideline.versions.published().update(status=Version.Status.RETIRED, ended_at=now)
        record_audit_event(action=AuditEvent.Action.GUIDELINE_RETIRED, actor=by, guideline=guideline,
                           reason=reason.strip())
    return guideline


# The works council's consent (WOR art. 27) ------------------------------------------------------------

REFERENCE_MAX_LENGTH = 50
NOTE_MAX_LENGTH = 2000
# No control characters (a note keeps its line breaks and tabs), and none of the invisible marks (zero
# width, text direction) that would make one reference look like another on a page or in a PDF.
_INVISIBLE = "\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff"
_REFERENCE_REFUSED = re.compile(f"[\x00-\x1f\x7f-\x9f{_INVISIBLE}]")
_NOTE_REFUSED = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_INVISIBLE}]")
CONSENT_FIELDS = ["works_council_consented_on", "works_council_reference", "works_council_note",
                  "works_council_recorded_by", "works_council_recorded_at", "works_council_fingerprint"]


@dataclass(frozen=True)
class Consent:
    """The works council's consent to a draft as its pages and publication see it: whether the guideline
    requires it, whether one is recorded, and whether that one is for the text as it is now."""

    required: bool
    recorded: bool
    current: bool

    @property
    def outdated(self):
        """Recorded for another text: the draft changed afterwards."""
        return self.recorded and not self.current

    @property
    def blocks_publication(self):
        return self.required and not self.current


def consent_of(version, fingerprint=None):
    """The Consent of `version` (`fingerprint`: its fingerprint_of, if already computed)."""
    recorded = version.has_works_council_consent
    if recorded and fingerprint is None:
        fingerprint = fingerprint_of(version)
    return Consent(required=version.guideline.requires_works_council_consent, recorded=recorded,
                   current=recorded and version.works_council_fingerprint == fingerprint)


def clean_consent_reference(reference):
    """The works council's reference as it is kept: stripped, present, short, printable."""
    reference = (reference or "").strip()
    if not reference:
        raise ValidationError(_("Give the works council's reference, e.g. the number of its decision."),
                              code="required")
    if len(reference) > REFERENCE_MAX_LENGTH:
        raise ValidationError(_("The reference can be at most %(limit)s characters long.")
                              % {"limit": REFERENCE_MAX_LENGTH}, code="max_length")
    if _REFERENCE_REFUSED.search(reference):
        raise ValidationError(_("The reference cannot contain line breaks, tabs or other invisible characters."),
                              code="invalid")
    return reference


def clean_consent_note(note):
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ValidationError(_("The note can be at most %(limit)s characters long.") % {"limit": NOTE_MAX_LENGTH},
                              code="max_length")
    if _NOTE_REFUSED.search(note):
        raise ValidationError(_("The note cannot contain invisible or control characters."), code="invalid")
    return note


def clean_consent_day(consented_on, today=None):
    if consented_on is None:
        raise ValidationError(_("Give the day the works council consented."), code="required")
    if consented_on > (today or timezone.localdate()):
        raise ValidationError(_("The day of consent cannot lie in the future."), code="future")
    return consented_on


def _consent_details(version):
    """The consent of `version` as audit events keep it."""
    return {"consented_on": version.works_council_consented_on.isoformat(),
            "reference": version.works_council_reference, "note": version.works_council_note,
            "fingerprint": version.works_council_fingerprint, "recorded_by": version.works_council_recorded_by_id,
            "recorded_at": version.works_council_recorded_at.isoformat()}


def _check_consent(version, fingerprint):
    """Publication of a draft of a guideline that requires the works council's consent."""
    if not version.has_works_council_consent:
        raise ValidationError(_("This guideline requires the works council's consent before publication "
                                "(WOR art. 27). Record their consent to this draft first."))
    if version.works_council_fingerprint != fingerprint:
        # Changed after the consent by any route (the pages, the admin, SQL): the council consented to another text.
        raise ValidationError(
            _("The draft was changed after the works council's consent of %(date)s (%(reference)s) was recorded: "
              "they consented to another text. Record their consent to this text first.")
            % {"date": formats.date_format(version.works_council_consented_on, "j F Y"),
               "reference": version.works_council_reference})


def record_works_council_consent(*, version, by, consented_on, reference, note="", fingerprint=None, at=None):
    """HR records that the works council consented to the draft as it is now (WOR art. 27): the day, the
    council's reference and an optional note, with the draft's fingerprint. Recording again replaces the
    consent (a correction, or consent to a changed text); the audit events keep every one.

    `fingerprint` is the draft as HR saw it on the form; a change since then is refused. `at` backdates
    the recording (demo data only); it defaults to now.
    """
    require_permission(by, "guidelines.manage")
    now = at or timezone.now()
    cleaned, errors = {}, {}
    for name, clean, value in (
        ("consented_on", lambda day: clean_consent_day(day, timezone.localdate(now)), consented_on),
        ("reference", clean_consent_reference, reference),
        ("note", clean_consent_note, note),
    ):
        try:
            cleaned[name] = clean(value)
        except ValidationError as error:
            errors[name] = error
    if errors:
        raise ValidationError(errors)  # keyed by argument (and form field) name
    consented_on, reference, note = cleaned["consented_on"], cleaned["reference"], cleaned["note"]
    with transaction.atomic():
        version = Version.objects.select_for_update().get(pk=version.pk)
        guideline = version.guideline
        if not version.is_editable:
            raise ValidationError(_("This version is published; the works council's consent to it can no longer "
                                    "change."))
        if not guideline.requires_works_council_consent:
            raise ValidationError(_("This guideline does not require the works council's consent. Turn that on in "
                                    "its settings first."))
        texts = _check_texts_complete(version)
        current = fingerprint_of(version, texts.values())
        if fingerprint and fingerprint != current:
            raise ValidationError(_("The draft was changed while you were recording the consent. Check the text "
                                    "and record the consent again."))
        replaced = _consent_details(version) if version.has_works_council_consent else None
        version.works_council_consented_on, version.works_council_reference = consented_on, reference
        version.works_council_note, version.works_council_fingerprint = note, current
        version.works_council_recorded_by, version.works_council_recorded_at = by, now
        version.save(update_fields=CONSENT_FIELDS)
        record_audit_event(action=AuditEvent.Action.WORKS_COUNCIL_CONSENT_RECORDED, actor=by, guideline=guideline,
                           version=version, replaced=replaced, **_consent_details(version))
    return version


def withdraw_works_council_consent(*, version, by, reason):
    """HR takes a recorded consent back before publication (recorded on the wrong draft, or the council
    withdrew it), with a reason; the audit event keeps what was withdrawn."""
    require_permission(by, "guidelines.manage")
    if not (reason or "").strip():
        raise ValidationError(_("Please give a reason for withdrawing the consent."))
    with transaction.atomic():
        version = Version.objects.select_for_update().get(pk=version.pk)
        if not version.is_editable:
            raise ValidationError(_("This version is published; the works council's consent to it can no longer "
                                    "change."))
        if not version.has_works_council_consent:
            raise ValidationError(_("No consent of the works council is recorded for this draft."))
        withdrawn = _consent_details(version)
        version.works_council_consented_on = version.works_council_recorded_by = None
        version.works_council_recorded_at = None
        version.works_council_reference = version.works_council_note = version.works_council_fingerprint = ""
        version.save(update_fields=CONSENT_FIELDS)
        record_audit_event(action=AuditEvent.Action.WORKS_COUNCIL_CONSENT_WITHDRAWN, actor=by,
                           guideline=version.guideline, version=version, withdrawn=withdrawn, reason=reason.strip())
    return version
