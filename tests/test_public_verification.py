"""The public verification page (/verify/): anyone holding one of our PDFs checks it without an
account, and learns genuine / altered / unknown, when it was made and what it covers, and never a
person's name, e-mail address or employee number. Rate limited per address; every check recorded."""

import hashlib
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from guidelines.models import AuditEvent
from guidelines.reports import jobs

from .test_reports import generate, pdf_path, scene  # noqa: F401 - the scene fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rate_limits", "media")]
URL = reverse("guidelines:public_verify")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def stranger():
    return Client(headers={"accept-language": "en"}, REMOTE_ADDR="198.51.100.7")


def personal_data(*people):
    """Every name, e-mail address and employee number of these people (employees or users)."""
    values = []
    for person in people:
        user = getattr(person, "user", person)
        values += [user.email, user.first_name, user.last_name, getattr(person, "employee_number", None)]
    return [value for value in values if value and len(value) > 2]


def shows(page, value):
    """`value` stands in the page as a word of its own: not inside a random token (a CSRF token or a
    hash may hold "Bob" by chance)."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", page) is not None


def assert_no_personal_data(page, *people):
    for value in personal_data(*people):
        assert not shows(page, value), value


@pytest.fixture
def certificate(scene, alice):  # noqa: F811
    return jobs.certificate(acknowledgement=scene["ack"], user=alice.user, language="en")


def test_a_stranger_checks_a_genuine_pack_an_altered_one_and_a_strangers_file(stranger, scene, arjen, alice,  # noqa: F811
                                                                              bob, otto, hilde):
    report = generate(arjen)
    content = pdf_path(report).read_bytes()
    genuine = stranger.post(URL, {"file": SimpleUploadedFile("pack.pdf", content)})
    page = genuine.content.decode()
    assert genuine.status_code == 200 and "Genuine: this is a report we generated" in page
    assert "auditor pack" in page and "Social media guideline" in page and report.sha256 in page
    assert_no_personal_data(page, arjen, alice, bob, otto, hilde)

    middle = len(content) // 2
    altered = content[:middle] + bytes([content[middle] ^ 0x01]) + content[middle + 1:]
    page = stranger.post(URL, {"file": SimpleUploadedFile("pack.pdf", altered)}).content.decode()
    assert "Altered" in page and report.verification_code in page
    assert_no_personal_data(page, arjen, alice, bob, otto, hilde)

    unknown = stranger.post(URL, {"file": SimpleUploadedFile("x.pdf", b"%PDF-1.7\n% not ours\n")})
    assert "Unknown" in unknown.content.decode()
    events = AuditEvent.objects.filter(action=AuditEvent.Action.REPORT_VERIFIED, actor=None)
    assert [event.details["outcome"] for event in events.order_by("pk")] == ["genuine", "altered", "unknown"]
    assert {event.details["ip"] for event in events} == {"198.51.100.7"} and all(e.details["public"] for e in events)


def test_a_certificate_is_checked_by_its_sha256_and_by_its_code_without_whose_it_is(stranger, certificate, alice,
                                                                                     arjen):
    digest = hashlib.sha256(pdf_path(certificate).read_bytes()).hexdigest()
    by_digest = stranger.post(URL, {"sha256": f"  {digest.upper()} "})
    page = by_digest.content.decode()
    assert by_digest.status_code == 200 and "Genuine" in page and "one employee's acknowledgement" in page
    assert_no_personal_data(page, alice, arjen)
    by_code = stranger.get(URL, {"code": certificate.verification_code.lower()})
    page = by_code.content.decode()
    assert by_code.status_code == 200 and digest in page and "acknowledgement certificate" in page
    assert_no_personal_data(page, alice, arjen)
    assert stranger.post(URL, {"sha256": "0" * 64}).content.decode().count("Unknown") == 1
    assert stranger.get(URL, {"code": "ABCD-EFGH-JKMN"}).status_code == 404


def test_the_printed_qr_code_leads_to_the_public_page(certificate):
    assert jobs.verify_url(certificate.verification_code).endswith(f"/verify/?code={certificate.verification_code}")


@pytest.mark.parametrize("data, message", [
    ({}, "Upload a PDF, enter its SHA-256, or enter its verification code."),
    ({"sha256": "xyz"}, "A SHA-256 is 64 characters"),
    ({"sha256": "a" * 63}, "A SHA-256 is 64 characters"),
    ({"code": "x" * 21}, "at most 20 characters"),
])
def test_bad_input_is_a_400_with_the_reason(stranger, data, message):
    response = stranger.post(URL, data)
    assert response.status_code == 400 and message in response.content.decode()


def test_a_non_pdf_is_refused(stranger):
    response = stranger.post(URL, {"file": SimpleUploadedFile("evil.pdf", b"PK\x03\x04 zip")})
    assert response.status_code == 400 and "not a PDF" in response.content.decode()


def test_checks_are_rate_limited_per_address(settings, scene):  # noqa: F811
    settings.PUBLIC_VERIFY_RATE = (3, 3600)
    first = Client(REMOTE_ADDR="198.51.100.7")
    for _attempt in range(3):
        assert first.post(URL, {"sha256": "0" * 64}).status_code == 200
    limited = first.post(URL, {"sha256": "0" * 64})
    assert limited.status_code == 429 and "Retry-After" in limited
    assert Client(REMOTE_ADDR="198.51.100.8").post(URL, {"sha256": "0" * 64}).status_code == 200
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REPORT_VERIFIED).count() == 4
