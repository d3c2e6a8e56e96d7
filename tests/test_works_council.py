"""The works council step (WOR art. 27): a guideline can require the works council's consent before a
version is published. HR records it on a draft (day, reference, note) for exactly the draft's text;
publication refuses a draft without a consent for its text; the consent is audited, shown on the draft,
the history pages, the API and the auditor pack, and frozen with the rest of a published version."""

import re
import subprocess
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import formats, timezone

from guidelines import publishing
from guidelines.models import AuditEvent, Version, VersionText
from guidelines.reports import jobs

from .factories import make_draft, make_user, sign_in
from .views.test_error_pattern import assert_error_pattern

pytestmark = pytest.mark.django_db

REFERENCE = "OR-2026-14"
CONSENT_COLUMNS = {
    "works_council_consented_on": "'2020-01-01'",
    "works_council_reference": "'OR-forged'",
    "works_council_note": "'forged'",
    "works_council_recorded_by_id": "NULL",
    "works_council_recorded_at": "now() - interval '1 year'",
    "works_council_fingerprint": "'forged'",
}


@pytest.fixture
def council(guideline, version_1):
    """The conftest guideline after its version 1.0, with the works council's consent required from then on."""
    guideline.requires_works_council_consent = True
    guideline.save()
    return guideline


@pytest.fixture
def draft(council, hilde, bob):
    """An approved draft of version 2.0 of a guideline that requires consent."""
    version = make_draft(council, author=hilde, bodies={"nl": "# Nieuw\n\nAnders.\n", "en": "# New\n\nOther.\n"})
    return publishing.approve_version(version=version, by=bob.user)


def record(version, by, *, day=None, reference=REFERENCE, note="", **extra):
    return publishing.record_works_council_consent(version=version, by=by, consented_on=day or timezone.localdate(),
                                                   reference=reference, note=note, **extra)


def change_text(version, by, approver, body="# New\n\nChanged after the consent.\n"):
    """Save the draft with another English text (which withdraws the approval) and approve it again."""
    texts = {t.language: (t.title, t.body, t.change_summary) for t in version.texts.all()}
    texts["en"] = (texts["en"][0], body, "")
    publishing.save_draft(version=version, by=by, texts=texts)
    return publishing.approve_version(version=version, by=approver)


# The service -------------------------------------------------------------------------------------------


def test_publication_is_refused_without_the_consent_the_guideline_requires(draft, hilde):
    with pytest.raises(ValidationError, match="requires the works council's consent"):
        publishing.publish_version(version=draft, by=hilde, material=True)
    draft.refresh_from_db()
    assert draft.status == Version.Status.APPROVED
    assert not AuditEvent.objects.filter(action="version_published", version=draft).exists()


def test_a_guideline_that_does_not_require_it_publishes_without_consent(guideline, hilde, bob, version_1):
    assert not guideline.requires_works_council_consent
    version = publishing.approve_version(version=make_draft(guideline, author=hilde), by=bob.user)
    assert publishing.publish_version(version=version, by=hilde, material=True).number == "2.0"


def test_with_the_consent_recorded_the_draft_is_published_and_the_event_names_it(draft, hilde):
    record(draft, hilde, day=timezone.localdate() - timedelta(days=3), note="On condition of an evaluation.")
    published = publishing.publish_version(version=draft, by=hilde, material=True)
    assert (published.number, published.status) == ("2.0", "published")
    event = AuditEvent.objects.get(action="version_published", version=published)
    consent = event.details["works_council"]
    assert consent["reference"] == REFERENCE
    assert consent["consented_on"] == (timezone.localdate() - timedelta(days=3)).isoformat()
    assert consent["fingerprint"] == event.details["fingerprint"] == publishing.fingerprint_of(published)


