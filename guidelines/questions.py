"""Questions and objections: an employee asks a guideline's owner about the version they were reading
(a thread the owner or HR answers), or records an objection or an exception request, which HR handles.

- Who. An employee asks, follows up and objects only about a guideline that applies to them, while
  employed: a question about any published version of a live guideline, an objection or exception
  request about the current version (the one they are asked to acknowledge). The guideline's owner and
  HR (guidelines.manage) answer questions; HR handles objections, the owner and auditors read them. An
  employee sees only their own threads and objections (visible_questions, visible_objections): anyone
  else's is "not found". The page about one employee (HR and auditors) lists theirs by the same rules
  (threads_of). Every function here checks, whatever calls it.
- Texts. Questions, answers, reasons and notes are their writers' own words: at most
  MESSAGE_MAX_LENGTH characters and no control characters (clean_text); shown as text everywhere
  (pages, e-mails, the auditor pack and its CSV).
- Limits. QUESTION_RATE messages per employee and window, questions, follow-ups, objections and
  exception requests together: each one e-mails the owner.
- Evidence. An objection is recorded like an acknowledgement (the version and language shown with its
  SHA-256, the statement, the reason, the server time, the first opening, how and from where the
  employee signed in, who they were then) and does not count as one: the status engine never reads it,
  reminders go on, and the employee may still acknowledge. HR's handling is an ObjectionResolution
  beside it; an exemption an exception request asks for is granted through services.grant_exemption.
  All four tables are append-only (triggers, and the application role may only SELECT and INSERT).
- Webhooks. Recording and handling are the events objection.recorded and objection.resolved, recorded
  in the same transaction (webhook_events.emit), with ids, numbers and times only: no reason, no note.
- E-mails. The owner hears of every question, follow-up, objection and exception request, the employee
  of every answer and of HR's handling, through the notification log (once per message and recipient),
  queued after the commit (tasks.send_question_emails).
"""

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from . import content, tasks, webhook_events
from .access import require_evidence_reader, require_permission
from .models import (
    LANGUAGES,
    MESSAGE_MAX_LENGTH,
    AuditEvent,
    Employee,
    Guideline,
    NotificationLog,
    Objection,
    ObjectionResolution,
    Question,
    QuestionMessage,
    Reading,
    Version,
)
from .prepared import PreparedQuery
from .services import grant_exemption, minimised_ip, record_audit_event

logger = logging.getLogger(__name__)

Role = QuestionMessage.Role
Kind = Objection.Kind
Outcome = ObjectionResolution.Outcome
EmailKind = NotificationLog.Kind

# What a text may not hold: control characters but tab, line feed and carriage return (C0, DEL, C1: NUL
# among them, which PostgreSQL refuses anyway), and the bidirectional embeddings, overrides and isolates,
# which make a text read differently from what it holds.
FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# HR's handling that fits each kind.
OUTCOMES = {Kind.OBJECTION: (Outcome.ANSWERED,), Kind.EXCEPTION: (Outcome.EXEMPTED, Outcome.DECLINED)}


