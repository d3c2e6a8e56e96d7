"""Proof of reading: what the reading page reports (capped by the server's clock), a version that
requires reading to the end, the values sealed with the acknowledgement (seal format 3), the draft
setting frozen at publication, and where the evidence shows (receipt, certificate, auditor pack, API)."""

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from guidelines import chain, publishing, services
from guidelines.models import Acknowledgement, ReadingProgress, Version

from .factories import make_draft, tamper
from .test_reports import generate, pdf_path

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(guideline, hilde, bob):
    """Version 1.0, which requires reading to the end."""
    draft = make_draft(guideline, author=hilde)
    draft.require_read_to_end = True
    draft.save()
    publishing.approve_version(version=draft, by=bob.user)
    return publishing.publish_version(version=draft, by=hilde, material=True)


def report(employee, version, *, seconds=10, percent=0):
    return services.record_progress(employee=employee, version=version, seconds=seconds, percent=percent)


def acknowledge(employee, version, meta, *, tracked=True):
    return services.acknowledge(employee=employee, version=version, language="en", meta=meta,
                                reading_tracked=tracked)


# What the page reports ----------------------------------------------------------------------------


def test_the_time_adds_up_but_never_runs_ahead_of_the_clock(alice, strict):
    opened = timezone.now()
    with time_machine.travel(opened, tick=False):
        services.record_reading(employee=alice, version=strict)
    with time_machine.travel(opened + timedelta(seconds=20), tick=False):
        assert report(alice, strict, seconds=15, percent=30).seconds_on_text == 15
    with time_machine.travel(opened + timedelta(seconds=25), tick=False):
        # 120 seconds claimed five seconds after the last report: five (and one of slack) count.
        progress = report(alice, strict, seconds=120, percent=10)
    assert (progress.seconds_on_text, progress.furthest_percent, progress.read_to_end_at) == (21, 30, None)
    with time_machine.travel(opened + timedelta(seconds=40), tick=False):
        progress = report(alice, strict, seconds=5, percent=100)
    assert progress.read_to_end_at == opened + timedelta(seconds=40) and progress.furthest_percent == 100
    with time_machine.travel(opened + timedelta(seconds=90), tick=False):
        progress = report(alice, strict, seconds=5, percent=100)
    assert progress.read_to_end_at == opened + timedelta(seconds=40)  # the first time the end was shown
    assert progress.seconds_on_text == 31


@pytest.mark.parametrize(("seconds", "percent"), [(-1, 0), (121, 0), (0, 101), (0, -5)])
def test_a_report_out_of_range_is_refused_and_writes_nothing(alice, strict, seconds, percent):
    services.record_reading(employee=alice, version=strict)
    with pytest.raises(ValidationError):
        report(alice, strict, seconds=seconds, percent=percent)
    assert not ReadingProgress.objects.exists()


def test_no_report_before_the_text_was_opened_nor_after_the_acknowledgement(alice, strict, web_meta):
    with pytest.raises(ValidationError, match="Open the guideline"):
        report(alice, strict, percent=100)
    services.record_reading(employee=alice, version=strict)
    report(alice, strict, percent=100)
    ack, _created = acknowledge(alice, strict, web_meta)
    progress = report(alice, strict, seconds=100, percent=100)
    assert progress.seconds_on_text == ReadingProgress.objects.get().seconds_on_text
    assert Acknowledgement.objects.get().seconds_on_text == ack.seconds_on_text


# Acknowledging ------------------------------------------------------------------------------------


def test_a_version_that_requires_the_end_refuses_a_tracked_reading_that_did_not_reach_it(alice, strict, web_meta):
    services.record_reading(employee=alice, version=strict)
    report(alice, strict, seconds=5, percent=60)
    with pytest.raises(ValidationError) as refused:
        acknowledge(alice, strict, web_meta)
    assert refused.value.code == "read_to_end" and not Acknowledgement.objects.exists()
    report(alice, strict, seconds=5, percent=100)
    ack, created = acknowledge(alice, strict, web_meta)
    progress = ReadingProgress.objects.get()
    assert created and (ack.read_to_end_at, ack.seconds_on_text) == (progress.read_to_end_at, progress.seconds_on_text)
    assert ack.seal_format == 3 and services.verify_evidence().intact


