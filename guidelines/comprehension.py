"""The comprehension check: up to five multiple-choice questions per version, in both languages,
written by HR on the draft, approved with it and frozen at publication (a database trigger). The
employee answers before acknowledging; a wrong answer shows the passage of the text that answers it,
and they try again. Every answer is kept (QuizAttempt, append-only); the acknowledgement seals the
final answers with the number of tries (`final_answers`, canonical JSON in Acknowledgement.answers).
HR sees per question how many got it right the first time (`pass_rates`)."""

import json

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from . import publishing
from .access import require_permission
from .models import LANGUAGES, AuditEvent, QuizAttempt, QuizQuestion
from .prepared import PreparedQuery
from .services import check_can_acknowledge, record_audit_event

MIN_CHOICES, MAX_CHOICES = 2, 4


# Asked on every view of a guideline page with a check: compiled once per process.
_questions_of = PreparedQuery(QuizQuestion, lambda version: QuizQuestion.objects.filter(version=version)
                              .order_by("position"), int)


def questions_of(version):
    return _questions_of(version.pk)


def _clean(question, number):
    """One question as HR entered it: {"text": {nl, en}, "choices": [{nl, en}, …] (empty slots are
    left out), "correct": the slot of the right answer, "hint": {nl, en}}. Returns the problems (each
    naming the question by its number), the answers given and the right one's position among them."""
    problems = []
    text, hint = question.get("text") or {}, question.get("hint") or {}
    slots = [slot for slot, choice in enumerate(question.get("choices") or [])
             if any((choice.get(lang) or "").strip() for lang in LANGUAGES)]
    choices = [question["choices"][slot] for slot in slots]
    if not all((text.get(lang) or "").strip() for lang in LANGUAGES):
        problems.append(_("Question %(number)s: write the question in Dutch and in English.") % {"number": number})
    if not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
        problems.append(_("Question %(number)s: give two to four answers.") % {"number": number})
    if not all((choice.get(lang) or "").strip() for choice in choices for lang in LANGUAGES):
        problems.append(_("Question %(number)s: write every answer in Dutch and in English.") % {"number": number})
    if question.get("correct") not in slots:
        problems.append(_("Question %(number)s: mark the right answer.") % {"number": number})
    if not all((hint.get(lang) or "").strip() for lang in LANGUAGES):
        problems.append(_("Question %(number)s: quote where the text answers it, in Dutch and in English.")
                        % {"number": number})
    values = [*text.values(), *hint.values(), *(value for choice in choices for value in choice.values())]
    if any("\x00" in (value or "") for value in values):
        problems.append(_("Question %(number)s contains a character that is not allowed.") % {"number": number})
    correct = slots.index(question["correct"]) if question.get("correct") in slots else None
    return problems, choices, correct


def set_questions(*, version, by, questions):
    """Replace a draft's questions (a list as _clean reads them; empty removes the check). Changing
    them withdraws an approval, as any change of the draft does."""
    require_permission(by, "guidelines.manage")
    if len(questions) > QuizQuestion.MAX_PER_VERSION:
        raise ValidationError(_("A version has at most five questions."))
    problems, cleaned = {}, []
    for number, question in enumerate(questions, start=1):
        found, choices, correct = _clean(question, number)
        if found:
            problems[f"question_{number}"] = found
        cleaned.append((question, choices, correct))
    if problems:  # by question ("question_2"), for the form to put each on its question
        raise ValidationError(problems)
    rows = [
        QuizQuestion(
            version=version, position=number, text_nl=question["text"]["nl"].strip(),
            text_en=question["text"]["en"].strip(), correct=correct,
            choices=[{lang: choice[lang].strip() for lang in LANGUAGES} for choice in choices],
            hint_nl=question["hint"]["nl"].strip(), hint_en=question["hint"]["en"].strip())
        for number, (question, choices, correct) in enumerate(cleaned, start=1)
    ]
    for row in rows:
        row.full_clean(exclude=["version"])  # lengths: a clear message rather than a database error
    with transaction.atomic():
        version = publishing.mark_draft_edited(version=version, by=by)  # refuses a published version too
        QuizQuestion.objects.filter(version=version).delete()
        QuizQuestion.objects.bulk_create(rows)
        # The draft as it is now, with these questions (mark_draft_edited's event saw the old ones).
        fingerprint = publishing.fingerprint_of(version)
        record_audit_event(action=AuditEvent.Action.DRAFT_SAVED, actor=by, guideline=version.guideline,
                           version=version, comprehension_questions=len(rows), fingerprint=fingerprint,
                           consent_outdated=version.has_works_council_consent
                           and version.works_council_fingerprint != fingerprint)
    return rows