def normalised(text):
    """Line ends as \\n, no surrounding white space."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def check_characters(text):
    """ValidationError naming the first control character in `text` and where it is."""
    match = FORBIDDEN_CHARACTERS.search(text or "")
    if match:
        raise ValidationError(
            _("Remove the invisible control character %(code)s at position %(position)s: such characters cannot "
              "be kept in a text.")
            % {"code": f"U+{ord(match.group()):04X}", "position": match.start() + 1},
            code="control_character")


def clean_text(text, *, limit=MESSAGE_MAX_LENGTH):
    """`text` as it is stored, or ValidationError saying what is wrong with it."""
    text = normalised(text)
    # Zero-width and other format characters alone show nothing: such a text is as empty as a blank one.
    if not any(not character.isspace() and unicodedata.category(character) != "Cf" for character in text):
        raise ValidationError(_("Write the text first."), code="required")
    check_characters(text)
    if len(text) > limit:
        raise ValidationError(_("Keep it to %(limit)s characters; this text has %(count)s.")
                              % {"limit": limit, "count": len(text)}, code="max_length")
    return text


class TooManyMessages(ValidationError):
    """The employee sent QUESTION_RATE messages within the window; `retry_at` is when the next one may go."""

    def __init__(self, retry_at):
        self.retry_at = retry_at
        when = formats.time_format(timezone.localtime(retry_at), "H:i")
        super().__init__(_("You have sent several questions and objections in a short time. To keep the owner's "
                           "inbox readable, you can send the next one after %(time)s.") % {"time": when},
                         code="rate")


# Who may do what ------------------------------------------------------------------------------------------


def _check_employed(employee):
    if not employee.is_employed_on(timezone.localdate()):
        raise PermissionDenied(_("Your employment record is not active, so you cannot ask about guidelines."))


def check_may_ask(employee, version):
    """An employee asks about a published version of a live guideline that applies to them."""
    if version.published_at is None:
        raise ValidationError(_("You can only ask about a published version."), code="not_released")
    if version.guideline.retired_at:
        raise ValidationError(_("This guideline has been retired; there is nobody left to ask about it."),
                              code="retired")
    _check_employed(employee)
    if not version.guideline.includes(employee):
        raise PermissionDenied(_("This guideline does not apply to you, so you cannot ask about it."))


def check_may_object(employee, version):
    """An objection or exception request concerns the current version of a guideline that applies to the
    employee: the one they are asked to acknowledge."""
    if version.status != Version.Status.PUBLISHED or version.guideline.retired_at:
        raise ValidationError(
            _("Version %(number)s is not the current version of this guideline; only the current version can be "
              "objected to.") % {"number": version.number}, code="not_current")
    _check_employed(employee)
    if not version.guideline.includes(employee):
        raise PermissionDenied(_("This guideline does not apply to you, so you cannot object to it."))


def handles(user, guideline):
    """HR and the guideline's owner answer its questions."""
    return user is not None and user.is_active and (
        user.has_perm("guidelines.manage") or guideline.owner_id == user.pk)


def may_answer(user, question):
    """The owner or HR, unless the question is their own."""
    return handles(user, question.guideline) and question.employee.user_id != user.pk


def may_resolve(user, objection):
    return (user is not None and user.is_active and user.has_perm("guidelines.manage")
            and objection.employee.user_id != user.pk)


def handles_any(user):
    """Whether `user` has an inbox of questions: HR, or the owner of a guideline."""
    return user is not None and user.is_active and (
        user.has_perm("guidelines.manage") or Guideline.objects.filter(owner=user).exists())


def reads_every_question(user):
    """HR reads every thread; anyone else (an auditor too) only their own and those about guidelines they own."""
    return user is not None and user.is_active and user.has_perm("guidelines.manage")


def visible_questions(user):
    """The threads `user` may read: their own, those about guidelines they own, and every one for HR."""
    questions = Question.objects.select_related("guideline__owner", "version", "employee__user")
    if user is None or not user.is_active:
        return questions.none()
    if reads_every_question(user):
        return questions
    return questions.filter(Q(employee__user=user) | Q(guideline__owner=user))


def visible_objections(user):
    """The objections `user` may read: their own, those about guidelines they own, and every one for HR and
    auditors (they are evidence)."""
    objections = Objection.objects.select_related("guideline__owner", "version", "employee__user",
                                                  "resolution__resolved_by", "resolution__exemption")
    if user is None or not user.is_active:
        return objections.none()
    if user.has_perm("guidelines.manage") or user.has_perm("guidelines.audit"):
        return objections
    return objections.filter(Q(employee__user=user) | Q(guideline__owner=user))


def handled_questions(user):
    """The threads `user` answers: every one for HR, else those about the guidelines they own."""
    questions = Question.objects.select_related("guideline", "version", "employee__user")
    if user.has_perm("guidelines.manage"):
        return questions
    return questions.filter(guideline__owner=user)


def handled_objections(user):
    objections = Objection.objects.select_related("guideline", "version", "employee__user", "resolution")
    if user.has_perm("guidelines.manage"):
        return objections
    return objections.filter(guideline__owner=user)


# Threads and their state ------------------------------------------------------------------------------------