def test_without_javascript_the_acknowledgement_stands_on_the_opening_and_says_so(alice, strict, web_meta, client_as):
    services.record_reading(employee=alice, version=strict)
    ack, created = acknowledge(alice, strict, web_meta, tracked=False)
    assert created and ack.first_opened_at and (ack.read_to_end_at, ack.seconds_on_text) == (None, None)
    receipt = client_as(alice).get(reverse("guidelines:receipt", args=[ack.pk])).content.decode()
    assert "not recorded: the page reported no reading" in receipt


def test_a_version_without_the_requirement_records_what_was_reported(alice, version_1, web_meta):
    services.record_reading(employee=alice, version=version_1)
    report(alice, version_1, seconds=0, percent=40)
    ack, _created = acknowledge(alice, version_1, web_meta)
    assert ack.read_to_end_at is None and ack.seconds_on_text is not None


@pytest.mark.parametrize(("column", "value"), [("read_to_end_at", None), ("seconds_on_text", 9999),
                                               ("answers", '{"q1":"b"}')])
def test_the_proof_of_reading_is_sealed(alice, strict, web_meta, column, value):
    services.record_reading(employee=alice, version=strict)
    report(alice, strict, seconds=3, percent=100)
    acknowledge(alice, strict, web_meta)
    assert services.verify_evidence().intact
    tamper(f"UPDATE guidelines_acknowledgement SET {column} = %s WHERE sequence = 1", [value])
    result = services.verify_evidence()
    assert (result.intact, result.first_break_sequence) == (False, 1)


# Through the pages --------------------------------------------------------------------------------


def test_the_page_reports_and_the_form_is_held_to_the_end(alice, strict, client_as):
    client = client_as(alice)
    page = client.get(reverse("guidelines:detail", args=["social-media"])).content.decode()
    assert "data-require-end" in page and "data-read-to-end" not in page and 'name="reading"' in page
    url = reverse("guidelines:reading_progress", args=["social-media"])
    assert client.post(url, {"version": strict.pk, "seconds": 0, "percent": 50}).status_code == 204
    response = client.post(reverse("guidelines:acknowledge", args=["social-media"]), {
        "version": strict.pk, "language": "en", "confirm": "on", "reading": "tracked"})
    assert response.status_code == 400 and not Acknowledgement.objects.exists()
    content = response.content.decode()
    assert 'id="id_confirm_error"' in content and "Read the text to its end first" in content
    assert client.post(url, {"version": strict.pk, "seconds": 0, "percent": 100}).status_code == 204
    assert "data-read-to-end" in client.get(reverse("guidelines:detail", args=["social-media"])).content.decode()
    response = client.post(reverse("guidelines:acknowledge", args=["social-media"]), {
        "version": strict.pk, "language": "en", "confirm": "on", "reading": "tracked"})
    assert response.status_code == 302
    receipt = client.get(response["Location"]).content.decode()
    assert "Read to the end" in receipt and "Time on the text" in receipt


@pytest.mark.parametrize("fields", [{}, {"seconds": "x", "percent": 0}, {"seconds": 5, "percent": 101},
                                    {"seconds": 500, "percent": 5}, {"seconds": 5, "percent": 5, "version": 0}])
def test_a_bad_report_is_a_plain_400(alice, strict, client_as, fields):
    services.record_reading(employee=alice, version=strict)
    response = client_as(alice).post(reverse("guidelines:reading_progress", args=["social-media"]),
                                     {"version": strict.pk, **fields})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
    assert not ReadingProgress.objects.exists()


def test_a_report_needs_the_csrf_token_and_an_employee(alice, strict, client_as):
    url = reverse("guidelines:reading_progress", args=["social-media"])
    strict_client = Client(enforce_csrf_checks=True)
    strict_client.force_login(alice.user)
    assert strict_client.post(url, {"version": strict.pk, "seconds": 5, "percent": 100}).status_code == 403
    assert Client().post(url, {"version": strict.pk, "seconds": 5, "percent": 100}).status_code in (302, 403)
    assert client_as(alice).get(url).status_code == 405
    assert not ReadingProgress.objects.exists()


