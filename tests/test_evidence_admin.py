"""Issue 15's evidence in the Django admin: objections and HR's handling, questions with their threads,
comprehension answers and reading progress are read-only there, for the superuser too; a version shows its
comprehension questions read-only (HR writes them on the draft's HR page, which checks them: the admin is
no second door); an employee's own words stay text; a list costs the same queries however long it is."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from guidelines import comprehension, publishing, questions, services
from guidelines.models import (
    AuditEvent,
    Objection,
    ObjectionResolution,
    Question,
    QuestionMessage,
    QuizAttempt,
    QuizQuestion,
    ReadingProgress,
)

from .factories import PASSWORD, make_draft, make_employee, sign_in

pytestmark = pytest.mark.django_db

# What an employee controls: their name (from the HR system), their question, their reason.
HOSTILE = '<script>alert(1)</script> "><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
RAW = ("<script>alert(1)", "<img src=x onerror=alert(1)>")

EVIDENCE_MODELS = {
    "objection": Objection,
    "objectionresolution": ObjectionResolution,
    "question": Question,
    "quizattempt": QuizAttempt,
    "readingprogress": ReadingProgress,
}


def quiz_question(n, text=None):
    return {"text": {"nl": text or f"Vraag {n}?", "en": text or f"Question {n}?"}, "correct": 1,
            "choices": [{"nl": "Nee", "en": "No"}, {"nl": "Ja", "en": HOSTILE}],
            "hint": {"nl": "Zie de tekst.", "en": "See the text."}}


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root@example.com", "root@example.com", PASSWORD)


@pytest.fixture
def mallory(db):
    employee = make_employee("mallory@example.com", "E0666")
    employee.user.first_name, employee.user.last_name = HOSTILE, "Example"
    employee.user.save()
    return employee


@pytest.fixture
def checked(guideline, hilde, bob):
    """Version 1.0 with two comprehension questions (the right answer is the second choice)."""
    draft = make_draft(guideline, author=hilde)
    comprehension.set_questions(version=draft, by=hilde, questions=[quiz_question(1, HOSTILE), quiz_question(2)])
    publishing.approve_version(version=draft, by=bob.user)
    return publishing.publish_version(version=draft, by=hilde, material=True)


def leave_evidence(employee, version, *, by, meta):
    """What one employee leaves: a reading reported to its end, answers (the first wrong), a question with
    an answer, an objection and a handled exception request; each of their texts is hostile."""
    opened = timezone.now()
    services.record_reading(employee=employee, version=version)
    with time_machine.travel(opened + timedelta(seconds=31), tick=False):
        services.record_progress(employee=employee, version=version, seconds=30, percent=100)
    first, second = comprehension.questions_of(version)
    comprehension.check_answers(employee=employee, version=version, answers={first.pk: 0, second.pk: 1})
    comprehension.check_answers(employee=employee, version=version, answers={first.pk: 1, second.pk: 1})
    thread = questions.ask(employee=employee, version=version, language="en", text=HOSTILE)
    questions.answer(question=thread, by=by, text="An answer.")
    questions.record_objection(employee=employee, version=version, language="en", kind="objection",
                               reason=HOSTILE, meta=meta)
    request = questions.record_objection(employee=employee, version=version, language="en", kind="exception",
                                         reason=HOSTILE, meta=meta)
    questions.resolve(objection=request, by=by, outcome="declined", note="Everyone acknowledges this one.")


@pytest.fixture
def evidence(mallory, checked, hilde, web_meta):
    leave_evidence(mallory, checked, by=hilde, meta=web_meta)
    return {name: model.objects.order_by("pk").first() for name, model in EVIDENCE_MODELS.items()}


def admin_url(name, view, *args):
    return reverse(f"admin:guidelines_{name}_{view}", args=args)


def _assert_escaped(page):
    for raw in RAW:
        assert raw not in page
    assert ESCAPED in page


# Read-only, for the superuser too -------------------------------------------------------------------------


@pytest.mark.parametrize("name", EVIDENCE_MODELS)
def test_the_superuser_reads_the_evidence_and_cannot_add_change_or_delete_it(client, root, evidence, name):
    record = evidence[name]
    model = EVIDENCE_MODELS[name]
    before = {row["id"]: row for row in model.objects.values()}
    sign_in(client, root)

    listing = client.get(admin_url(name, "changelist"))
    assert listing.status_code == 200
    page = listing.content.decode()
    assert admin_url(name, "change", record.pk) in page
    assert 'value="delete_selected"' not in page and admin_url(name, "add") not in page
    change = client.get(admin_url(name, "change", record.pk))
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode() and "Delete" not in change.content.decode()

    assert client.get(admin_url(name, "add")).status_code == 403
    assert client.post(admin_url(name, "add"), {}).status_code == 403
    assert client.post(admin_url(name, "change", record.pk), {"id": record.pk}).status_code == 403
    assert client.get(admin_url(name, "delete", record.pk)).status_code == 403
    assert client.post(admin_url(name, "delete", record.pk), {"post": "yes"}).status_code == 403
    client.post(admin_url(name, "changelist"), {"action": "delete_selected", "_selected_action": [record.pk],
                                                "post": "yes"})
    assert {row["id"]: row for row in model.objects.values()} == before
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ADMIN_CHANGED).exists()


@pytest.mark.parametrize("name", EVIDENCE_MODELS)
def test_hr_staff_reach_no_evidence_list_the_hr_group_holds_no_permission_for(client_as, hilde, evidence, name):
    """The HR group reads objections and questions on the HR pages (the inbox, the employee's page), which
    apply questions.py's rules; it holds no view permission on these tables, so the admin shows them not."""
    client = client_as(hilde)
    assert client.get(admin_url(name, "changelist")).status_code == 403
    assert client.get(admin_url(name, "change", evidence[name].pk)).status_code == 403
    assert f"/admin/guidelines/{name}/" not in client.get(reverse("admin:index")).content.decode()


# What the pages show ---------------------------------------------------------------------------------------


def test_an_objection_shows_its_evidence_and_hrs_handling(client, root, evidence):
    request = Objection.objects.get(kind="exception")
    sign_in(client, root)

    listing = client.get(admin_url("objection", "changelist")).content.decode()
    _assert_escaped(listing)  # the name, as recorded with the objection
    assert "E0666" in listing and "exception request" in listing and "1.0" in listing
    assert listing.count('alt="True"') == 1 and listing.count('alt="False"') == 1  # handled, open
    assert client.get(admin_url("objection", "changelist"), {"kind": "objection"}).content.decode().count(
        'alt="False"') == 1
    found = client.get(admin_url("objection", "changelist"), {"q": "E0666"}).content.decode()
    assert found.count(admin_url("objection", "change", request.pk)) >= 1
    assert admin_url("objection", "change", request.pk) not in client.get(
        admin_url("objection", "changelist"), {"q": "E0001"}).content.decode()

    page = client.get(admin_url("objection", "change", request.pk)).content.decode()
    _assert_escaped(page)  # the reason and the name
    assert request.content_hash in page and "exception declined" in page and "Everyone acknowledges this one." in page
    assert 'name="resolution-0-note"' not in page and "<textarea" not in page  # shown, not a form


def test_a_question_shows_its_thread_read_only(client, root, hilde, evidence):
    question = evidence["question"]
    sign_in(client, root)

    listing = client.get(admin_url("question", "changelist")).content.decode()
    _assert_escaped(listing)
    assert "answered" in listing and "E0666" in listing
    page = client.get(admin_url("question", "change", question.pk)).content.decode()
    _assert_escaped(page)
    assert "An answer." in page and "owner of the guideline" in page
    assert 'name="messages-0-text"' not in page and "<textarea" not in page
    assert 'name="messages-MAX_NUM_FORMS" value="0"' in page  # no row to add

    # A forged formset adds, changes or removes no message.
    before = list(QuestionMessage.objects.values())
    client.post(admin_url("question", "change", question.pk), {
        "messages-TOTAL_FORMS": "3", "messages-INITIAL_FORMS": "2", "messages-MIN_NUM_FORMS": "0",
        "messages-MAX_NUM_FORMS": "1000", "messages-0-id": QuestionMessage.objects.first().pk,
        "messages-0-text": "Rewritten.", "messages-0-DELETE": "on", "messages-2-text": "Added.",
        "messages-2-role": "hr", "messages-2-author": hilde.pk})
    assert list(QuestionMessage.objects.values()) == before


def test_answers_and_reading_progress_are_listed(client, root, evidence):
    sign_in(client, root)
    attempts = client.get(admin_url("quizattempt", "changelist")).content.decode()
    _assert_escaped(attempts)  # the employee's name
    # Question 1 wrong then right, question 2 right (sent again unchanged, it is no second try).
    assert attempts.count('alt="False"') == 1 and attempts.count('alt="True"') == 2
    progress = client.get(admin_url("readingprogress", "changelist")).content.decode()
    _assert_escaped(progress)
    assert "<td class=\"field-furthest_percent\">100</td>" in progress


# A version's comprehension questions: shown, never written here ------------------------------------------------


def _quiz_inline_post(version):
    """A change form of a draft as a browser would send it, with a forged comprehension-question formset that
    changes the first question, deletes it and adds one."""
    texts = list(version.texts.order_by("language"))
    first = version.quiz_questions.order_by("position").first()
    data = {"guideline": version.guideline_id, "leading_language": version.leading_language, "effective_date": "",
            "texts-TOTAL_FORMS": "2", "texts-INITIAL_FORMS": "2", "texts-MIN_NUM_FORMS": "0",
            "texts-MAX_NUM_FORMS": "2",
            "quiz_questions-TOTAL_FORMS": "3", "quiz_questions-INITIAL_FORMS": "2",
            "quiz_questions-MIN_NUM_FORMS": "0", "quiz_questions-MAX_NUM_FORMS": "1000",
            "quiz_questions-0-id": first.pk, "quiz_questions-0-version": version.pk,
            "quiz_questions-0-correct": "0", "quiz_questions-0-text_en": "Rewritten?",
            "quiz_questions-0-DELETE": "on",
            "quiz_questions-2-version": version.pk, "quiz_questions-2-position": "3",
            "quiz_questions-2-text_nl": "Erbij?", "quiz_questions-2-text_en": "Added?",
            "quiz_questions-2-choices": '[{"nl": "a", "en": "a"}]', "quiz_questions-2-correct": "0",
            "quiz_questions-2-hint_nl": "x", "quiz_questions-2-hint_en": "x"}
    for index, text in enumerate(texts):
        data.update({f"texts-{index}-id": text.pk, f"texts-{index}-version": version.pk,
                     f"texts-{index}-language": text.language, f"texts-{index}-title": text.title,
                     f"texts-{index}-body": text.body, f"texts-{index}-change_summary": ""})
    return data


@pytest.mark.parametrize("who", ["hilde", "root"])
def test_a_draft_shows_its_questions_and_a_forged_formset_changes_none(client, request, who, guideline, hilde):
    draft = make_draft(guideline, author=hilde)
    comprehension.set_questions(version=draft, by=hilde, questions=[quiz_question(1, HOSTILE), quiz_question(2)])
    before = list(QuizQuestion.objects.values())
    sign_in(client, request.getfixturevalue(who) if who == "hilde" else get_user_model().objects.create_superuser(
        "root@example.com", "root@example.com", PASSWORD))
    url = admin_url("version", "change", draft.pk)

    page = client.get(url).content.decode()
    assert 'name="_save"' in page  # the draft itself is still edited here (nobody was asked to approve it)
    _assert_escaped(page)  # the question and a choice
    assert "Question 2?" in page and "See the text." in page
    assert 'name="quiz_questions-0-text_en"' not in page and 'name="quiz_questions-0-DELETE"' not in page
    assert 'name="quiz_questions-MAX_NUM_FORMS" value="0"' in page  # no row to add

    response = client.post(url, _quiz_inline_post(draft))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(QuizQuestion.objects.values()) == before


def test_a_published_versions_questions_are_shown_to_whoever_may_see_the_version(client, client_as, checked, bob,
                                                                                 root):
    bob.user.is_staff = True  # an approver: reads versions in the admin
    bob.user.save()
    url = admin_url("version", "change", checked.pk)
    for user in (bob.user, root):
        page = client_as(user).get(url).content.decode()
        _assert_escaped(page)
        assert "Question 2?" in page and 'name="_save"' not in page


def test_a_new_version_has_no_questions_form_in_the_admin(client_as, hilde, guideline):
    page = client_as(hilde).get(admin_url("version", "add")).content.decode()
    assert "quiz_questions" not in page
    assert "texts-TOTAL_FORMS" in page


# Lists: the same queries however many rows -----------------------------------------------------------------


@pytest.mark.parametrize("name", EVIDENCE_MODELS)
def test_an_evidence_list_costs_the_same_queries_however_many_rows(client, root, checked, hilde, web_meta,
                                                                   settings, name, django_assert_max_num_queries):
    settings.QUESTION_RATE = (100, 3600)
    first = make_employee("one@example.com", "E1000")
    leave_evidence(first, checked, by=hilde, meta=web_meta)
    sign_in(client, root)
    url = admin_url(name, "changelist")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    few = len(few)  # now: the next request empties the log the context reads from

    for n in range(5):
        leave_evidence(make_employee(f"many{n}@example.com", f"E20{n:02d}"), checked, by=hilde, meta=web_meta)
    client.get(url)
    with django_assert_max_num_queries(few):
        page = client.get(url).content.decode()
    pks = list(EVIDENCE_MODELS[name].objects.values_list("pk", flat=True))
    assert len(pks) >= 6 and all(f'href="{admin_url(name, "change", pk)}"' in page for pk in pks)