def with_state(questions):
    """Each question with its thread's state: `last_role` (who wrote last: a question is open while that
    is the employee), `last_at` and `first_text` (the question itself)."""
    messages = QuestionMessage.objects.filter(question=OuterRef("pk"))
    latest = messages.order_by("-written_at", "-pk")
    return questions.annotate(last_role=Subquery(latest.values("role")[:1]),
                              last_at=Subquery(latest.values("written_at")[:1]),
                              first_text=Subquery(messages.order_by("written_at", "pk").values("text")[:1]))


def is_open(question):
    return question.last_role == Role.EMPLOYEE


def resolution_of(objection):
    return objection.handling


def own_threads(employee):
    """(questions with their state, objections with HR's handling) of the employee, newest first."""
    questions = with_state(Question.objects.filter(employee=employee).select_related("guideline", "version"))
    objections = Objection.objects.filter(employee=employee).select_related(
        "guideline", "version", "resolution__exemption")
    return list(questions), list(objections)


# The guideline page asks for them on every view once there are some: compiled once per process.
_own_questions_about = PreparedQuery(
    Question, lambda employee, guideline: with_state(
        Question.objects.filter(employee=employee, guideline=guideline).select_related("version")), int, int)
_own_objections_about = PreparedQuery(
    Objection, lambda employee, guideline: Objection.objects.filter(employee=employee, guideline=guideline)
    .select_related("version", "resolution"), int, int)


def own_threads_about(employee, guideline):
    """own_threads about one guideline (its page), with each item's version and HR's handling."""
    return _own_questions_about(employee.pk, guideline.pk), _own_objections_about(employee.pk, guideline.pk)


# How many of each the page about one employee lists (the newest).
EMPLOYEE_PAGE_ROWS = 50


@dataclass(frozen=True)
class EmployeeThreads:
    questions: list  # with their state (with_state), newest first
    objections: list  # with HR's handling, newest first
    more_questions: bool  # the employee has more than are listed
    more_objections: bool
    every_question: bool  # False: only those about guidelines `by` owns are listed (reads_every_question)


def threads_of(employee, *, by):
    """The employee's questions and objections on the page HR and auditors read about them: of those `by` may
    read (visible_questions, visible_objections), the newest EMPLOYEE_PAGE_ROWS of each, in one query each."""
    require_evidence_reader(by)
    limit = EMPLOYEE_PAGE_ROWS
    own_questions = list(with_state(visible_questions(by).filter(employee=employee).select_related(None)
                                    .select_related("guideline", "version")).order_by("-asked_at", "-pk")[:limit + 1])
    own_objections = list(visible_objections(by).filter(employee=employee).select_related(None)
                          .select_related("guideline", "version", "resolution").order_by("-recorded_at", "-pk")
                          [:limit + 1])
    return EmployeeThreads(questions=own_questions[:limit], objections=own_objections[:limit],
                           more_questions=len(own_questions) > limit, more_objections=len(own_objections) > limit,
                           every_question=reads_every_question(by))


@dataclass
class OpenCounts:
    questions: int = 0
    objections: int = 0
    exceptions: int = 0

    @property
    def any(self):
        return bool(self.questions or self.objections or self.exceptions)


def open_counts(versions):
    """{version pk: OpenCounts}: the unanswered questions and unhandled objections and exception requests
    about each version (one query for each kind)."""
    counts = {version.pk: OpenCounts() for version in versions}
    for version_id, last_role in with_state(Question.objects.filter(version__in=list(counts))).values_list(
            "version_id", "last_role"):
        if last_role == Role.EMPLOYEE:
            counts[version_id].questions += 1
    for version_id, kind in Objection.objects.filter(version__in=list(counts), resolution__isnull=True).values_list(
            "version_id", "kind"):
        if kind == Kind.OBJECTION:
            counts[version_id].objections += 1
        else:
            counts[version_id].exceptions += 1
    return counts


def open_counts_of_major(version):
    """OpenCounts of the objections and exception requests (no questions) about any version of
    `version`'s major version that HR has not handled yet."""
    counts = OpenCounts()
    for kind in Objection.objects.filter(guideline=version.guideline_id, major=version.major,
                                         resolution__isnull=True).values_list("kind", flat=True):
        if kind == Kind.OBJECTION:
            counts.objections += 1
        else:
            counts.exceptions += 1
    return counts