def test_a_version_of_another_guideline_is_refused(alice, strict, client_as, hilde):
    from .factories import make_guideline

    make_guideline(hilde, slug="other")
    response = client_as(alice).post(reverse("guidelines:reading_progress", args=["other"]),
                                     {"version": strict.pk, "seconds": 1, "percent": 1})
    assert response.status_code == 400


# The draft setting --------------------------------------------------------------------------------


def test_hr_sets_the_requirement_on_a_draft_and_it_revokes_an_approval(guideline, hilde, bob, client_as):
    from .views.test_hr_views import _draft_form

    draft = make_draft(guideline, author=hilde)
    publishing.approve_version(version=draft, by=bob.user)
    response = client_as(hilde).post(reverse("guidelines:hr_draft_edit", args=[draft.pk]),
                                     _draft_form(require_read_to_end="on", leading_language="en"))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.require_read_to_end and draft.leading_language == "en"
    assert draft.status == Version.Status.DRAFT  # the approver approved another requirement
    before = publishing.fingerprint_of(draft)
    draft.require_read_to_end = False
    assert publishing.fingerprint_of(draft) != before


def test_a_published_version_keeps_its_requirement(strict):
    with pytest.raises(IntegrityError), transaction.atomic():
        Version.objects.filter(pk=strict.pk).update(require_read_to_end=False)


def test_drafts_without_the_requirement_keep_the_fingerprint_they_were_approved_with(version_1):
    texts = list(version_1.texts.all())
    assert chain.draft_fingerprint(leading_language=version_1.leading_language,
                                   effective_date=version_1.effective_date, texts=texts) == \
        publishing.fingerprint_of(version_1, texts)


# The auditor pack and the API ---------------------------------------------------------------------


def test_the_pack_shows_how_each_reading_is_proven(alice, otto, bob, strict, web_meta, arjen, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    services.record_reading(employee=alice, version=strict)
    report(alice, strict, seconds=3, percent=100)
    alice_ack, _created = acknowledge(alice, strict, web_meta)
    services.record_reading(employee=otto, version=strict)
    acknowledge(otto, strict, web_meta, tracked=False)

    pack = generate(arjen)
    reader = PdfReader(pdf_path(pack))
    text = "\n".join(page.extract_text() for page in reader.pages)
    table = [line for line in text.splitlines() if alice_ack.content_hash in line or " opened " in line]
    assert any("E0001" in line and " end " in line for line in table), table
    assert any("E0099" in line and " opened " in line for line in table), table
    assert "The text was on screen to its end" in text and "Opened only" in text
    rows = {row["employee_number"]: row for row in csv.DictReader(io.StringIO(
        reader.attachments["acknowledgements.csv"][0].decode()))}
    assert rows["E0001"]["read_to_end_at_utc"] == alice_ack.read_to_end_at.astimezone(timezone.UTC).isoformat()
    assert rows["E0001"]["seconds_on_text"] == str(alice_ack.seconds_on_text)
    assert (rows["E0099"]["read_to_end_at_utc"], rows["E0099"]["seconds_on_text"]) == ("", "")
    assert rows["E0099"]["first_opened_at_utc"] and rows["E0002"]["first_opened_at_utc"] == ""
    assert '"readings"' in reader.attachments["manifest.json"][0].decode()


def test_the_api_gives_the_sealed_reading_values(alice, strict, web_meta, grc_client):
    services.record_reading(employee=alice, version=strict)
    report(alice, strict, seconds=3, percent=100)
    ack, _created = acknowledge(alice, strict, web_meta)
    [record] = grc_client.get(reverse("api:acknowledgements")).json()["results"]
    assert record["seconds_on_text"] == ack.seconds_on_text and record["answers"] == ""
    assert record["read_to_end_at"].startswith(ack.read_to_end_at.astimezone(timezone.UTC).strftime("%Y-%m-%dT%H:%M"))


@pytest.fixture
def grc_client(db):
    from guidelines import api_tokens

    from .api.conftest import EVERY_SCOPE, service_account
    from .factories import make_user

    root = make_user("root-reading@example.com", is_superuser=True, is_staff=True)
    account = service_account("grc-reading@example.com", "Auditors")
    token = api_tokens.issue(by=root, name="GRC", account=account, scopes=EVERY_SCOPE,
                             expires_at=timezone.now() + timedelta(days=1))[1]
    return Client(headers={"authorization": f"Bearer {token}", "accept-language": "en"})
