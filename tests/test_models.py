import pytest
from django.db import DatabaseError, connection, transaction

from guidelines import services
from guidelines.models import Acknowledgement, Reading, Version, VersionText

from .factories import make_draft


def _refused(sql, params=()):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_published_text_cannot_be_changed_even_with_raw_sql(version_1):
    text = version_1.texts.get(language="en")
    _refused("UPDATE guidelines_versiontext SET body = 'rewritten' WHERE id = %s", [text.pk])
    _refused("DELETE FROM guidelines_versiontext WHERE id = %s", [text.pk])
    text.refresh_from_db()
    assert "Be respectful." in text.body


def test_published_text_cannot_be_changed_through_the_orm(version_1):
    text = version_1.texts.get(language="nl")
    text.body = "Iets anders"
    with pytest.raises(DatabaseError), transaction.atomic():
        text.save()


def test_no_language_variant_can_be_added_to_a_published_version(version_1):
    with pytest.raises(DatabaseError), transaction.atomic():
        VersionText.objects.create(version=version_1, language="de", title="Richtlinie", body="Text")


def test_published_version_number_and_approval_cannot_be_changed(version_1):
    _refused("UPDATE guidelines_version SET major = 7 WHERE id = %s", [version_1.pk])
    _refused("UPDATE guidelines_version SET approved_by_id = NULL WHERE id = %s", [version_1.pk])
    _refused("UPDATE guidelines_version SET status = 'draft' WHERE id = %s", [version_1.pk])
    _refused("DELETE FROM guidelines_version WHERE id = %s", [version_1.pk])
    version_1.refresh_from_db()
    assert (version_1.number, version_1.status) == ("1.0", "published")


def test_draft_stays_editable(guideline, hilde):
    draft = make_draft(guideline, author=hilde)
    text = draft.texts.get(language="en")
    text.body = "Changed while still a draft."
    text.save()
    assert draft.is_editable
    assert VersionText.objects.get(pk=text.pk).body == "Changed while still a draft."


def test_acknowledgement_cannot_be_updated_or_deleted(alice, version_1, web_meta):
    ack, _ = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    with pytest.raises(TypeError):
        ack.save()
    with pytest.raises(TypeError):
        ack.delete()
    with pytest.raises(TypeError):
        Acknowledgement.objects.filter(pk=ack.pk).update(channel="email")
    with pytest.raises(TypeError):
        Acknowledgement.objects.filter(pk=ack.pk).delete()
    _refused("UPDATE guidelines_acknowledgement SET channel = 'email' WHERE id = %s", [ack.pk])
    _refused("DELETE FROM guidelines_acknowledgement WHERE id = %s", [ack.pk])
    assert Acknowledgement.objects.get(pk=ack.pk).channel == "web"


def test_readings_and_audit_events_are_append_only(alice, version_1):
    services.record_reading(employee=alice, version=version_1)
    reading = Reading.objects.get(employee=alice)
    _refused("UPDATE guidelines_reading SET first_opened_at = now() WHERE id = %s", [reading.pk])
    _refused("DELETE FROM guidelines_auditevent")


def test_only_one_version_of_a_guideline_can_be_published(version_1):
    with pytest.raises(DatabaseError), transaction.atomic():
        Version.objects.create(guideline=version_1.guideline, status="published", major=9, minor=0)


def test_evidence_is_protected_from_cascading_deletes(alice, version_1, web_meta):
    from django.db.models import ProtectedError

    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    with pytest.raises(ProtectedError):
        alice.user.delete()
    with pytest.raises(ProtectedError):
        version_1.guideline.delete()
