"""The comprehension check: HR's questions on a draft (approved with it, frozen at publication), the
employee's answers (a wrong one shows the passage, every answer kept), the final answers sealed with
the acknowledgement, and the pass rates HR sees."""

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from guidelines import comprehension, publishing, services
from guidelines.models import Acknowledgement, QuizAttempt, QuizQuestion, Version

from .factories import make_draft, tamper

pytestmark = pytest.mark.django_db


def question(n, correct=1):
    return {"text": {"nl": f"Vraag {n}?", "en": f"Question {n}?"},
            "choices": [*({"nl": f"Antwoord {n}.{i}", "en": f"Answer {n}.{i}"} for i in range(3)),
                        {"nl": "", "en": ""}],
            "correct": correct, "hint": {"nl": f"Zie regel {n}.", "en": f"See rule {n}."}}


@pytest.fixture
def checked(guideline, hilde, bob):
    """Version 1.0 with two questions; the right answers are 1 and 2."""
    draft = make_draft(guideline, author=hilde)
    comprehension.set_questions(version=draft, by=hilde, questions=[question(1, 1), question(2, 2)])
    publishing.approve_version(version=draft, by=bob.user)
    return publishing.publish_version(version=draft, by=hilde, material=True)


def answer(client, version, answers, confirm=True):
    questions = comprehension.questions_of(version)
    data = {"version": version.pk, "language": "en", **({"confirm": "on"} if confirm else {}),
            **{f"q{q.pk}": str(choice) for q, choice in zip(questions, answers, strict=True) if choice is not None}}
    return client.post(reverse("guidelines:acknowledge", args=[version.guideline.slug]), data)


# HR's questions -----------------------------------------------------------------------------------


def test_questions_are_checked_and_a_change_withdraws_the_approval(guideline, hilde, bob, alice):
    draft = make_draft(guideline, author=hilde)
    publishing.approve_version(version=draft, by=bob.user)
    broken = question(1)
    broken["choices"] = [{"nl": "Ja", "en": ""}]
    broken["correct"] = 3
    with pytest.raises(ValidationError) as refused:
        comprehension.set_questions(version=draft, by=hilde, questions=[broken])
    assert refused.value.message_dict == {"question_1": ["Question 1: give two to four answers.",
                                                         "Question 1: write every answer in Dutch and in English.",
                                                         "Question 1: mark the right answer."]}
    with pytest.raises(ValidationError, match="at most five"):
        comprehension.set_questions(version=draft, by=hilde, questions=[question(n) for n in range(6)])
    with pytest.raises(PermissionDenied):
        comprehension.set_questions(version=draft, by=alice.user, questions=[question(1)])
    draft.refresh_from_db()
    assert draft.status == Version.Status.APPROVED and not draft.quiz_questions.exists()

    before = publishing.fingerprint_of(draft)
    [stored] = comprehension.set_questions(version=draft, by=hilde, questions=[question(1, correct=2)])
    draft.refresh_from_db()
    assert draft.status == Version.Status.DRAFT and publishing.fingerprint_of(draft) != before
    assert (stored.correct, len(stored.choices)) == (2, 3)  # the empty fourth slot left out


