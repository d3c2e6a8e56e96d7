import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from guidelines import chain, publishing
from guidelines.models import AuditEvent, Version

from .factories import make_draft, make_user, publish


def test_first_publication_is_version_1_0(version_1):
    assert (version_1.number, version_1.status) == ("1.0", "published")
    assert version_1.approved_by is not None


def test_material_change_starts_a_new_major_and_supersedes_the_old(guideline, version_1, hilde, bob):
    version_2 = publish(guideline, author=hilde, approver=bob.user, material=True)
    version_1.refresh_from_db()
    assert version_2.number == "2.0"
    assert version_1.status == Version.Status.SUPERSEDED
    assert list(guideline.versions.published()) == [version_2]


def test_editorial_change_is_a_new_minor(guideline, version_1, hilde, bob):
    version_1_1 = publish(guideline, author=hilde, approver=bob.user, material=False)
    assert version_1_1.number == "1.1"
    assert not version_1_1.is_material


def test_publication_freezes_html_and_hashes(version_1):
    text = version_1.texts.get(language="en")
    assert text.content_hash == chain.content_hash(text.body)
    assert "<h2>Principles</h2>" in text.body_html


def test_sanitising_removes_scripts_and_remote_images(guideline, hilde, bob):
    bodies = {
        "nl": "Tekst <script>alert(1)</script> ![x](https://evil.example/x.png)",
        "en": "Text [link](javascript:alert(1)) <img src=https://evil.example/y.png onerror=alert(2)>",
    }
    version = publish(guideline, author=hilde, approver=bob.user, bodies=bodies)
    html = "".join(text.body_html for text in version.texts.all())
    assert "<script" not in html and "javascript:" not in html and "<img" not in html and "onerror" not in html


def test_publishing_records_an_audit_event(version_1, hilde):
    event = AuditEvent.objects.get(action="version_published")
    assert (event.actor, event.version, event.details["number"]) == (hilde, version_1, "1.0")
    assert set(event.details["hashes"]) == {"nl", "en"}


def test_four_eyes_publishing_needs_approval(guideline, hilde, settings):
    settings.GUIDELINES_FOUR_EYES = True
    draft = make_draft(guideline, author=hilde)
    with pytest.raises(ValidationError, match="approved by a second person"):
        publishing.publish_version(version=draft, by=hilde, material=True)
    draft.refresh_from_db()
    assert draft.status == Version.Status.DRAFT


def test_without_four_eyes_a_draft_can_be_published_directly(guideline, hilde, settings):
    settings.GUIDELINES_FOUR_EYES = False
    draft = make_draft(guideline, author=hilde)
    assert publishing.publish_version(version=draft, by=hilde, material=True).number == "1.0"


def test_author_cannot_approve_own_draft(guideline, bob):
    draft = make_draft(guideline, author=bob.user)
    with pytest.raises(ValidationError, match="author"):
        publishing.approve_version(version=draft, by=bob.user)


def test_approving_needs_the_approve_permission(guideline, hilde, db):
    someone = make_user("someone@example.com")
    with pytest.raises(PermissionDenied):
        publishing.approve_version(version=make_draft(guideline, author=hilde), by=someone)


def test_empty_text_in_a_required_language_is_refused(guideline, hilde, bob, settings):
    settings.GUIDELINES_FOUR_EYES = False
    draft = make_draft(guideline, author=hilde, bodies={"nl": "  \n", "en": "Text"})
    with pytest.raises(ValidationError, match="nl"):
        publishing.publish_version(version=draft, by=hilde, material=True)
    assert not Version.objects.published().exists()


def test_effective_date_in_the_past_is_refused(guideline, hilde, settings):
    settings.GUIDELINES_FOUR_EYES = False
    draft = make_draft(guideline, author=hilde)
    draft.effective_date = timezone.localdate() - timezone.timedelta(days=1)
    draft.save()
    with pytest.raises(ValidationError, match="past"):
        publishing.publish_version(version=draft, by=hilde, material=True)


def test_a_published_version_cannot_be_published_again(version_1, hilde):
    with pytest.raises(ValidationError, match="already"):
        publishing.publish_version(version=version_1, by=hilde, material=True)