def check_answers(*, employee, version, answers, questions=None):
    """Record the employee's answers ({question pk: choice position}) and return {question pk: right?}.
    An answer is recorded when it is the first to its question or differs from the last one, so that
    sending the form again with the same answers does not count as another try."""
    check_can_acknowledge(employee=employee, version=version)
    questions = {question.pk: question for question in (questions or questions_of(version))}
    # Only this version's questions, each answered with one of its choices: no other try is recorded.
    if set(answers) != set(questions) or any(question.version_id != version.pk for question in questions.values()):
        raise ValidationError(_("Answer every question."), code="incomplete")
    for number, question in enumerate(sorted(questions.values(), key=lambda question: question.position), start=1):
        choice = answers[question.pk]
        if type(choice) is not int or not 0 <= choice < len(question.choices):
            raise ValidationError(_("Question %(number)s: choose an answer.") % {"number": number}, code="choice")
    now = timezone.now()
    with transaction.atomic():
        last = {}
        for attempt in QuizAttempt.objects.filter(employee=employee, question__in=list(questions)).order_by(
                "answered_at", "pk"):
            last[attempt.question_id] = attempt.choice
        new = [QuizAttempt(employee=employee, question=questions[pk], choice=choice,
                           correct=choice == questions[pk].correct, answered_at=now)
               for pk, choice in answers.items() if last.get(pk) != choice]
        QuizAttempt.objects.bulk_create(new)
    return {pk: choice == questions[pk].correct for pk, choice in answers.items()}


def final_answers(employee, version):
    """The answers the acknowledgement seals, as canonical JSON: per question (by position) the final
    choice and the number of tries. ValidationError (code "comprehension") unless the last answer to
    every question is right."""
    questions = questions_of(version)
    attempts = {}
    for attempt in QuizAttempt.objects.filter(employee=employee, question__version=version).order_by(
            "answered_at", "pk"):
        attempts.setdefault(attempt.question_id, []).append(attempt)
    if not all(attempts.get(question.pk) and attempts[question.pk][-1].correct for question in questions):
        raise ValidationError(_("Answer every question of the check rightly first."), code="comprehension")
    values = [{"question": question.position, "choice": attempts[question.pk][-1].choice,
               "tries": len(attempts[question.pk])} for question in questions]
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def pass_rates(version):
    """Per question: how many employees answered it, how many got it right the first time, and the
    answers given in all: one query."""
    earlier = QuizAttempt.objects.filter(employee=OuterRef("employee"), question=OuterRef("question")).filter(
        Q(answered_at__lt=OuterRef("answered_at")) | Q(answered_at=OuterRef("answered_at"), pk__lt=OuterRef("pk")))
    first_right = QuizAttempt.objects.filter(correct=True).exclude(Exists(earlier))
    rows = (QuizQuestion.objects.filter(version=version).order_by("position")
            .annotate(answered=Count("attempts__employee", distinct=True), answers=Count("attempts"),
                      right_first=Count("attempts", filter=Q(attempts__in=first_right.values("pk")))))
    return [{"question": row, "answered": row.answered, "answers": row.answers, "right_first": row.right_first,
             "percent": round(100 * row.right_first / row.answered) if row.answered else None} for row in rows]
