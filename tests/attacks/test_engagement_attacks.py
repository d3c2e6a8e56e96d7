"""Attacks on issue 15's surfaces as a hostile insider: an employee (who writes questions, follow-ups,
objection reasons, comprehension answers and reading reports, and controls their own name and
department in the HR system), a manager, an auditor, the owner of a guideline and HR.

- Permissions, asked of the pages and of the services: whose threads and objections may be read,
  answered and handled; which versions may be objected to; the message limit; forged comprehension
  answers; forged reading reports and a forged "no JavaScript" acknowledgement; the questions and the
  works council's consent of a published or consented draft.
- Bad input in every free text: control and bidirectional characters, invisible-only texts, 100 KB,
  bytes that are no UTF-8, lone surrogates from the provisioning service: a 4xx that says why and
  nothing written, never a 500.
- Where the texts and names go: pages, e-mails (subject and both parts), the auditor pack (WeasyPrint
  loads nothing, text stays text, a cell stays one line) and its CSV files (formulas defused).
"""

import csv
import io
import json
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from guidelines import comprehension, publishing, questions, services
from guidelines.models import (
    Acknowledgement,
    AuditEvent,
    Department,
    Employee,
    Exemption,
    Guideline,
    Objection,
    ObjectionResolution,
    Question,
    QuestionMessage,
    QuizAttempt,
    QuizQuestion,
    ReadingProgress,
    Version,
    VersionText,
)
from guidelines.reports import jobs

from .. import test_questions, test_reading_proof, test_works_council
from ..factories import BODY, make_draft, make_employee, make_guideline, publish
from ..scim.conftest import SCIM_JSON, scim_client
from ..test_comprehension import question as quiz_question
from ..test_works_council import record
from . import test_pdf_injection
from .test_pdf_injection import printed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rate_limits")]

# The fixtures of the modules that test these features: Olga owns the guideline, the e-mail worker, a version
# that requires reading to the end, an approved draft of a guideline that requires the works council's
# consent, and a canary HTTP server that records every request made to it.
olga, owned, worker = test_questions.olga, test_questions.owned, test_questions.worker
strict = test_reading_proof.strict
council, draft = test_works_council.council, test_works_council.draft
canary = test_pdf_injection.canary


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def checked(guideline, hilde, bob):
    """Version 1.0 of the conftest guideline with two comprehension questions; the right answers are 1 and 2."""
    version = make_draft(guideline, author=hilde)
    comprehension.set_questions(version=version, by=hilde, questions=[quiz_question(1, 1), quiz_question(2, 2)])
    publishing.approve_version(version=version, by=bob.user)
    return publishing.publish_version(version=version, by=hilde, material=True)


def ask(employee, version, text="May I post photos of the office party?"):
    return questions.ask(employee=employee, version=version, language="en", text=text)


def object_to(employee, version, meta, *, kind=Objection.Kind.OBJECTION, reason="It goes too far."):
    return questions.record_objection(employee=employee, version=version, language="en", kind=kind, reason=reason,
                                      meta=meta)


def written():
    """Everything a question, an objection or its handling writes, counted."""
    return (Question.objects.count(), QuestionMessage.objects.count(), Objection.objects.count(),
            ObjectionResolution.objects.count(), Exemption.objects.count(), len(mail.outbox))


def pack_of(user, slug="social-media"):
    report = jobs.generate_now(jobs.start_audit_pack(user=user, guideline_slug=slug, language="en"))
    assert report.status == "done", report.status
    return jobs.reports_dir() / report.file


def attachment(path, name):
    return list(csv.DictReader(io.StringIO(PdfReader(path).attachments[name][0].decode())))


def layout_lines(path):
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout.splitlines()


# Who may read, answer and handle ----------------------------------------------------------------------------


def test_a_manager_and_an_auditor_can_neither_read_nor_answer_a_question(client_as, alice, bob, arjen, olga,
                                                                         owned):
    question = ask(alice, owned)
    url = reverse("guidelines:question", args=[question.pk])
    for person in (bob, arjen):  # her manager; an auditor reads objections (evidence), never questions
        client = client_as(person)
        assert client.get(url).status_code == 404
        assert client.post(url, {"text": "Answered by the wrong person."}).status_code == 404
        with pytest.raises(PermissionDenied):
            questions.answer(question=question, by=getattr(person, "user", person), text="Still the wrong person.")
    assert question.messages.count() == 1