def test_the_questions_of_a_published_version_are_frozen(checked):
    first = checked.quiz_questions.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        QuizQuestion.objects.filter(pk=first.pk).update(correct=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        QuizQuestion.objects.filter(pk=first.pk).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        QuizQuestion.objects.create(version=checked, position=3, text_nl="x", text_en="x", choices=[],
                                    correct=0, hint_nl="x", hint_en="x")
    with pytest.raises(ValidationError):
        comprehension.set_questions(version=checked, by=checked.published_by, questions=[])


# The employee's answers ---------------------------------------------------------------------------


def test_a_wrong_answer_shows_the_passage_then_the_right_one_acknowledges_with_the_tries_sealed(
        checked, alice, client_as):
    client = client_as(alice)
    page = client.get(reverse("guidelines:detail", args=["social-media"])).content.decode()
    assert "Question 1?" in page and "Answer 1.2" in page and 'type="radio"' in page

    response = answer(client, checked, [1, 0])  # the second is wrong
    assert response.status_code == 400 and not Acknowledgement.objects.exists()
    content = response.content.decode()
    assert "Question 2: not quite" in content and "See rule 2." in content and "See rule 1." not in content
    assert 'href="#id_q' in content  # the error summary leads to the question

    assert answer(client, checked, [1, 0]).status_code == 400  # the same answers again: no new try
    response = answer(client, checked, [1, 2])
    assert response.status_code == 302
    ack = Acknowledgement.objects.get()
    assert json.loads(ack.answers) == [{"question": 1, "choice": 1, "tries": 1},
                                       {"question": 2, "choice": 2, "tries": 2}]
    assert ack.answers == '[{"question":1,"choice":1,"tries":1},{"question":2,"choice":2,"tries":2}]'
    assert QuizAttempt.objects.count() == 3 and services.verify_evidence().intact
    tamper("UPDATE guidelines_acknowledgement SET answers = %s WHERE id = %s",
           ['[{"question":1,"choice":1,"tries":1},{"question":2,"choice":2,"tries":1}]', ack.pk])
    assert services.verify_evidence().first_break_sequence == ack.sequence


def test_an_unanswered_question_is_named_and_nothing_is_kept(checked, alice, client_as):
    response = answer(client_as(alice), checked, [1, None])
    assert response.status_code == 400 and "Question 2: choose an answer." in response.content.decode()
    assert not QuizAttempt.objects.exists() and not Acknowledgement.objects.exists()


def test_the_service_refuses_an_acknowledgement_without_the_right_answers(checked, alice, web_meta):
    with pytest.raises(ValidationError) as refused:
        services.acknowledge(employee=alice, version=checked, language="en", meta=web_meta)
    assert refused.value.code == "comprehension"
    questions = comprehension.questions_of(checked)
    comprehension.check_answers(employee=alice, version=checked, answers={questions[0].pk: 1, questions[1].pk: 0})
    with pytest.raises(ValidationError):
        services.acknowledge(employee=alice, version=checked, language="en", meta=web_meta)
    assert not Acknowledgement.objects.exists()


def test_only_someone_who_may_acknowledge_can_answer(checked, hilde, otto, guideline):
    guideline.audience_everyone = False
    guideline.save()
    questions = comprehension.questions_of(checked)
    with pytest.raises(PermissionDenied):
        comprehension.check_answers(employee=otto, version=checked, answers={q.pk: 0 for q in questions})
    assert not QuizAttempt.objects.exists()


# What HR sees -------------------------------------------------------------------------------------


def test_the_pass_rates_match_the_stored_answers(checked, alice, bob, otto):
    questions = comprehension.questions_of(checked)
    q1, q2 = questions
    comprehension.check_answers(employee=alice, version=checked, answers={q1.pk: 1, q2.pk: 0})
    comprehension.check_answers(employee=alice, version=checked, answers={q1.pk: 1, q2.pk: 2})
    comprehension.check_answers(employee=bob, version=checked, answers={q1.pk: 0, q2.pk: 2})
    comprehension.check_answers(employee=otto, version=checked, answers={q1.pk: 1, q2.pk: 1})
    rates = {row["question"].position: row for row in comprehension.pass_rates(checked)}
    assert (rates[1]["answered"], rates[1]["right_first"], rates[1]["answers"], rates[1]["percent"]) == (3, 2, 3, 67)
    assert (rates[2]["answered"], rates[2]["right_first"], rates[2]["answers"], rates[2]["percent"]) == (3, 1, 4, 33)
    # The same from the stored answers, counted here one by one.
    for position, question in ((1, q1), (2, q2)):
        firsts = {}
        for attempt in QuizAttempt.objects.filter(question=question).order_by("answered_at", "pk"):
            firsts.setdefault(attempt.employee_id, attempt.correct)
        assert rates[position]["right_first"] == sum(firsts.values())
        assert rates[position]["answered"] == len(firsts)


# HR's pages ---------------------------------------------------------------------------------------


def _questions_form(**fields):
    return {"q1_text_nl": "Mag je klantgegevens delen?", "q1_text_en": "May you share client data?",
            "q1_choice1_nl": "Ja", "q1_choice1_en": "Yes", "q1_choice2_nl": "Nee", "q1_choice2_en": "No",
            "q1_correct": "2", "q1_hint_nl": "Deel nooit klantgegevens.", "q1_hint_en": "Never share client data.",
            **fields}


def test_hr_writes_the_questions_on_the_draft_page_and_errors_land_on_the_question(guideline, hilde, client_as):
    draft = make_draft(guideline, author=hilde)
    client = client_as(hilde)
    url = reverse("guidelines:hr_draft_questions", args=[draft.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, _questions_form(q3_text_nl="Half af?", q1_correct=""))
    assert response.status_code == 400 and not draft.quiz_questions.exists()
    content = response.content.decode()
    assert 'href="#id_q1_text_nl"' in content and "Question 1: mark the right answer." in content
    assert 'href="#id_q3_text_nl"' in content and "Question 2: write the question in Dutch and in English." in content
    assert client.post(url, _questions_form()).status_code == 302
    [stored] = draft.quiz_questions.all()
    assert (stored.text_en, stored.correct, stored.choices) == (
        "May you share client data?", 1, [{"nl": "Ja", "en": "Yes"}, {"nl": "Nee", "en": "No"}])
    page = client.get(reverse("guidelines:hr_draft", args=[draft.pk])).content.decode()
    assert "1 question" in page and "Never share client data." in page
    edit = client.get(url).content.decode()
    assert 'value="May you share client data?"' in edit


def test_employees_and_approvers_cannot_write_questions(guideline, hilde, bob, alice, client_as):
    draft = make_draft(guideline, author=hilde)
    url = reverse("guidelines:hr_draft_questions", args=[draft.pk])
    assert client_as(alice).post(url, _questions_form()).status_code == 403
    assert client_as(bob).post(url, _questions_form()).status_code == 403
    assert not draft.quiz_questions.exists()


def test_hr_sees_the_pass_rates_of_the_current_version(checked, alice, hilde, client_as):
    questions = comprehension.questions_of(checked)
    comprehension.check_answers(employee=alice, version=checked, answers={questions[0].pk: 1, questions[1].pk: 0})
    page = client_as(hilde).get(reverse("guidelines:hr_guideline", args=["social-media"])).content.decode()
    assert "Comprehension check of version 1.0" in page and "1 (100&nbsp;%)" in page and "0 (0&nbsp;%)" in page


def test_the_dashboard_shows_the_chosen_version_s_pass_rates_to_hr_and_auditors(checked, alice, bob, hilde, arjen,
                                                                                 client_as, guideline):
    q1, q2 = comprehension.questions_of(checked)
    comprehension.check_answers(employee=alice, version=checked, answers={q1.pk: 1, q2.pk: 0})
    comprehension.check_answers(employee=bob, version=checked, answers={q1.pk: 0, q2.pk: 0})
    url = reverse("guidelines:dashboard_guideline", args=[guideline.slug])
    for reader in (hilde, arjen):
        page = client_as(reader).get(url).content.decode()
        assert "Comprehension check of version 1.0" in page
        assert "<td class=\"excerpt\">1. Question 1?</td>" in page and "1 (50&nbsp;%)" in page  # alice right, bob wrong
        assert "0 (0&nbsp;%)" in page  # nobody got question 2 right the first time
    # A later version without a check shows none; choosing 1.0 again shows 1.0's.
    draft = make_draft(guideline, author=hilde)
    publishing.approve_version(version=draft, by=bob.user)
    publishing.publish_version(version=draft, by=hilde, material=True)
    assert "Comprehension check" not in client_as(hilde).get(url).content.decode()
    assert "1 (50&nbsp;%)" in client_as(hilde).get(url, {"version": "1.0"}).content.decode()


def test_the_receipt_certificate_and_pack_show_the_answers(checked, alice, web_meta, arjen, client_as, settings,
                                                           tmp_path):
    import csv
    import io

    from pypdf import PdfReader

    from guidelines.reports import jobs

    from .test_reports import generate, pdf_path

    settings.MEDIA_ROOT = tmp_path / "media"
    q1, q2 = comprehension.questions_of(checked)
    comprehension.check_answers(employee=alice, version=checked, answers={q1.pk: 1, q2.pk: 0})
    comprehension.check_answers(employee=alice, version=checked, answers={q1.pk: 1, q2.pk: 2})
    ack, _created = services.acknowledge(employee=alice, version=checked, language="en", meta=web_meta)
    receipt = client_as(alice).get(reverse("guidelines:receipt", args=[ack.pk])).content.decode()
    assert "2 questions answered rightly (tries per question: 1, 2)" in receipt

    certificate = jobs.certificate(acknowledgement=ack, user=alice.user, language="en")
    reader = PdfReader(jobs.reports_dir() / certificate.file)
    assert len(reader.pages) == 1 and "tries per question: 1, 2" in reader.pages[0].extract_text()
    assert json.loads(reader.attachments["acknowledgement.json"][0])["answers"] == ack.answers

    pack = PdfReader(pdf_path(generate(arjen)))
    text = " ".join(page.extract_text() for page in pack.pages)
    assert "Comprehension check" in text and "Question 2?" in text and "0 (0 %)" in text
    [row] = [row for row in csv.DictReader(io.StringIO(pack.attachments["acknowledgements.csv"][0].decode()))
             if row["employee_number"] == "E0001"]
    assert row["comprehension_answers"] == ack.answers
