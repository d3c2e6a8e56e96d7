"""Writing guidelines: settings, drafts, four-eyes review, publication and retirement."""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from . import chain, tasks
from .content import render_markdown
from .models import REQUIRED_LANGUAGES, AuditEvent, Guideline, Version, VersionText
from .services import record_audit_event

logger = logging.getLogger(__name__)


def approve_version(*, version, by, at=None):
    """Four-eyes approval: someone with the approve permission who did not write the draft."""
    with transaction.atomic():
        version = Version.objects.select_for_update().get(pk=version.pk)
        if version.status != Version.Status.DRAFT:
            raise ValidationError(_("Only a draft can be approved; this version is %(status)s.")
                                  % {"status": version.get_status_display()})
        if not by.has_perm("guidelines.approve"):
            raise PermissionDenied(_("You do not have permission to approve versions."))
        if version.created_by_id == by.pk:
            raise ValidationError(_("The author of a draft cannot approve it; ask another approver."))
        _check_texts_complete(version)
        version.status = Version.Status.APPROVED
        version.approved_by, version.approved_at = by, at or timezone.now()
        version.save(update_fields=["status", "approved_by", "approved_at"])
        record_audit_event(
            action=AuditEvent.Action.VERSION_APPROVED, actor=by, guideline=version.guideline, version=version
        )
    return version


def _check_texts_complete(version):
    texts = {text.language: text for text in version.texts.all()}
    missing = [lang for lang in REQUIRED_LANGUAGES if lang not in texts or not texts[lang].body.strip()]
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
        )
        if at is None:
            # After the commit, so a rolled-back publication announces nothing.
            transaction.on_commit(lambda: _announce(version.pk))
    return version


def _announce(version_pk):
    try:
        tasks.announce_version.delay(version_pk)
    except Exception:  # the publication stands; the daily reminders still reach everyone
        logger.exception("Could not queue the announcement of version %s", version_pk)


def save_guideline(*, guideline, by, audience_departments=(), audience_groups=()):
    """Create or change a guideline's settings (title, owner, audience, due period)."""
    creating = guideline.pk is None
    with transaction.atomic():
        guideline.save()
        guideline.audience_departments.set(audience_departments)
        guideline.audience_groups.set(audience_groups)
        record_audit_event(
            action=AuditEvent.Action.GUIDELINE_CREATED if creating else AuditEvent.Action.GUIDELINE_CHANGED,
            actor=by, guideline=guideline, title=guideline.title, everyone=guideline.audience_everyone,
            departments=sorted(d.name for d in guideline.audience_departments.all()),
            groups=sorted(g.name for g in guideline.audience_groups.all()),
            due_days=guideline.due_days, reacknowledge_days=guideline.reacknowledge_days,
        )
    return guideline


def save_draft(*, version, by, texts):
    """Store a draft's language variants: texts = {language: (title, body, change_summary)}.

    Saving changes a draft back from "approved" to "draft": an approval covers the text it saw.
    """
    with transaction.atomic():
        if version.pk:
            version = Version.objects.select_for_update().get(pk=version.pk)
            if not version.is_editable:
                raise ValidationError(_("This version is published and can no longer be changed."))
        else:
            version.created_by = by
        version.status = Version.Status.DRAFT
        version.approved_by = version.approved_at = None
        version.save()
        for language, (title, body, change_summary) in texts.items():
            VersionText.objects.update_or_create(
                version=version, language=language,
                defaults={"title": title, "body": body, "change_summary": change_summary},
            )
    return version


def request_review(*, version, by):
    with transaction.atomic():
        version = Version.objects.select_for_update().get(pk=version.pk)
        if version.status != Version.Status.DRAFT:
            raise ValidationError(_("Only a draft can be sent for approval."))
        _check_texts_complete(version)
        version.review_requested_at, version.review_comment = timezone.now(), ""
        version.save(update_fields=["review_requested_at", "review_comment"])
        record_audit_event(action=AuditEvent.Action.REVIEW_REQUESTED, actor=by, guideline=version.guideline,
                           version=version)
    return version


def send_back(*, version, by, comment):
    """An approver returns a draft to its author with a comment instead of approving it."""
    if not comment.strip():
        raise ValidationError(_("Please say what needs to change."))
    with transaction.atomic():
        version = Version.objects.select_for_update().get(pk=version.pk)
        if not by.has_perm("guidelines.approve"):
            raise PermissionDenied(_("You do not have permission to approve versions."))
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