def test_nobody_but_hr_handles_an_objection_and_nobody_their_own(client_as, alice, olga, arjen, hilde, owned,
                                                                  web_meta):
    objection = object_to(alice, owned, web_meta, kind=Objection.Kind.EXCEPTION, reason="On leave.")
    url = reverse("guidelines:objection", args=[objection.pk])
    forged = {"outcome": "exempted", "note": "Granted by myself.", "ends_on": ""}
    for person in (alice, olga, arjen):  # the employee herself, the owner, an auditor: they read it
        client = client_as(person)
        assert client.get(url).status_code == 200
        assert client.post(url, forged).status_code == 403
    # HR who is an employee too, handling their own exception request: through the page and the service.
    hanna = make_employee("hanna@example.com", "E0010", groups=["HR"])
    own = object_to(hanna, owned, web_meta, kind=Objection.Kind.EXCEPTION, reason="I write these rules myself.")
    assert client_as(hanna).post(reverse("guidelines:objection", args=[own.pk]), forged).status_code == 403
    with pytest.raises(PermissionDenied):
        questions.resolve(objection=own, by=hanna.user, outcome="exempted", note="Granted by myself.")
    assert not ObjectionResolution.objects.exists() and not Exemption.objects.exists()
    assert status_of(alice, owned) == "pending" and status_of(hanna, owned) == "pending"


def status_of(employee, version):
    from guidelines import status

    return status.standings(employee, [version])[version.pk].status


def test_objecting_outside_the_audience_or_to_a_draft_superseded_or_retired_version_is_refused(
        client_as, alice, otto, hilde, bob, guideline, version_1, web_meta):
    guideline.audience_everyone = False
    guideline.save()
    guideline.audience_departments.add(alice.department)
    url = reverse("guidelines:object", args=["social-media"])

    def post(employee, version):
        return client_as(employee).post(url, {"version": version.pk, "language": "en", "kind": "objection",
                                              "reason": "I do not agree."})

    before = written()
    assert post(otto, version_1).status_code == 403  # Finance: the guideline does not apply to him
    assert client_as(otto).post(reverse("guidelines:ask", args=["social-media"]),
                                {"version": version_1.pk, "language": "en", "text": "Me?"}).status_code == 403
    draft = make_draft(guideline, author=hilde)
    response = post(alice, draft)
    assert response.status_code == 400 and "does not belong to this guideline" in response.content.decode()
    version_2 = publish(guideline, author=hilde, approver=bob.user)
    response = post(alice, version_1)
    assert response.status_code == 400 and "not the current version" in response.content.decode()
    publishing.retire_guideline(guideline=guideline, by=hilde, reason="Replaced.")
    response = post(alice, version_2)
    assert response.status_code == 400 and "not the current version" in response.content.decode()
    assert written() == before