def test_a_text_changed_after_the_consent_is_refused_until_the_consent_is_recorded_again(draft, hilde, bob):
    record(draft, hilde)
    draft = change_text(draft, hilde, bob.user)  # approved again: only the consent is missing
    assert publishing.consent_of(draft).outdated
    with pytest.raises(ValidationError, match="changed after the works council's consent of .* \\(OR-2026-14\\)"):
        publishing.publish_version(version=draft, by=hilde, material=True)
    assert AuditEvent.objects.filter(action="draft_saved", version=draft).latest("at").details["consent_outdated"]

    record(draft, hilde, reference="OR-2026-15")
    assert publishing.publish_version(version=draft, by=hilde, material=True).status == "published"


def test_a_text_changed_behind_the_pages_back_is_refused_too(draft, hilde):
    """Whatever route changed the text (the admin, a shell, SQL), the fingerprint no longer matches."""
    record(draft, hilde)
    VersionText.objects.filter(version=draft, language="nl").update(title="Een andere titel")
    Version.objects.filter(pk=draft.pk).update(approved_fingerprint=publishing.fingerprint_of(draft))  # four eyes aside
    with pytest.raises(ValidationError, match="they consented to another text"):
        publishing.publish_version(version=draft, by=hilde, material=True)


def test_a_consent_day_in_the_future_is_refused_and_nothing_is_written(draft, hilde):
    tomorrow = timezone.localdate() + timedelta(days=1)
    with pytest.raises(ValidationError) as refused:
        record(draft, hilde, day=tomorrow)
    assert refused.value.message_dict == {"consented_on": ["The day of consent cannot lie in the future."]}
    draft.refresh_from_db()
    assert (draft.works_council_consented_on, draft.works_council_reference) == (None, "")
    assert not AuditEvent.objects.filter(action="works_council_consent_recorded").exists()
    assert record(draft, hilde, day=timezone.localdate()).works_council_consented_on == timezone.localdate()


@pytest.mark.parametrize(("reference", "message"), [
    ("", "Give the works council's reference"),
    ("   ", "Give the works council's reference"),
    ("X" * 51, "at most 50 characters"),
    ("OR-2026\n-14", "cannot contain line breaks"),
    ("OR-2026-\t14", "cannot contain line breaks"),
    ("OR-2026-\u202e41", "invisible characters"),
    ("OR\x00-2026", "invisible characters"),
])
def test_the_reference_is_required_short_and_printable(draft, hilde, reference, message):
    with pytest.raises(ValidationError) as refused:
        record(draft, hilde, reference=reference)
    assert message in refused.value.message_dict["reference"][0]
    draft.refresh_from_db()
    assert not draft.has_works_council_consent


def test_the_reference_is_kept_stripped_up_to_its_limit(draft, hilde):
    assert record(draft, hilde, reference=f"  {'R' * 50}  ").works_council_reference == "R" * 50


@pytest.mark.parametrize("who", ["bob", "alice", "arjen"])
def test_only_hr_records_or_withdraws_a_consent_whatever_calls_the_service(draft, hilde, request, who):
    person = request.getfixturevalue(who)
    user = getattr(person, "user", person)
    with pytest.raises(PermissionDenied):
        record(draft, user)
    record(draft, hilde)
    with pytest.raises(PermissionDenied):
        publishing.withdraw_works_council_consent(version=draft, by=user, reason="Not mine to say.")
    draft.refresh_from_db()
    assert (draft.works_council_recorded_by, draft.works_council_reference) == (hilde, REFERENCE)
    assert AuditEvent.objects.filter(action__startswith="works_council").count() == 1


def test_recording_writes_an_audit_event_and_recording_again_replaces_it(draft, hilde):
    first = record(draft, hilde, day=timezone.localdate() - timedelta(days=10), reference="OR-2026-1")
    event = AuditEvent.objects.get(action="works_council_consent_recorded")
    assert (event.actor, event.guideline, event.version) == (hilde, draft.guideline, draft)
    assert event.details["reference"] == "OR-2026-1" and event.details["replaced"] is None
    assert event.details["fingerprint"] == publishing.fingerprint_of(draft) == first.works_council_fingerprint

    corrected = record(draft, hilde, reference="OR-2026-2", note="Typo in the reference.")
    assert (corrected.works_council_reference, corrected.works_council_note) == ("OR-2026-2", "Typo in the reference.")
    assert corrected.works_council_consented_on == timezone.localdate()
    second = AuditEvent.objects.filter(action="works_council_consent_recorded").latest("pk")
    assert second.details["replaced"]["reference"] == "OR-2026-1"
    # Recording the consent changes no text: the approval stands.
    assert Version.objects.get(pk=draft.pk).status == Version.Status.APPROVED