def open_objections_of_major(version, employee_ids=None):
    """{employee pk: [open objections and exception requests]} about any version of `version`'s major
    version (acknowledgements of one count for all), for the employees given (default: all)."""
    objections = Objection.objects.filter(guideline=version.guideline_id, major=version.major,
                                          resolution__isnull=True).order_by("recorded_at", "pk")
    if employee_ids is not None:
        objections = objections.filter(employee__in=list(employee_ids))
    by_employee = {}
    for objection in objections.only("pk", "kind", "employee_id", "recorded_at"):
        by_employee.setdefault(objection.employee_id, []).append(objection)
    return by_employee


# Writing ----------------------------------------------------------------------------------------------------


def _locked_rate_check(employee):
    """Serialise this employee's messages (a row lock on the employee) and refuse one above QUESTION_RATE.
    Returns the moment to record."""
    list(Employee.objects.select_for_update().filter(pk=employee.pk).values_list("pk", flat=True))
    now = timezone.now()
    limit, window = settings.QUESTION_RATE
    since = now - timedelta(seconds=window)
    sent = sorted([
        *QuestionMessage.objects.filter(author=employee.user_id, role=Role.EMPLOYEE, written_at__gt=since)
        .values_list("written_at", flat=True),
        *Objection.objects.filter(employee=employee, recorded_at__gt=since).values_list("recorded_at", flat=True),
    ])
    if len(sent) >= limit:
        raise TooManyMessages(sent[len(sent) - limit] + timedelta(seconds=window))
    return now


def _text_shown(version, language):
    if language not in LANGUAGES:
        raise ValidationError(_("This guideline is available in Dutch (nl) and English (en) only."), code="language")
    text = content.released_texts([version])[version.pk].get(language)
    if text is None:
        raise ValidationError(_("This version has no text in the chosen language."), code="language")
    return text


def ask(*, employee, version, language, text):
    """The employee's question about `version`, read in `language`: a new thread. The owner is e-mailed."""
    text = clean_text(text)
    check_may_ask(employee, version)
    _text_shown(version, language)
    with transaction.atomic():
        now = _locked_rate_check(employee)
        question = Question.objects.create(employee=employee, guideline=version.guideline, version=version,
                                           language=language, asked_at=now)
        message = QuestionMessage.objects.create(question=question, author=employee.user, role=Role.EMPLOYEE,
                                                 text=text, written_at=now)
        _email_after_commit(EmailKind.QUESTION, message.pk)
    return question


def follow_up(*, question, employee, text):
    """The employee adds to their own thread (after an answer, or before one). The owner is e-mailed."""
    if question.employee_id != employee.pk:
        raise PermissionDenied(_("You can only add to your own questions."))
    text = clean_text(text)
    _check_employed(employee)
    with transaction.atomic():
        now = _locked_rate_check(employee)
        message = QuestionMessage.objects.create(question=question, author=employee.user, role=Role.EMPLOYEE,
                                                 text=text, written_at=now)
        _email_after_commit(EmailKind.QUESTION, message.pk)
    return message


def answer(*, question, by, text):
    """The owner's or HR's answer. The employee is e-mailed."""
    if not may_answer(by, question):
        raise PermissionDenied(_("Only the owner of this guideline and HR answer its questions."))
    text = clean_text(text)
    role = Role.OWNER if question.guideline.owner_id == by.pk else Role.HR
    with transaction.atomic():
        message = QuestionMessage.objects.create(question=question, author=by, role=role, text=text)
        _email_after_commit(EmailKind.ANSWER, message.pk)
    return message


def statement(kind, *, title, number, language):
    """The sentence an objection or exception request records, in the language of the text shown."""
    with translation.override(language):
        if kind == Kind.OBJECTION:
            return _("I have read the %(title)s, version %(number)s, and I object to it.") % {
                "title": title, "number": number}
        return _("I ask to be exempted from the %(title)s, version %(number)s.") % {"title": title, "number": number}