def test_the_limit_counts_questions_follow_ups_and_objections_together_through_the_pages(
        client_as, alice, olga, owned, settings):
    settings.QUESTION_RATE = (2, 3600)
    client = client_as(alice)
    response = client.post(reverse("guidelines:ask", args=["social-media"]),
                           {"version": owned.pk, "language": "en", "text": "First."})
    assert response.status_code == 302
    assert client.post(response["Location"], {"text": "Second, a follow-up."}).status_code == 302
    response = client.post(reverse("guidelines:object", args=["social-media"]),
                           {"version": owned.pk, "language": "en", "kind": "objection", "reason": "Third."})
    assert response.status_code == 429 and int(response["Retry-After"]) > 3500
    assert "Third." in response.content.decode()  # the text comes back to be sent later
    assert not Objection.objects.exists() and QuestionMessage.objects.count() == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_messages_sent_at_the_same_moment_do_not_pass_the_limit(alice, guideline, hilde, bob, settings):
    """Eight questions at once from one employee, each on its own connection: the row lock on the employee
    lets exactly QUESTION_RATE of them through."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection

    settings.QUESTION_RATE = (3, 3600)
    version = publish(guideline, author=hilde, approver=bob.user)
    start = Barrier(8)

    def send(n):
        try:
            start.wait()
            ask(Employee.objects.get(pk=alice.pk), Version.objects.select_related("guideline").get(pk=version.pk),
                f"Question {n}?")
            return "sent"
        except questions.TooManyMessages:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(send, range(8)))
    assert outcomes == ["refused"] * 5 + ["sent"] * 3
    assert Question.objects.count() == QuestionMessage.objects.count() == 3


# Forged comprehension answers -------------------------------------------------------------------------------


def acknowledge_url(version):
    return reverse("guidelines:acknowledge", args=[version.guideline.slug])


@pytest.mark.parametrize("forged", ["7", "-1", "1.0", "01", " 1", "１", "1e0", "\x00"])
def test_a_choice_that_is_not_one_of_the_questions_answers_is_refused(client_as, alice, checked, forged):
    q1, q2 = comprehension.questions_of(checked)
    response = client_as(alice).post(acknowledge_url(checked), {
        "version": checked.pk, "language": "en", "confirm": "on", f"q{q1.pk}": forged, f"q{q2.pk}": "2"})
    assert response.status_code == 400 and "Question 1: choose an answer." in response.content.decode()
    assert not QuizAttempt.objects.exists() and not Acknowledgement.objects.exists()


def test_answers_to_another_versions_questions_are_not_recorded(client_as, alice, hilde, bob, checked):
    other = make_draft(make_guideline(hilde, slug="other"), author=hilde)
    comprehension.set_questions(version=other, by=hilde, questions=[quiz_question(9, 0)])
    other = publishing.publish_version(version=publishing.approve_version(version=other, by=bob.user), by=hilde,
                                       material=True)
    [foreign] = comprehension.questions_of(other)
    q1, q2 = comprehension.questions_of(checked)
    response = client_as(alice).post(acknowledge_url(checked), {
        "version": checked.pk, "language": "en", "confirm": "on", f"q{q1.pk}": "1", f"q{q2.pk}": "2",
        f"q{foreign.pk}": "0"})
    assert response.status_code == 302
    assert not QuizAttempt.objects.filter(question=foreign).exists()
    assert Acknowledgement.objects.get().version == checked
    with pytest.raises(ValidationError):  # and not through the service either, whatever calls it
        comprehension.check_answers(employee=alice, version=other, answers={q1.pk: 1, q2.pk: 2},
                                    questions=[q1, q2])
    assert not QuizAttempt.objects.filter(question__version=other).exists()


@pytest.mark.parametrize("choice", [3, 7, -1, True, "1", 1.0, None])
def test_the_service_records_only_a_choice_the_question_has(alice, checked, choice):
    q1, q2 = comprehension.questions_of(checked)
    with pytest.raises(ValidationError) as refused:
        comprehension.check_answers(employee=alice, version=checked, answers={q1.pk: choice, q2.pk: 2})
    assert refused.value.messages == ["Question 1: choose an answer."]
    assert not QuizAttempt.objects.exists()


def test_acknowledging_without_the_right_final_answers_is_refused(client_as, alice, checked, web_meta):
    client = client_as(alice)
    response = client.post(acknowledge_url(checked), {"version": checked.pk, "language": "en", "confirm": "on"})
    assert response.status_code == 400 and "Question 1: choose an answer." in response.content.decode()
    q1, q2 = comprehension.questions_of(checked)
    comprehension.check_answers(employee=alice, version=checked, answers={q1.pk: 1, q2.pk: 2})  # right…
    comprehension.check_answers(employee=alice, version=checked, answers={q1.pk: 1, q2.pk: 0})  # …then wrong
    with pytest.raises(ValidationError) as refused:
        services.acknowledge(employee=alice, version=checked, language="en", meta=web_meta)
    assert refused.value.code == "comprehension" and not Acknowledgement.objects.exists()


def test_the_page_does_not_give_the_right_answer_away(client_as, alice, hilde, bob, checked):
    """The same questions with other right answers render the same form."""
    other = make_draft(make_guideline(hilde, slug="other"), author=hilde)
    comprehension.set_questions(version=other, by=hilde, questions=[quiz_question(1, 0), quiz_question(2, 0)])
    publishing.publish_version(version=publishing.approve_version(version=other, by=bob.user), by=hilde,
                               material=True)
    client = client_as(alice)

    def quiz(slug):
        html = client.get(reverse("guidelines:detail", args=[slug])).content.decode()
        fieldsets = re.findall(r'<fieldset class="quiz-question.*?</fieldset>', html, re.S)
        assert len(fieldsets) == 2 and "correct" not in html.lower()
        return re.sub(r"q\d+", "q#", "".join(fieldsets))

    assert quiz("social-media") == quiz("other")


# Forged reading reports -------------------------------------------------------------------------------------


def test_a_form_claiming_no_javascript_does_not_skip_the_end_the_page_did_not_reach(client_as, alice, strict):
    client = client_as(alice)
    assert client.get(reverse("guidelines:detail", args=["social-media"])).status_code == 200
    progress_url = reverse("guidelines:reading_progress", args=["social-media"])
    assert client.post(progress_url, {"version": strict.pk, "seconds": 5, "percent": 40}).status_code == 204
    # reading.js ran and reported 40 %; the form is posted without its "reading=tracked".
    response = client.post(acknowledge_url(strict), {"version": strict.pk, "language": "en", "confirm": "on"})
    assert response.status_code == 400 and "Read the text to its end first" in response.content.decode()
    assert not Acknowledgement.objects.exists()
    assert client.post(progress_url, {"version": strict.pk, "seconds": 5, "percent": 100}).status_code == 204
    response = client.post(acknowledge_url(strict), {"version": strict.pk, "language": "en", "confirm": "on"})
    assert response.status_code == 302
    ack = Acknowledgement.objects.get()
    assert ack.read_to_end_at == ReadingProgress.objects.get().read_to_end_at is not None


def test_rapid_reports_cannot_add_more_time_than_has_passed_since_the_opening(client_as, alice, strict):
    client = client_as(alice)
    opened = timezone.now()
    with time_machine.travel(opened, tick=False):
        services.record_reading(employee=alice, version=strict)
    url = reverse("guidelines:reading_progress", args=["social-media"])
    with time_machine.travel(opened + timedelta(seconds=5), tick=False):
        for _ in range(40):
            assert client.post(url, {"version": strict.pk, "seconds": 120, "percent": 10}).status_code == 204
    assert ReadingProgress.objects.get().seconds_on_text <= 6  # five seconds, and one of slack


@pytest.mark.parametrize("fields", [
    {"seconds": 2**70, "percent": 10}, {"seconds": "-0.5", "percent": 10}, {"seconds": "NaN", "percent": 10},
    {"seconds": "1e3", "percent": 10}, {"seconds": 5, "percent": "100.5"}, {"seconds": 5, "percent": 2**63},
    {"seconds": 5, "percent": 10, "version": 2**70}, {"seconds": 5, "percent": 10, "version": -1},
    {"seconds": "5\x00", "percent": 10},
])
def test_absurd_reading_reports_are_a_plain_400(client_as, alice, strict, fields):
    services.record_reading(employee=alice, version=strict)
    response = client_as(alice).post(reverse("guidelines:reading_progress", args=["social-media"]),
                                     {"version": strict.pk, **fields})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
    assert not ReadingProgress.objects.exists()


def test_a_report_for_a_version_never_opened_is_refused(client_as, alice, bob, strict):
    services.record_reading(employee=bob, version=strict)  # someone else opened it
    response = client_as(alice).post(reverse("guidelines:reading_progress", args=["social-media"]),
                                     {"version": strict.pk, "seconds": 5, "percent": 100})
    assert response.status_code == 400 and "Open the guideline" in response.content.decode()
    assert not ReadingProgress.objects.exists()


def test_another_employees_reading_and_receipt_stay_theirs(client_as, alice, bob, strict, web_meta):
    services.record_reading(employee=alice, version=strict)
    services.record_progress(employee=alice, version=strict, seconds=3, percent=100)
    ack, _created = services.acknowledge(employee=alice, version=strict, language="en", meta=web_meta,
                                         reading_tracked=True)
    client = client_as(bob)
    page = client.get(reverse("guidelines:detail", args=["social-media"])).content.decode()
    assert "data-require-end" in page and "data-read-to-end" not in page  # Bob's own state: not read
    assert client.get(reverse("guidelines:receipt", args=[ack.pk])).status_code == 404
    assert client.get(reverse("guidelines:report_certificate", args=[ack.pk])).status_code == 403
    assert not ReadingProgress.objects.filter(employee=bob).exists()


# HR's questions and the works council's consent ------------------------------------------------------------


def test_hr_cannot_change_the_questions_of_a_published_version(client_as, hilde, checked):
    before = list(QuizQuestion.objects.filter(version=checked).values_list("pk", "correct", "text_en"))
    response = client_as(hilde).post(reverse("guidelines:hr_draft_questions", args=[checked.pk]), {
        "q1_text_nl": "Nieuw?", "q1_text_en": "New?", "q1_choice1_nl": "Ja", "q1_choice1_en": "Yes",
        "q1_choice2_nl": "Nee", "q1_choice2_en": "No", "q1_correct": "1", "q1_hint_nl": "Zie 1.",
        "q1_hint_en": "See 1."})
    assert response.status_code == 302 and response["Location"] == reverse("guidelines:hr_draft", args=[checked.pk])
    with pytest.raises(ValidationError, match="published"):
        comprehension.set_questions(version=checked, by=hilde, questions=[quiz_question(1, 0)])
    assert list(QuizQuestion.objects.filter(version=checked).values_list("pk", "correct", "text_en")) == before


def test_questions_changed_after_the_consent_void_it_and_the_audit_trail_says_so(draft, hilde, bob):
    record(draft, hilde)
    consented = publishing.fingerprint_of(draft)
    comprehension.set_questions(version=draft, by=hilde, questions=[quiz_question(1, 1)])
    event = AuditEvent.objects.filter(action=AuditEvent.Action.DRAFT_SAVED, version=draft).latest("at", "pk")
    assert event.details["consent_outdated"] is True
    assert event.details["fingerprint"] == publishing.fingerprint_of(draft) != consented
    draft = publishing.approve_version(version=draft, by=bob.user)
    with pytest.raises(ValidationError, match="they consented to another text"):
        publishing.publish_version(version=draft, by=hilde, material=True)
    with pytest.raises(ValidationError, match="changed while you were recording"):
        record(draft, hilde, fingerprint=consented)  # the consent form as HR saw it before the change
    draft.refresh_from_db()
    assert draft.status == Version.Status.APPROVED and draft.works_council_fingerprint == consented


# Bad input in every free text -------------------------------------------------------------------------------


def free_text_forms(alice, olga, hilde, owned, web_meta):
    """(who posts, where, the form with the text in `field`) for every form an issue 15 text is written in."""
    question = ask(alice, owned)
    request = object_to(alice, owned, web_meta, kind=Objection.Kind.EXCEPTION, reason="On leave.")
    version = {"version": owned.pk, "language": "en"}
    return {
        "question": (alice, reverse("guidelines:ask", args=["social-media"]), {**version}, "text"),
        "follow-up": (alice, reverse("guidelines:question", args=[question.pk]), {}, "text"),
        "answer": (olga, reverse("guidelines:question", args=[question.pk]), {}, "text"),
        "objection": (alice, reverse("guidelines:object", args=["social-media"]), {**version, "kind": "objection"},
                      "reason"),
        "handling": (hilde, reverse("guidelines:objection", args=[request.pk]), {"outcome": "exempted"}, "note"),
    }


FORMS = ["question", "follow-up", "answer", "objection", "handling"]


@pytest.mark.parametrize("where", FORMS)
@pytest.mark.parametrize(("text", "message"), [
    ("Null\x00byte", "U+0000 at position 5"),
    ("Right-to-left \u202eoverride", "U+202E at position 15"),
    ("Isolate \u2067x\u2069", "U+2067 at position 9"),
    ("Escape \x1b[31m", "U+001B at position 8"),
    ("Next\x85line", "U+0085 at position 5"),
    ("\u200b\u200c\u200d\ufeff\u2060 \n", "Write"),  # invisible only: nothing to read
    ("x" * 100_000, "4000"),
])
def test_a_bad_text_is_a_400_that_says_why_and_writes_nothing(client_as, alice, olga, hilde, owned, web_meta,
                                                              settings, where, text, message):
    settings.QUESTION_RATE = (100, 3600)
    who, url, form, field = free_text_forms(alice, olga, hilde, owned, web_meta)[where]
    before = written()
    response = client_as(who).post(url, {**form, field: text})
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and 'class="error-summary' in html
    assert written() == before


@pytest.mark.parametrize("where", FORMS)
def test_odd_but_readable_text_is_kept_exactly_and_bytes_that_are_no_utf_8_do_not_break_anything(
        client_as, alice, olga, hilde, owned, web_meta, settings, where):
    settings.QUESTION_RATE = (100, 3600)
    who, url, form, field = free_text_forms(alice, olga, hilde, owned, web_meta)[where]
    # A joiner (an emoji sequence), a non-joiner, a direction mark, a combining accent, right-to-left script.
    text = "\U0001f469\u200d\U0001f4bb \u0648\u200c\u0628 \u200fmark e\u0301 \u05e9\u05dc\u05d5\u05dd "
    assert client_as(who).post(url, {**form, field: text}).status_code == 302
    stored = {"question": lambda: QuestionMessage.objects.order_by("pk").last().text,
              "follow-up": lambda: QuestionMessage.objects.order_by("pk").last().text,
              "answer": lambda: QuestionMessage.objects.order_by("pk").last().text,
              "objection": lambda: Objection.objects.order_by("pk").last().reason,
              "handling": lambda: ObjectionResolution.objects.get().note}[where]
    assert stored() == text.strip()
    if where == "handling":
        return  # handled once
    # A lone surrogate's UTF-8 bytes (\xed\xa0\x80) and other invalid bytes: read as U+FFFD, never a 500.
    body = "&".join(f"{key}={value}" for key, value in {**form, field: "Broken%ED%A0%80%FF%C0bytes"}.items())
    response = client_as(who).post(url, body.encode(), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 302
    kept = stored()
    assert kept.startswith("Broken\ufffd") and kept.endswith("bytes")
    kept.encode("utf-8")  # no surrogate in what was stored


def test_a_lone_surrogate_from_the_provisioning_service_is_a_scim_400(entra_token):
    body = json.loads((Path(__file__).parent.parent / "scim" / "fixtures" / "create_user.json").read_text())["body"]
    raw = json.dumps(body).replace('"givenName": "givenName"', '"givenName": "Emma\\ud800"')
    client = scim_client(entra_token)
    response = client.post("/scim/v2/Users", raw, content_type=SCIM_JSON)
    assert response.status_code == 400
    error = response.json()
    assert error["scimType"] == "invalidSyntax" and "lone surrogate" in error["detail"]
    assert not Employee.objects.filter(employee_number="100234").exists()
    created = client.post("/scim/v2/Users", json.dumps(body), content_type=SCIM_JSON)
    assert created.status_code == 201
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "path": "name.familyName", "value": "Example\udfff"}]}
    response = client.patch(f"/scim/v2/Users/{created.json()['id']}", json.dumps(patch),
                            content_type="application/json")
    assert response.status_code == 400 and response.json()["scimType"] == "invalidSyntax"
    assert Employee.objects.get(employee_number="100234").user.last_name == "familyName"


@pytest.fixture
def entra_token(db):
    from guidelines import api_tokens

    from ..api.conftest import service_account
    from ..factories import make_user

    root = make_user("root-scim@example.com", is_superuser=True, is_staff=True)
    account = service_account("entra-provisioning@example.com", "HR")
    return api_tokens.issue(by=root, name="Entra ID provisioning", account=account, scopes=["scim:provision"],
                            expires_at=timezone.now() + timedelta(days=1))[1]


# E-mails ----------------------------------------------------------------------------------------------------


FAKE_FRAME = ("Thanks.\n" + "-" * 70 + "\n\nAnswer it on this page; the employee gets your answer by e-mail:\n"
              "http://evil.example/answer\n" + "-" * 70 + "\u2028http://evil.example/after-a-line-separator")


def test_a_text_cannot_pass_for_the_e_mails_own_lines(alice, olga, owned, web_meta, worker):
    """The plain-text part quotes what people wrote line by line, so no line of theirs reads as the
    frame, the instruction or the link of the e-mail itself."""
    before = len(mail.outbox)
    with worker():
        question = ask(alice, owned, FAKE_FRAME)
        object_to(alice, owned, web_meta, reason=FAKE_FRAME)
        questions.answer(question=question, by=olga.user, text=FAKE_FRAME)
    messages = mail.outbox[before:]
    assert [message.to for message in messages] == [["olga@example.com"], ["olga@example.com"],
                                                    ["alice@example.com"]]
    for message in messages:
        lines = message.body.split("\n")
        assert [line for line in lines if "evil.example" in line] == [
            "> http://evil.example/answer", "> http://evil.example/after-a-line-separator"]
        assert lines.count("-" * 70) == 2 and "> " + "-" * 70 in lines  # the frame once, the fake one quoted
        assert [line for line in lines if line.startswith("http")] == [f"http://localhost:8000{url}"
                                                                      for url in urls_of(message)]
        html = message.alternatives[0][0]
        assert "Thanks.<br>" in html and "evil.example/answer<br>" in html  # HTML: the text as it was


def urls_of(message):
    return re.findall(r'href="http://localhost:8000([^"]+)"', message.alternatives[0][0])


@pytest.mark.parametrize("separator", ["\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
def test_a_name_or_title_with_any_line_break_stays_in_the_subject_on_one_line(alice, olga, hilde, bob, worker,
                                                                             separator):
    alice.user.last_name = f"Example{separator}Bcc: victim@example.com{separator}X-Injected: yes"
    alice.user.save()
    title = f"Hostile{separator}Cc: other@example.com"
    guideline = Guideline.objects.create(slug="hostile", title_nl=title, title_en=title, owner=olga.user)
    version = Version.objects.create(guideline=guideline, created_by=hilde)
    for language in ("nl", "en"):
        VersionText.objects.create(version=version, language=language, title=title, body=BODY[language])
    publishing.approve_version(version=version, by=bob.user)
    version = publishing.publish_version(version=version, by=hilde, material=True)
    before = len(mail.outbox)
    with worker():
        question = ask(alice, version)
        questions.answer(question=question, by=olga.user, text="No.")
    for message in mail.outbox[before:]:
        assert message.subject == " ".join(message.subject.split()) and "Hostile Cc: other@example.com" in \
            message.subject
        raw = message.message().as_bytes()
        headers = raw.split(b"\n\n", 1)[0]
        assert not re.search(rb"^(Bcc|Cc|X-Injected):", headers, re.M | re.I), headers
        assert message.to in (["olga@example.com"], ["alice@example.com"])
    to_owner = mail.outbox[before]
    assert "Alice Example Bcc: victim@example.com X-Injected: yes (E0001) asks you" in to_owner.body


# The auditor pack -------------------------------------------------------------------------------------------


def test_texts_people_write_reach_the_pack_as_text_and_make_it_load_nothing(
        client_as, alice, olga, hilde, bob, arjen, guideline, web_meta, canary, security_log, worker):
    """A name and a department from the HR system, a reason, HR's answer and a comprehension question, each
    trying to close the markup or the stylesheet and load something: nothing is fetched, all is printed."""
    probe = lambda where: (f'</style></td><img src="{canary.url}/{where}.png"><link rel=stylesheet '  # noqa: E731
                           f'href="{canary.url}/{where}.css"><style>*{{background:url({canary.url}/{where}-css)}}')
    alice.user.first_name = probe("name")[:150]
    alice.user.save()
    Department.objects.filter(pk=alice.department_id).update(name=probe("department")[:120])
    draft = make_draft(guideline, author=hilde)
    hostile_question = quiz_question(1, 1)
    hostile_question["text"]["en"] = probe("quiz")[:300]
    comprehension.set_questions(version=draft, by=hilde, questions=[hostile_question])
    version = publishing.publish_version(version=publishing.approve_version(version=draft, by=bob.user), by=hilde,
                                         material=True)
    [q1] = comprehension.questions_of(version)
    comprehension.check_answers(employee=alice, version=version, answers={q1.pk: 0})
    request = object_to(alice, version, web_meta, kind=Objection.Kind.EXCEPTION, reason=probe("reason"))
    questions.resolve(objection=request, by=hilde, outcome="declined", note=probe("note"))

    path = pack_of(arjen)
    assert canary.requests == [] and security_log("pdf_fetch_refused") == []
    for where in ("reason", "note", "quiz"):
        assert printed(path, f'<img src="{canary.url}/{where}.png">'), where
    rows = attachment(path, "objections.csv")
    assert [(row["reason"], row["answer"]) for row in rows] == [(probe("reason"), probe("note"))]


def test_a_name_or_department_with_line_breaks_keeps_its_table_row_whole(alice, otto, arjen, version_1, web_meta):
    alice.user.first_name = "Anna\nMaria\u2028Jo"
    alice.user.save()
    Department.objects.filter(pk=otto.department_id).update(name="Fin\r\nance")
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    lines = layout_lines(pack_of(arjen))
    assert any(re.search(r"Anna Maria Jo Example\s+E0001\s+Operations\s+acknowledged", line) for line in lines)
    assert any(re.search(r"Otto Example\s+E0099\s+Fin ance\s+pending", line) for line in lines)


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_formula_starts_in_the_packs_csv_files_are_defused(alice, hilde, arjen, version_1, web_meta, start):
    alice.user.first_name, alice.user.last_name = f"{start}HYPERLINK(\"http://evil.example\")", f"{start}1+1"
    alice.user.save()
    Department.objects.filter(pk=alice.department_id).update(name=f"{start}SUM(A1:A9)")
    objection = object_to(alice, version_1, web_meta, reason=f"{start}cmd|' /c calc'!A1")
    questions.resolve(objection=objection, by=hilde, outcome="answered", note=f"{start}2+3")
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    path = pack_of(arjen)
    [row] = attachment(path, "objections.csv")
    for column in ("employee_name", "department", "reason", "answer"):
        assert row[column].startswith(f"'{start}"), (column, row[column])
    [row] = [row for row in attachment(path, "acknowledgements.csv") if row["employee_number"] == "E0001"]
    for column in ("first_name", "last_name", "department"):
        assert row[column].startswith(f"'{start}"), (column, row[column])


def test_the_dashboard_export_defuses_names_from_the_hr_system(client_as, alice, hilde, version_1):
    alice.user.first_name, alice.user.last_name = "=HYPERLINK(\"http://evil.example\")", "\tTab"
    alice.user.save()
    Department.objects.filter(pk=alice.department_id).update(name="@SUM(A1)")
    response = client_as(hilde).get(reverse("guidelines:dashboard_export", args=["social-media"]))
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    [row] = [row for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if "E0001" in row]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
    assert "'@SUM(A1)" in row


# Pages ------------------------------------------------------------------------------------------------------


def test_hostile_texts_stay_text_on_the_new_pages(client, client_as, alice, olga, hilde, bob, guideline, web_meta):
    draft = make_draft(guideline, author=hilde)
    hostile_question = quiz_question(1, 1)
    hostile_question["text"]["en"] = "<script>alert('quiz')</script> & \"quoted\""
    hostile_question["hint"]["en"] = "<img src=x onerror=alert('hint')>"
    comprehension.set_questions(version=draft, by=hilde, questions=[hostile_question])
    version = publishing.publish_version(version=publishing.approve_version(version=draft, by=bob.user), by=hilde,
                                         material=True)
    guideline.owner = olga.user
    guideline.save()
    version.guideline = guideline
    ask(alice, version, "<script>alert('mine')</script>")
    object_to(alice, version, web_meta, reason="<b>bold</b>")
    [q1] = comprehension.questions_of(version)
    page = client_as(alice).post(acknowledge_url(version), {  # a wrong answer: the hint is shown
        "version": version.pk, "language": "en", "confirm": "on", f"q{q1.pk}": "0"}).content.decode()
    assert "&lt;script&gt;alert(&#x27;quiz&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert "&lt;img src=x onerror=alert(&#x27;hint&#x27;)&gt;" in page and "<img src=x" not in page
    for html in (client_as(alice).get(reverse("guidelines:my_questions")).content.decode(),
                 client_as(alice).get(reverse("guidelines:detail", args=["social-media"])).content.decode()):
        assert "<script>alert('mine')" not in html and "<b>bold</b>" not in html
    hr_page = client_as(hilde).get(reverse("guidelines:hr_guideline", args=["social-media"])).content.decode()
    assert "<script>alert('quiz')" not in hr_page and "&lt;script&gt;alert(&#x27;quiz&#x27;)" in hr_page


def test_a_hostile_user_agent_is_shown_as_text_to_hr(client_as, alice, hilde, owned):
    client = client_as(alice)
    client.get(reverse("guidelines:detail", args=["social-media"]))
    response = client.post(reverse("guidelines:object", args=["social-media"]),
                           {"version": owned.pk, "language": "en", "kind": "objection", "reason": "No."},
                           HTTP_USER_AGENT="<script>alert('ua')</script>\u202e")
    assert response.status_code == 302
    objection = Objection.objects.get()
    assert objection.user_agent == "<script>alert('ua')</script>\u202e"  # evidence as sent
    html = client_as(hilde).get(reverse("guidelines:objection", args=[objection.pk])).content.decode()
    assert "<script>alert('ua')" not in html


def test_the_owner_reads_the_objection_but_not_where_the_employee_signed_in_from(client_as, alice, olga, hilde,
                                                                               arjen, owned, web_meta):
    objection = object_to(alice, owned, web_meta, reason="It goes too far.")
    url = reverse("guidelines:objection", args=[objection.pk])
    owner_page = client_as(olga).get(url).content.decode()
    assert "It goes too far." in owner_page
    assert "10.1.2.3" not in owner_page and "IP address" not in owner_page and "(password)" not in owner_page
    for person in (hilde, arjen, alice):  # HR and auditors read the evidence; the employee their own
        assert "10.1.2.3" in client_as(person).get(url).content.decode()