def test_withdrawing_needs_a_reason_clears_the_consent_and_blocks_publication(draft, hilde):
    record(draft, hilde)
    with pytest.raises(ValidationError, match="reason"):
        publishing.withdraw_works_council_consent(version=draft, by=hilde, reason=" ")
    publishing.withdraw_works_council_consent(version=draft, by=hilde, reason="Recorded on the wrong draft.")
    draft.refresh_from_db()
    assert not draft.has_works_council_consent and draft.works_council_fingerprint == ""
    event = AuditEvent.objects.get(action="works_council_consent_withdrawn")
    assert event.details["withdrawn"]["reference"] == REFERENCE
    assert event.details["reason"] == "Recorded on the wrong draft."
    with pytest.raises(ValidationError, match="requires the works council's consent"):
        publishing.publish_version(version=draft, by=hilde, material=True)
    with pytest.raises(ValidationError, match="No consent"):
        publishing.withdraw_works_council_consent(version=draft, by=hilde, reason="Again.")


def test_a_guideline_that_does_not_require_consent_takes_none(guideline, hilde):
    with pytest.raises(ValidationError, match="does not require"):
        record(make_draft(guideline, author=hilde), hilde)


def test_after_publication_the_consent_is_frozen_for_the_services(draft, hilde):
    record(draft, hilde)
    published = publishing.publish_version(version=draft, by=hilde, material=True)
    with pytest.raises(ValidationError, match="can no longer change"):
        record(published, hilde, reference="OR-2026-99")
    with pytest.raises(ValidationError, match="can no longer change"):
        publishing.withdraw_works_council_consent(version=published, by=hilde, reason="Too late.")
    assert Version.objects.get(pk=published.pk).works_council_reference == REFERENCE