def record_objection(*, employee, version, language, kind, reason, meta):
    """An objection or exception request about the current version, read in `language`, with the evidence
    of the request (`meta`: services.RequestMeta). It does not count as an acknowledgement. The owner is
    e-mailed; HR handles it (resolve)."""
    if kind not in Kind.values:
        raise ValidationError(_("Choose an objection or an exception request."), code="kind")
    reason = clean_text(reason)
    check_may_object(employee, version)
    text = _text_shown(version, language)
    with transaction.atomic():
        now = _locked_rate_check(employee)
        employee = Employee.objects.select_related("user", "department").get(pk=employee.pk)
        first_opened_at = (Reading.objects.filter(employee=employee, version=version)
                           .values_list("first_opened_at", flat=True).first())
        objection = Objection.objects.create(
            kind=kind, employee=employee, guideline=version.guideline, version=version, major=version.major,
            language=text.language, content_hash=text.content_hash,
            statement=statement(kind, title=text.title, number=version.number, language=text.language),
            reason=reason, recorded_at=now, first_opened_at=first_opened_at, auth_method=meta.auth_method[:40],
            ip_address=minimised_ip(meta.ip_address),
            user_agent=meta.user_agent[:512] if settings.EVIDENCE_USER_AGENT else "",
            sso_subject=meta.sso_subject[:255], sso_amr=meta.sso_amr[:200], sso_acr=meta.sso_acr[:200],
            employee_number=employee.employee_number, employee_name=employee.full_name[:300],
            department_name=employee.department.name if employee.department_id else "",
        )
        record_audit_event(action=AuditEvent.Action.OBJECTION_RECORDED, actor=employee.user,
                           guideline=version.guideline, version=version, objection=objection.pk, kind=kind,
                           employee_number=employee.employee_number)
        webhook_events.emit(webhook_events.Event.OBJECTION_RECORDED, f"objection.recorded:{objection.pk}",
                            webhook_events.objection_recorded(objection), at=now)
        _email_after_commit(EmailKind.OBJECTION, objection.pk)
    return objection


def resolve(*, objection, by, outcome, note, ends_on=None):
    """HR's handling of an objection or exception request: answered and closed, or for an exception
    request an exemption granted (from today, until `ends_on` if given) or declined; `note` is HR's answer
    to the employee. Recorded beside the objection, which never changes. The employee is e-mailed."""
    require_permission(by, "guidelines.manage")
    if objection.employee.user_id == by.pk:
        raise PermissionDenied(_("Someone else in HR handles your own objection."))
    if outcome not in OUTCOMES[objection.kind]:
        raise ValidationError(_("Choose how this %(kind)s was handled.") % {"kind": objection.get_kind_display()},
                              code="outcome")
    note = clean_text(note)
    try:
        with transaction.atomic():
            exemption = None
            if outcome == Outcome.EXEMPTED:
                exemption = grant_exemption(employee=objection.employee, guideline=objection.guideline, by=by,
                                            reason=note, ends_on=ends_on)
            resolution = ObjectionResolution.objects.create(objection=objection, outcome=outcome, note=note,
                                                            exemption=exemption, resolved_by=by)
            record_audit_event(action=AuditEvent.Action.OBJECTION_RESOLVED, actor=by, guideline=objection.guideline,
                               version=objection.version, objection=objection.pk, kind=objection.kind,
                               outcome=outcome, employee_number=objection.employee.employee_number,
                               exemption=exemption.pk if exemption else None)
            webhook_events.emit(webhook_events.Event.OBJECTION_RESOLVED, f"objection.resolved:{objection.pk}",
                                webhook_events.objection_resolved(resolution), at=resolution.resolved_at)
            _email_after_commit(EmailKind.RESOLUTION, resolution.pk)
    except IntegrityError:
        raise ValidationError(_("This has been handled already."), code="handled") from None
    return resolution


def owner_as_employee(guideline):
    """The owner's employee record (to e-mail and log the e-mail by), or None."""
    return Employee.objects.filter(user=guideline.owner_id, user__is_active=True).select_related("user").first()


def _email_after_commit(kind, pk):
    # After the commit: a rolled-back message e-mails nobody.
    transaction.on_commit(lambda: _queue(kind, pk))


def _queue(kind, pk):
    try:
        tasks.send_question_emails.delay(kind, pk)
    except Exception:  # the message stands; the owner or HR finds it on the pages
        logger.exception("Could not queue the %s e-mail of %s", kind, pk)