@pytest.mark.parametrize("column", sorted(CONSENT_COLUMNS))
def test_the_database_refuses_to_change_the_consent_of_a_published_version(draft, hilde, column):
    record(draft, hilde)
    published = publishing.publish_version(version=draft, by=hilde, material=True)
    statement = f"UPDATE guidelines_version SET {column} = {CONSENT_COLUMNS[column]} WHERE id = %s"
    with pytest.raises(DatabaseError, match="published and immutable"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(statement, [published.pk])
    assert Version.objects.get(pk=published.pk).works_council_reference == REFERENCE
    # The same statement on a draft is the application's own business (the guard is about published versions).
    other = make_draft(draft.guideline, author=hilde)
    with connection.cursor() as cursor:
        cursor.execute(statement, [other.pk])
        assert cursor.rowcount == 1


# The guideline's setting ------------------------------------------------------------------------------


def test_hr_switches_the_requirement_on_in_the_settings_and_it_is_audited(client_as, hilde, guideline):
    page = client_as(hilde).get(reverse("guidelines:hr_guideline_edit", args=[guideline.slug])).content.decode()
    assert 'name="requires_works_council_consent"' in page and "WOR art. 27" in page
    response = client_as(hilde).post(reverse("guidelines:hr_guideline_edit", args=[guideline.slug]), {
        "title_nl": guideline.title_nl, "title_en": guideline.title_en, "slug": guideline.slug,
        "owner_email": hilde.email, "audience_everyone": "on", "due_days": "30",
        "requires_works_council_consent": "on"})
    assert response.status_code == 302
    guideline.refresh_from_db()
    assert guideline.requires_works_council_consent
    event = AuditEvent.objects.filter(action="guideline_changed").latest("pk")
    assert event.details["works_council_consent"] is True
    page = client_as(hilde).get(reverse("guidelines:hr_guideline", args=[guideline.slug])).content.decode()
    assert "its consent is required before publication" in page


# The pages ---------------------------------------------------------------------------------------------


def consent_form(draft, **fields):
    return {"fingerprint": publishing.fingerprint_of(draft), "consented_on": timezone.localdate().isoformat(),
            "reference": REFERENCE, "note": "", "confirm": "on", **fields}


def test_hr_records_the_consent_through_the_form(client_as, hilde, draft):
    url = reverse("guidelines:hr_draft_consent", args=[draft.pk])
    page = client_as(hilde).get(url).content.decode()
    assert "Record the works council's consent" in page and 'name="reference"' in page and 'type="date"' in page
    response = client_as(hilde).post(url, consent_form(draft, note="On condition of an evaluation."))
    assert response.status_code == 302 and response.url == reverse("guidelines:hr_draft", args=[draft.pk])
    draft.refresh_from_db()
    assert (draft.works_council_reference, draft.works_council_recorded_by) == (REFERENCE, hilde)
    assert draft.works_council_note == "On condition of an evaluation."
    page = client_as(hilde).get(response.url).content.decode()
    assert "is recorded for this draft" in page  # the message
    assert REFERENCE in page and "On condition of an evaluation." in page and "Hilde" in page


def test_a_missing_reference_and_a_future_day_come_back_on_their_fields_and_nothing_is_written(client_as, hilde,
                                                                                              draft):
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    response = client_as(hilde).post(reverse("guidelines:hr_draft_consent", args=[draft.pk]),
                                     consent_form(draft, reference="  ", consented_on=tomorrow))
    assert_error_pattern(response, ["consented_on", "reference"])
    html = response.content.decode()
    assert "The day of consent cannot lie in the future." in html
    assert "Give the works council&#x27;s reference" in html
    assert f'value="{tomorrow}"' in html  # what was typed comes back
    draft.refresh_from_db()
    assert not draft.has_works_council_consent
    assert not AuditEvent.objects.filter(action="works_council_consent_recorded").exists()


def test_a_reference_too_long_or_with_a_line_break_is_refused_on_its_field(client_as, hilde, draft):
    url = reverse("guidelines:hr_draft_consent", args=[draft.pk])
    for reference, message in (("X" * 51, "The reference can be at most 50 characters long."),
                               ("OR-2026\r\n-14", "cannot contain line breaks")):
        response = client_as(hilde).post(url, consent_form(draft, reference=reference))
        assert_error_pattern(response, ["reference"])
        assert message in response.content.decode()
    assert not Version.objects.get(pk=draft.pk).has_works_council_consent


def test_a_draft_changed_while_hr_recorded_the_consent_is_refused_on_the_form(client_as, hilde, draft):
    form = consent_form(draft)
    VersionText.objects.filter(version=draft, language="en").update(body="# Changed meanwhile\n")
    response = client_as(hilde).post(reverse("guidelines:hr_draft_consent", args=[draft.pk]), form)
    assert response.status_code == 400
    assert "changed while you were recording the consent" in response.content.decode()
    draft.refresh_from_db()
    assert not draft.has_works_council_consent


def test_the_draft_page_shows_the_next_real_step(client_as, hilde, bob, draft):
    page_url = reverse("guidelines:hr_draft", args=[draft.pk])
    consent_url = reverse("guidelines:hr_draft_consent", args=[draft.pk])
    publish_url = reverse("guidelines:hr_draft_publish", args=[draft.pk])

    def actions():
        html = client_as(hilde).get(page_url).content.decode()
        return html, re.search(r'<div class="actions">.*?</div>', html, re.S).group(0)

    html, buttons = actions()
    assert f'href="{consent_url}">Record the works council\'s consent…' in buttons
    assert publish_url not in html
    assert "No consent is recorded for this draft yet" in html

    record(draft, hilde)
    html, buttons = actions()
    assert f'href="{publish_url}">Publish…' in buttons and consent_url not in buttons
    assert REFERENCE in html and "Withdraw the consent" in html

    change_text(draft, hilde, bob.user)
    html, buttons = actions()
    assert f'href="{consent_url}">Record the works council\'s consent…' in buttons
    assert publish_url not in html
    assert "The text changed after this consent was recorded" in html


def test_before_the_approval_asking_for_it_stays_the_next_step_and_consent_can_come_first(client_as, hilde,
                                                                                          council, version_1):
    version = make_draft(council, author=hilde)
    html = client_as(hilde).get(reverse("guidelines:hr_draft", args=[version.pk])).content.decode()
    buttons = re.search(r'<div class="actions">.*?</div>', html, re.S).group(0)
    assert "Ask for approval" in buttons
    assert f'href="{reverse("guidelines:hr_draft_consent", args=[version.pk])}"' in html
    assert "before or after the approval" in html


def test_the_publish_page_refuses_without_consent_and_says_what_to_do(client_as, hilde, draft):
    url = reverse("guidelines:hr_draft_publish", args=[draft.pk])
    page = client_as(hilde).get(url).content.decode()
    assert "requires the works council's consent before publication" in page
    assert 'name="confirm"' not in page  # no publish form until the consent is recorded
    response = client_as(hilde).post(url, {"change": "material", "confirm": "on"})
    assert response.status_code == 400
    assert "Record their consent to this draft first." in response.content.decode()
    assert Version.objects.get(pk=draft.pk).status == Version.Status.APPROVED

    record(draft, hilde)
    page = client_as(hilde).get(url).content.decode()
    today = f"{timezone.localdate():%-d %B %Y}"
    assert f"The works council consented to this text on {today} (reference {REFERENCE})" in page
    assert client_as(hilde).post(url, {"change": "material", "confirm": "on"}).status_code == 302
    assert Version.objects.get(pk=draft.pk).status == Version.Status.PUBLISHED


def test_hr_withdraws_a_consent_after_a_confirmation_with_a_reason(client_as, hilde, draft):
    record(draft, hilde)
    url = reverse("guidelines:hr_draft_consent_withdraw", args=[draft.pk])
    page = client_as(hilde).get(url).content.decode()
    assert "Withdraw the works council's consent to this draft?" in page and REFERENCE in page
    assert Version.objects.get(pk=draft.pk).has_works_council_consent  # a GET withdraws nothing
    assert_error_pattern(client_as(hilde).post(url, {"reason": ""}), ["reason"])
    response = client_as(hilde).post(url, {"reason": "The council withdrew it."})
    assert response.status_code == 302
    assert not Version.objects.get(pk=draft.pk).has_works_council_consent
    # Nothing left to withdraw: back to the draft, saying so.
    again = client_as(hilde).get(url)
    assert again.status_code == 302 and again.url == reverse("guidelines:hr_draft", args=[draft.pk])


def test_a_published_versions_consent_pages_send_back_to_the_version(client_as, hilde, draft):
    record(draft, hilde)
    publishing.publish_version(version=draft, by=hilde, material=True)
    for name in ("hr_draft_consent", "hr_draft_consent_withdraw"):
        response = client_as(hilde).post(reverse(f"guidelines:{name}", args=[draft.pk]),
                                         {**consent_form(draft, reference="OR-late"), "reason": "Late."})
        assert response.status_code == 302 and response.url == reverse("guidelines:hr_draft", args=[draft.pk])
    assert Version.objects.get(pk=draft.pk).works_council_reference == REFERENCE


def test_recording_with_a_stale_sign_in_asks_to_confirm_it_first(client, hilde, draft):
    sign_in(client, hilde, minutes_ago=16)
    asked = client.post(reverse("guidelines:hr_draft_consent", args=[draft.pk]), consent_form(draft))
    assert urlsplit(asked.url).path == reverse("account_reauthenticate")
    assert not Version.objects.get(pk=draft.pk).has_works_council_consent


def test_the_history_pages_show_the_consent(client_as, hilde, alice, draft):
    record(draft, hilde, day=timezone.localdate() - timedelta(days=2))
    publishing.publish_version(version=draft, by=hilde, material=True)
    day = formats.date_format(timezone.localdate() - timedelta(days=2), "SHORT_DATE_FORMAT")
    hr_page = client_as(hilde).get(reverse("guidelines:hr_guideline", args=["social-media"])).content.decode()
    table = re.search(r'<table>.*?</table>', hr_page[hr_page.index("released-heading"):], re.S).group(0)
    assert "Works council's consent" in table
    assert f'{day}, <span class="nowrap">{REFERENCE}</span>' in table and "recorded by Hilde" in table
    assert "none recorded" in table  # version 1.0, published before the requirement
    versions = client_as(alice).get(reverse("guidelines:versions", args=["social-media"])).content.decode()
    assert f'{day}<br><span class="meta nowrap">{REFERENCE}</span>' in versions


def test_the_auditor_pack_shows_the_consent_in_the_version_history_and_with_the_text(draft, hilde, arjen, settings,
                                                                                     tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    day = timezone.localdate() - timedelta(days=2)
    record(draft, hilde, day=day, note="On condition of an evaluation after a year.")
    publishing.publish_version(version=draft, by=hilde, material=True)
    report = jobs.generate_now(jobs.start_audit_pack(user=arjen, guideline_slug="social-media", version="all",
                                                     language="en"))
    text = " ".join(subprocess.run(["pdftotext", "-layout", str(jobs.reports_dir() / report.file), "-"],
                                   capture_output=True, text=True, check=True).stdout.split())
    assert "Works council's consent" in text
    short_day = " ".join(formats.date_format(day, "SHORT_DATE_FORMAT").split())  # as pdftotext spaces it
    assert f"consented on {short_day}, reference {REFERENCE}" in text
    assert "none recorded" in text  # version 1.0
    assert f"The works council consented to this text on {day:%-d %B %Y} (reference {REFERENCE})" in text
    assert "its fingerprint is the one recorded with the consent" in text
    assert "Note recorded with the consent: On condition of an evaluation after a year." in text


def test_an_approver_sees_the_consent_but_not_the_buttons(client_as, hilde, bob, council, version_1):
    version = make_draft(council, author=hilde)
    record(version, hilde)
    publishing.request_review(version=version, by=hilde)
    html = client_as(bob).get(reverse("guidelines:hr_draft", args=[version.pk])).content.decode()
    assert REFERENCE in html
    assert reverse("guidelines:hr_draft_consent", args=[version.pk]) not in html
    assert client_as(bob).get(reverse("guidelines:hr_draft_consent", args=[version.pk])).status_code == 403
    assert make_user  # (the cast covers the other roles: tests/test_access_matrix.py)


def test_the_pack_does_not_claim_a_consent_for_a_text_it_was_not_given_for(draft, hilde, bob, arjen, settings,
                                                                          tmp_path):
    """A consent recorded before the requirement was switched off and the text changed: the pack says so."""
    settings.MEDIA_ROOT = tmp_path / "media"
    record(draft, hilde)
    guideline = draft.guideline
    guideline.requires_works_council_consent = False
    guideline.save()
    draft = change_text(draft, hilde, bob.user)
    publishing.publish_version(version=draft, by=hilde, material=True)  # not required any more: no check
    report = jobs.generate_now(jobs.start_audit_pack(user=arjen, guideline_slug="social-media", language="en"))
    text = " ".join(subprocess.run(["pdftotext", "-layout", str(jobs.reports_dir() / report.file), "-"],
                                   capture_output=True, text=True, check=True).stdout.split())
    assert f"(reference {REFERENCE}) to an earlier draft of this text" in text
    assert "The consent was recorded for exactly this text" not in text
