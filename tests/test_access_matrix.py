"""Who may open what: a role × URL matrix over the whole URL configuration.

After tira-io/tira's ``api_access_matrix.py``: every row is ``route(id, pattern, url, method,
{role: expected})`` and ``test_every_url_pattern_is_in_the_matrix`` walks the resolver (our
patterns, allauth's and the admin's, recursively) and fails for any pattern without a row. A new
URL therefore cannot ship without someone deciding, role by role, who gets what.

Expectations are the intended, secure behaviour, not whatever the code does today:

- anonymous → 302 to the sign-in page for every page that is not public (public: sign-in,
  password reset, the language switch, healthz, static files);
- a wrong role → 403. 404 only where the code deliberately hides that something exists: an
  employee's receipt (``my/acknowledgements/<pk>/``) is looked up among their own
  acknowledgements only, so someone else's receipt is "not found";
- the right role → 200, or 302 after a successful POST (400 for a deliberately invalid POST: it
  proves the request got past the access check without doing expensive work);
- views that accept only POST get a GET row too (405 once signed in);
- the admin: anonymous and non-staff are sent to a sign-in page (or refused with 403), staff HR
  sees only what the HR group's permissions allow, the superuser sees everything, and evidence
  (acknowledgements, readings, audit events) is read-only even for the superuser.

How to add a row when you add a URL: add a ``route(...)`` to ``ROWS`` (or, for a model registered
in the admin, an entry to ``ADMIN_MODELS`` and, if it needs one, an object in ``world``). Name the
pattern by its URL name ("guidelines:receipt", "admin:index") or, when it has none, by its route
("healthz/"). Start from ``expect()`` (anonymous → sign-in, everyone else → 403) and open it up
role by role; the id appears in the test name: ``hr_draft_publish-POST-employee``.

The cast (tests/conftest.py's people plus a superuser) and the objects the patterns need are created
once per module (``world``) inside a transaction that is rolled back at the end; every case runs in a
savepoint inside it (this module's ``db``), so a POST that changes something does not leak into the
next case. Sessions are created once per role and reused by cookie. Certificates are real PDFs.
"""

import dataclasses
import hashlib
import logging
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client, override_settings
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone, translation

from guidelines import api_tokens, comprehension, publishing, questions, services, webhooks
from guidelines.models import AuditEvent, Department, QuizAttempt, Reading, Report

from .factories import make_draft, make_employee, make_guideline, make_user, publish, sign_in

# Roles ---------------------------------------------------------------------------------------------

ROLES = ("anonymous", "employee", "manager", "hr", "auditor", "outsider", "no_employee", "superuser")
GROUPS = {
    # Everyone with an employee record (Alice, Bob, Otto).
    "employees": ("employee", "manager", "outsider"),
    # Everyone who sees everyone's evidence: HR, auditors, and the superuser (who has every permission).
    "evidence": ("hr", "auditor", "superuser"),
    # guidelines.manage, and the admin's staff: HR and the superuser.
    "hr_staff": ("hr", "superuser"),
}


# Expected answers ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Expect:
    statuses: tuple[int, ...]
    locations: tuple[str, ...] = ()  # for redirects: the Location path must start with one of these
    label: str = ""

    def problem(self, response):
        """None if the response is as expected, otherwise what was wrong."""
        location = response.headers.get("Location", "")
        if response.status_code not in self.statuses:
            got = f"{response.status_code}" + (f" → {location}" if location else "")
            return f"got {got}, expected {self}"
        if self.locations and 300 <= response.status_code < 400:
            path = urlsplit(location).path
            if not any(path.startswith(self._resolve(prefix)) for prefix in self.locations):
                return f"got {response.status_code} → {location}, expected {self}"
        return None

    @staticmethod
    def _resolve(prefix):
        try:
            return reverse(prefix)
        except NoReverseMatch:
            return prefix

    def __str__(self):
        if self.label:
            return self.label
        text = " or ".join(str(status) for status in self.statuses)
        if self.locations:
            text += " → " + " or ".join(self._resolve(prefix) for prefix in self.locations)
        return text


OK = Expect((200,))
CREATED = Expect((302,), label="302 (done)")  # a successful POST redirects
INVALID = Expect((400,))  # a deliberately invalid POST got past the access check
NO_CONTENT = Expect((204,))  # a report taken
FORBIDDEN = Expect((403,))
HIDDEN = Expect((404,), label="404 (existence hidden)")
NOT_FOUND = Expect((404,))
NOT_ALLOWED = Expect((405,))
REDIRECT = Expect((301, 302), label="a redirect")
LOGIN = Expect((302,), ("account_login",), label="302 → sign-in page")
# The admin sends anonymous visitors to its own login page, which hands over to allauth's (row admin_login).
ADMIN_ANONYMOUS = Expect((302,), ("account_login", "admin:login"), label="302 → sign-in page")
# Signed in but not staff: sent to a sign-in page, or refused.
ADMIN_LOGIN = Expect((302, 403), ("account_login", "admin:login"), label="302 → sign-in page, or 403")
GONE = Expect((403, 404), label="403 or 404 (removed)")


def expect(default=FORBIDDEN, *, anonymous=LOGIN, **roles):
    """{role: Expect} for every role: `default` unless a role (or a group of GROUPS) says otherwise.
    Groups are applied first, single roles last, so `expect(evidence=OK, auditor=FORBIDDEN)` works."""
    table = dict.fromkeys(ROLES, default)
    table["anonymous"] = anonymous
    for name, value in roles.items():
        if name in GROUPS:
            table.update(dict.fromkeys(GROUPS[name], value))
    for name, value in roles.items():
        if name in GROUPS:
            continue
        if name not in ROLES:
            raise ValueError(f"unknown role or group {name!r}")
        table[name] = value
    return table


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    pattern: str  # the URL name ("guidelines:receipt") or, for a pattern without a name, its route
    url: Callable
    method: str
    expected: dict
    data: Callable | None = None
    # Patterns this row's pattern hides: they come later in the URL configuration with the same
    # address, so nobody reaches them (allauth's e-mail pages behind our 404s).
    shadows: tuple = ()
    settings: dict = dataclasses.field(default_factory=dict)  # for this row's requests


def route(id, pattern, url, method, expected, data=None, shadows=(), settings=None):
    """One row. `url` and `data` are strings/dicts or callables taking the world."""
    url_factory = url if callable(url) else (lambda world, url=url: url)
    data_factory = data if callable(data) or data is None else (lambda world, data=data: data)
    return Row(id, pattern, url_factory, method, expected, data_factory, tuple(shadows), settings or {})


def url(name, *attrs):
    """A URL factory: reverse(name) with the world's attributes as arguments ("ack_alice.pk")."""

    def factory(world):
        args = []
        for attr in attrs:
            value = world
            for part in attr.split("."):
                value = getattr(value, part)
            args.append(value)
        return reverse(name, args=args)

    return factory


# The application's pages ---------------------------------------------------------------------------

EMPLOYEE_PAGE = expect(employees=OK)
READABLE = expect(employees=OK, evidence=OK)  # a guideline for everyone: employees, HR, auditors
DEPARTMENT_ONLY = expect(employee=OK, manager=OK, evidence=OK)  # Otto (Finance) is outside its audience
HR_PAGE = expect(hr_staff=OK)
HR_POST = expect(hr_staff=CREATED)
EVIDENCE_PAGE = expect(evidence=OK)
POST_ONLY = expect(NOT_ALLOWED)  # a GET on a POST-only view, once signed in


# Arjen's auditor pack as stored in the world (the access checks never look inside it).
REPORT_PDF = b"%PDF-1.7\n% access matrix\n%%EOF\n"


def _acknowledge_data(world):
    return {"version": world.ops_v1.pk, "language": "en", "channel": "web", "via": "", "confirm": "on"}


def _draft_data(world):
    return {"leading_language": "nl", "effective_date": "", "title_nl": "Richtlijn sociale media",
            "body_nl": "# Richtlijn\n\nWees respectvol.\n", "summary_nl": "", "title_en": "Social media guideline",
            "body_en": "# Guideline\n\nBe respectful.\n", "summary_en": ""}


def _guideline_data(world):
    return {"title_nl": "Sociale media", "title_en": "Social media",
            "slug": "social-media", "audience_everyone": "on", "due_days": "30",
            "owner_email": world.hilde.email}


def _approve_data(world):
    return {"action": "approve", "fingerprint": publishing.fingerprint_of(world.draft)}


def _confirmed_approval_data(world):
    return {"fingerprint": publishing.fingerprint_of(world.under_review), "confirm": "on"}


def _consent_data(world):
    return {"fingerprint": publishing.fingerprint_of(world.consented), "consented_on": timezone.localdate().isoformat(),
            "reference": "OR-2026-15", "note": "", "confirm": "on"}


# The one-click approval of old pages leads an approver to the confirmation, deciding nothing.
TO_CONFIRMATION = Expect((302,), ("/hr/drafts/",), label="302 → the confirmation page")
# Approvers (Bob; the superuser, who wrote none of it) decide on a draft waiting for approval. HR is no approver.
APPROVER_PAGE = expect(manager=OK, superuser=OK)
APPROVER_POST = expect(manager=CREATED, superuser=CREATED)


GUIDELINE_ROWS = [
    # Employees ------------------------------------------------------------------------------------
    route("home", "guidelines:home", url("guidelines:home"), "GET", EMPLOYEE_PAGE),
    route("history", "guidelines:history", url("guidelines:history"), "GET", EMPLOYEE_PAGE),
    # A receipt is looked up among the signed-in employee's own acknowledgements: anyone else's is a 404.
    route("receipt", "guidelines:receipt", url("guidelines:receipt", "ack_alice.pk"), "GET",
          expect(employee=OK, manager=HIDDEN, outsider=HIDDEN)),
    # IDOR: Otto's receipt in Alice's session; Bob is not Otto's manager either.
    route("receipt_of_otto", "guidelines:receipt", url("guidelines:receipt", "ack_otto.pk"), "GET",
          expect(outsider=OK, employee=HIDDEN, manager=HIDDEN)),
    route("detail", "guidelines:detail", url("guidelines:detail", "everyone.slug"), "GET", READABLE),
    route("detail_department_only", "guidelines:detail", url("guidelines:detail", "ops.slug"), "GET",
          DEPARTMENT_ONLY),
    route("versions", "guidelines:versions", url("guidelines:versions", "everyone.slug"), "GET", READABLE),
    route("versions_department_only", "guidelines:versions", url("guidelines:versions", "ops.slug"), "GET",
          DEPARTMENT_ONLY),
    route("acknowledge", "guidelines:acknowledge", url("guidelines:acknowledge", "ops.slug"), "POST",
          expect(employee=CREATED, manager=CREATED), data=_acknowledge_data),
    # A GET (a reload, a bookmark) is sent to the guideline's page, which decides who may see it.
    route("acknowledge", "guidelines:acknowledge", url("guidelines:acknowledge", "ops.slug"), "GET",
          expect(REDIRECT)),
    # The reading page's reports: only of a version the employee opened (Alice opened it, from her
    # guideline page); another employee's report is refused as such (400), without an employee record 403.
    route("reading_progress", "guidelines:reading_progress", url("guidelines:reading_progress", "ops.slug"), "POST",
          expect(employee=NO_CONTENT, manager=INVALID, outsider=INVALID),
          data=lambda world: {"version": world.ops_v1.pk, "seconds": "5", "percent": "50"}),
    route("reading_progress", "guidelines:reading_progress", url("guidelines:reading_progress", "ops.slug"), "GET",
          expect(NOT_ALLOWED)),
    # HR: guidelines, drafts, review, publication ------------------------------------------------------
    route("hr_guidelines", "guidelines:hr_guidelines", url("guidelines:hr_guidelines"), "GET", HR_PAGE),
    route("hr_guideline_new", "guidelines:hr_guideline_new", url("guidelines:hr_guideline_new"), "GET", HR_PAGE),
    route("hr_guideline_new", "guidelines:hr_guideline_new", url("guidelines:hr_guideline_new"), "POST", HR_POST,
          data=lambda world: {"title_nl": "Onkosten", "title_en": "Expenses", "slug": "expenses",
                              "audience_everyone": "on", "due_days": "30",
                              "owner_email": world.hilde.email}),
    route("hr_guideline", "guidelines:hr_guideline", url("guidelines:hr_guideline", "everyone.slug"), "GET",
          HR_PAGE),
    route("hr_guideline_edit", "guidelines:hr_guideline_edit", url("guidelines:hr_guideline_edit", "everyone.slug"),
          "GET", HR_PAGE),
    route("hr_guideline_edit", "guidelines:hr_guideline_edit", url("guidelines:hr_guideline_edit", "everyone.slug"),
          "POST", HR_POST, data=_guideline_data),
    route("hr_guideline_retire", "guidelines:hr_guideline_retire",
          url("guidelines:hr_guideline_retire", "everyone.slug"), "GET", HR_PAGE),
    route("hr_guideline_retire", "guidelines:hr_guideline_retire",
          url("guidelines:hr_guideline_retire", "everyone.slug"), "POST", HR_POST,
          data={"reason": "Replaced by the communication guideline."}),
    route("hr_draft_new", "guidelines:hr_draft_new", url("guidelines:hr_draft_new", "everyone.slug"), "GET",
          HR_PAGE),
    route("hr_draft_new", "guidelines:hr_draft_new", url("guidelines:hr_draft_new", "everyone.slug"), "POST",
          HR_POST, data=_draft_data),
    route("hr_exemption_grant", "guidelines:hr_exemption_grant",
          url("guidelines:hr_exemption_grant", "everyone.slug"), "POST", HR_POST,
          data={"employee_number": "E0001", "reason": "Long-term leave."}),
    # The exemption and extension forms are pages of their own too (find the employee by name).
    route("hr_exemption_grant", "guidelines:hr_exemption_grant",
          url("guidelines:hr_exemption_grant", "everyone.slug"), "GET", HR_PAGE),
    route("hr_extension_grant", "guidelines:hr_extension_grant",
          url("guidelines:hr_extension_grant", "everyone.slug"), "POST", HR_POST,
          data=lambda world: {"employee_number": "E0002", "reason": "Back from leave.",
                              "due_date": (timezone.localdate() + timedelta(days=120)).isoformat()}),
    route("hr_extension_grant", "guidelines:hr_extension_grant",
          url("guidelines:hr_extension_grant", "everyone.slug"), "GET", HR_PAGE),
    route("hr_exemption_revoke", "guidelines:hr_exemption_revoke",
          url("guidelines:hr_exemption_revoke", "exemption.pk"), "POST", HR_POST),
    # GET asks for confirmation; only the POST revokes.
    route("hr_exemption_revoke", "guidelines:hr_exemption_revoke",
          url("guidelines:hr_exemption_revoke", "exemption.pk"), "GET", HR_PAGE),
    route("hr_draft_preview", "guidelines:hr_draft_preview", url("guidelines:hr_draft_preview"), "POST",
          expect(hr_staff=OK), data={"body": "# Preview\n\nText."}),
    route("hr_draft_preview", "guidelines:hr_draft_preview", url("guidelines:hr_draft_preview"), "GET", POST_ONLY),
    # Reviewers (HR and approvers) read drafts.
    route("hr_draft", "guidelines:hr_draft", url("guidelines:hr_draft", "draft.pk"), "GET",
          expect(hr_staff=OK, manager=OK)),
    route("hr_draft_questions", "guidelines:hr_draft_questions", url("guidelines:hr_draft_questions", "draft.pk"),
          "GET", HR_PAGE),
    route("hr_draft_questions", "guidelines:hr_draft_questions", url("guidelines:hr_draft_questions", "draft.pk"),
          "POST", HR_POST, data=lambda world: {
              "q1_text_nl": "Vraag?", "q1_text_en": "Question?", "q1_choice1_nl": "Ja", "q1_choice1_en": "Yes",
              "q1_choice2_nl": "Nee", "q1_choice2_en": "No", "q1_correct": "1", "q1_hint_nl": "Regel 1.",
              "q1_hint_en": "Rule 1."}),
    route("hr_draft_edit", "guidelines:hr_draft_edit", url("guidelines:hr_draft_edit", "draft.pk"), "GET", HR_PAGE),
    route("hr_draft_edit", "guidelines:hr_draft_edit", url("guidelines:hr_draft_edit", "draft.pk"), "POST", HR_POST,
          data=_draft_data),
    # Approving: an approver (Bob; the superuser, who did not write it), on its confirmation page only.
    route("hr_draft_review_approve", "guidelines:hr_draft_review", url("guidelines:hr_draft_review", "draft.pk"),
          "POST", expect(manager=TO_CONFIRMATION, superuser=TO_CONFIRMATION), data=_approve_data),
    route("hr_draft_approve", "guidelines:hr_draft_approve", url("guidelines:hr_draft_approve", "under_review.pk"),
          "GET", APPROVER_PAGE),
    route("hr_draft_approve", "guidelines:hr_draft_approve", url("guidelines:hr_draft_approve", "under_review.pk"),
          "POST", APPROVER_POST, data=_confirmed_approval_data),
    route("hr_draft_send_back", "guidelines:hr_draft_send_back",
          url("guidelines:hr_draft_send_back", "under_review.pk"), "GET", APPROVER_PAGE),
    route("hr_draft_send_back", "guidelines:hr_draft_send_back",
          url("guidelines:hr_draft_send_back", "under_review.pk"), "POST", APPROVER_POST,
          data={"comment": "Please mention the reporting desk."}),
    route("approvals", "guidelines:approvals", url("guidelines:approvals"), "GET", APPROVER_PAGE),
    # Asking for approval: HR only (an approver is not an author).
    route("hr_draft_review_request", "guidelines:hr_draft_review", url("guidelines:hr_draft_review", "draft.pk"),
          "POST", HR_POST, data={"action": "request"}),
    route("hr_draft_review", "guidelines:hr_draft_review", url("guidelines:hr_draft_review", "draft.pk"), "GET",
          POST_ONLY),
    route("hr_draft_publish", "guidelines:hr_draft_publish", url("guidelines:hr_draft_publish", "approved.pk"),
          "GET", HR_PAGE),
    route("hr_draft_publish", "guidelines:hr_draft_publish", url("guidelines:hr_draft_publish", "approved.pk"),
          "POST", HR_POST, data={"change": "editorial", "confirm": "on"}),
    # The works council's consent to a draft: recorded (again) and withdrawn by HR only, each on its form.
    route("hr_draft_consent", "guidelines:hr_draft_consent", url("guidelines:hr_draft_consent", "consented.pk"),
          "GET", HR_PAGE),
    route("hr_draft_consent", "guidelines:hr_draft_consent", url("guidelines:hr_draft_consent", "consented.pk"),
          "POST", HR_POST, data=_consent_data),
    route("hr_draft_consent_withdraw", "guidelines:hr_draft_consent_withdraw",
          url("guidelines:hr_draft_consent_withdraw", "consented.pk"), "GET", HR_PAGE),
    route("hr_draft_consent_withdraw", "guidelines:hr_draft_consent_withdraw",
          url("guidelines:hr_draft_consent_withdraw", "consented.pk"), "POST", HR_POST,
          data={"reason": "Recorded on the wrong draft."}),
    route("hr_import", "guidelines:hr_import", url("guidelines:hr_import"), "GET", HR_PAGE),
    # No file: a 400 for HR (the import itself has its own tests).
    route("hr_import", "guidelines:hr_import", url("guidelines:hr_import"), "POST", expect(hr_staff=INVALID),
          data=lambda world: {"dry_run": "on"}),
    # A missing (or forged) reference to a dry run: a 400 for HR, nothing applied.
    route("hr_import_apply", "guidelines:hr_import_apply", url("guidelines:hr_import_apply"), "POST",
          expect(hr_staff=INVALID), data={"token": "forged"}),
    route("hr_import_apply", "guidelines:hr_import_apply", url("guidelines:hr_import_apply"), "GET", POST_ONLY),
    # One employee, and the employee search: HR and auditors.
    route("hr_employees", "guidelines:hr_employees", url("guidelines:hr_employees"), "GET", EVIDENCE_PAGE),
    route("hr_employee", "guidelines:hr_employee", url("guidelines:hr_employee", "alice.pk"), "GET", EVIDENCE_PAGE),
    route("hr_employee_receipt", "guidelines:hr_employee_receipt",
          url("guidelines:hr_employee_receipt", "alice.pk", "ack_alice.pk"), "GET", EVIDENCE_PAGE),
    # Otto's page in Alice's session, or in her manager Bob's: refused like any employee's.
    route("hr_employee_of_otto", "guidelines:hr_employee", url("guidelines:hr_employee", "otto.pk"), "GET",
          EVIDENCE_PAGE),
    route("hr_nudge", "guidelines:hr_nudge", url("guidelines:hr_nudge", "everyone.slug"), "POST", HR_POST,
          data=lambda world: {"version": world.v1.pk}),
    # The confirmation page of "remind now".
    route("hr_nudge", "guidelines:hr_nudge", url("guidelines:hr_nudge", "everyone.slug"), "GET", HR_PAGE),
    route("hr_notifications", "guidelines:hr_notifications", url("guidelines:hr_notifications"), "GET", HR_PAGE),
    # Webhook subscribers (HR only): adding answers with the page that shows the secret once (200).
    route("hr_webhooks", "guidelines:hr_webhooks", url("guidelines:hr_webhooks"), "GET", HR_PAGE),
    route("hr_webhook_new", "guidelines:hr_webhook_new", url("guidelines:hr_webhook_new"), "GET", HR_PAGE),
    route("hr_webhook_new", "guidelines:hr_webhook_new", url("guidelines:hr_webhook_new"), "POST",
          expect(hr_staff=OK), data={"name": "GRC", "url": "https://grc.example.com/hooks",
                                     "events": ["version.published"]}),
    route("hr_webhook", "guidelines:hr_webhook", url("guidelines:hr_webhook", "webhook.pk"), "GET", HR_PAGE),
    route("hr_webhook_disable", "guidelines:hr_webhook_disable", url("guidelines:hr_webhook_disable", "webhook.pk"),
          "GET", HR_PAGE),
    route("hr_webhook_disable", "guidelines:hr_webhook_disable", url("guidelines:hr_webhook_disable", "webhook.pk"),
          "POST", HR_POST),
    route("hr_webhook_enable", "guidelines:hr_webhook_enable", url("guidelines:hr_webhook_enable", "webhook.pk"),
          "GET", HR_PAGE),
    route("hr_webhook_enable", "guidelines:hr_webhook_enable", url("guidelines:hr_webhook_enable", "webhook.pk"),
          "POST", HR_POST),
    # Dashboards (HR and auditors) and the manager's team -------------------------------------------------
    route("dashboard_overview", "guidelines:dashboard_overview", url("guidelines:dashboard_overview"), "GET",
          EVIDENCE_PAGE),
    route("dashboard_guideline", "guidelines:dashboard_guideline",
          url("guidelines:dashboard_guideline", "everyone.slug"), "GET", EVIDENCE_PAGE),
    route("dashboard_export", "guidelines:dashboard_export", url("guidelines:dashboard_export", "everyone.slug"),
          "GET", EVIDENCE_PAGE),
    route("team", "guidelines:team", url("guidelines:team"), "GET", expect(manager=OK)),
    # Bob's team is Alice: a guideline for Operations only still lists only his own reports.
    route("team_department_only", "guidelines:team", lambda world: reverse("guidelines:team") + "?guideline=ops",
          "GET", expect(manager=OK)),
    # Reports (auditors and HR) ---------------------------------------------------------------------------
    route("report_pack", "guidelines:report_pack", url("guidelines:report_pack"), "GET", EVIDENCE_PAGE),
    # Invalid on purpose (no guideline): generating a real pack is for tests/test_reports.py.
    route("report_pack", "guidelines:report_pack", url("guidelines:report_pack"), "POST",
          expect(evidence=INVALID), data={"language": "en"}),
    route("report_verify", "guidelines:report_verify", url("guidelines:report_verify"), "GET", EVIDENCE_PAGE),
    route("report_verify", "guidelines:report_verify", url("guidelines:report_verify"), "POST", EVIDENCE_PAGE,
          data=lambda world: {"code": world.report.verification_code}),
    # Uploading the report's own file: "genuine".
    route("report_verify_upload", "guidelines:report_verify", url("guidelines:report_verify"), "POST",
          EVIDENCE_PAGE, data=lambda world: {"file": SimpleUploadedFile("pack.pdf", REPORT_PDF, "application/pdf")}),
    # The public check (no account): open to all, signed in or not; it shows no personal data.
    route("public_verify", "guidelines:public_verify", url("guidelines:public_verify"), "GET",
          expect(OK, anonymous=OK)),
    route("public_verify", "guidelines:public_verify", url("guidelines:public_verify"), "POST",
          expect(OK, anonymous=OK),
          data=lambda world: {"code": world.report.verification_code}),
    # Arjen's pack: HR and auditors see every report; anyone else gets a 403 (the code is no secret on a PDF).
    route("report_status", "guidelines:report_status", url("guidelines:report_status", "report.verification_code"),
          "GET", EVIDENCE_PAGE),
    route("report_download", "guidelines:report_download",
          url("guidelines:report_download", "report.verification_code"), "GET", EVIDENCE_PAGE),
    # Certificates: one's own, or anyone's for HR and auditors.
    route("report_certificate", "guidelines:report_certificate", url("guidelines:report_certificate", "ack_alice.pk"),
          "GET", expect(evidence=OK, employee=OK)),
    # IDOR: Otto's certificate in Alice's (and Bob's) session.
    route("report_certificate_of_otto", "guidelines:report_certificate",
          url("guidelines:report_certificate", "ack_otto.pk"), "GET", expect(evidence=OK, outsider=OK)),
    # Questions and objections (guidelines/questions.py) ----------------------------------------------------
    # Asking the owner and objecting: an employee the guideline applies to (Otto is outside Operations').
    route("ask", "guidelines:ask", url("guidelines:ask", "everyone.slug"), "GET", EMPLOYEE_PAGE),
    route("ask_department_only", "guidelines:ask", url("guidelines:ask", "ops.slug"), "GET",
          expect(employee=OK, manager=OK)),
    route("ask", "guidelines:ask", url("guidelines:ask", "everyone.slug"), "POST", expect(employees=CREATED),
          data=lambda world: {"version": world.v1.pk, "language": "en", "text": "May I share the town hall?"}),
    route("object", "guidelines:object", url("guidelines:object", "everyone.slug"), "GET", EMPLOYEE_PAGE),
    route("object_department_only", "guidelines:object", url("guidelines:object", "ops.slug"), "POST",
          expect(employee=CREATED, manager=CREATED),
          data=lambda world: {"version": world.ops_v1.pk, "language": "en", "kind": "exception",
                              "reason": "I am on long-term leave."}),
    route("my_questions", "guidelines:my_questions", url("guidelines:my_questions"), "GET", EMPLOYEE_PAGE),
    # The inbox: HR and the owners of guidelines (Hilde owns both); nobody else.
    route("question_inbox", "guidelines:question_inbox", url("guidelines:question_inbox"), "GET", HR_PAGE),
    # IDOR: Alice's thread is hers, the owner's (Hilde) and HR's; anyone else's session does not find it.
    route("question", "guidelines:question", url("guidelines:question", "question.pk"), "GET",
          expect(HIDDEN, employee=OK, hr_staff=OK)),
    route("question", "guidelines:question", url("guidelines:question", "question.pk"), "POST",
          expect(HIDDEN, employee=CREATED, hr_staff=CREATED), data={"text": "Thank you, one more thing."}),
    # Alice's objection is evidence: auditors read it too; only HR handles it (Alice may not handle her own).
    route("objection", "guidelines:objection", url("guidelines:objection", "objection.pk"), "GET",
          expect(HIDDEN, employee=OK, evidence=OK)),
    route("objection", "guidelines:objection", url("guidelines:objection", "exception_request.pk"), "POST",
          expect(HIDDEN, employee=FORBIDDEN, auditor=FORBIDDEN, hr_staff=CREATED),
          data={"outcome": "declined", "note": "Everyone acknowledges this one."}),
]

# Public pages, sign-in (allauth) ---------------------------------------------------------------------

PUBLIC = expect(OK, anonymous=OK)
# allauth sends signed-in users from the sign-in and sign-up pages to the home page.
SIGNED_OUT_ONLY = expect(REDIRECT, anonymous=OK)
SIGNED_IN_PAGE = expect(OK)

ACCOUNT_ROWS = [
    route("set_language", "set_language", url("set_language"), "POST", expect(REDIRECT, anonymous=REDIRECT),
          data={"language": "en", "next": "/accounts/login/"}),
    route("healthz", "healthz/", "/healthz/", "GET", PUBLIC),
    # Not a URL pattern: WhiteNoise answers before the URL resolver. Tests have no collectstatic, so
    # WhiteNoise serves from the finders here, as in development.
    route("static", None, lambda world: "/" + settings.STATIC_URL.strip("/") + "/css/app.css", "GET",
          PUBLIC, settings={"WHITENOISE_USE_FINDERS": True}),
    route("account_login", "account_login", url("account_login"), "GET", SIGNED_OUT_ONLY),
    route("account_logout", "account_logout", url("account_logout"), "POST", expect(REDIRECT, anonymous=REDIRECT)),
    route("account_inactive", "account_inactive", url("account_inactive"), "GET", PUBLIC),
    # Sign-up is closed (accounts come from the HR import): the page says so; tests/views/test_accounts.py
    # checks that a POST makes no account.
    route("account_signup", "account_signup", url("account_signup"), "GET", SIGNED_OUT_ONLY),
    route("account_reauthenticate", "account_reauthenticate", url("account_reauthenticate"), "GET",
          SIGNED_IN_PAGE),
    # Reauthentication by e-mail code needs a verified allauth e-mail address; nobody here has one
    # (addresses come from the HR import), so both pages send you back to reauthenticate by password.
    route("account_request_reauthentication_code", "account_request_reauthentication_code",
          url("account_request_reauthentication_code"), "GET",
          expect(Expect((302,), ("account_reauthenticate",)))),
    route("account_confirm_reauthentication_code", "account_confirm_reauthentication_code",
          url("account_confirm_reauthentication_code"), "GET", expect(REDIRECT)),
    # Login by code is not enabled: nothing to confirm, back to the sign-in page (home when signed in).
    route("account_confirm_login_code", "account_confirm_login_code", url("account_confirm_login_code"), "GET",
          expect(REDIRECT, anonymous=LOGIN)),
    # E-mail addresses come from the HR import: allauth's e-mail management pages are replaced by a 404
    # (intranet/urls.py), before anyone signs in.
    route("account_email", "accounts/email/", "/accounts/email/", "GET", expect(GONE, anonymous=GONE),
          shadows=["account_email"]),
    route("account_email", "accounts/email/", "/accounts/email/", "POST", expect(GONE, anonymous=GONE),
          data={"email": "mallory@example.com", "action_add": ""}),
    route("account_email_verification_sent", "accounts/confirm-email/", "/accounts/confirm-email/", "GET",
          expect(GONE, anonymous=GONE), shadows=["account_email_verification_sent"]),
    route("account_confirm_email", r"^accounts/confirm-email/(?P<key>[-:\w]+)/$",
          "/accounts/confirm-email/not-a-key/", "GET", expect(GONE, anonymous=GONE),
          shadows=["account_confirm_email"]),
    route("account_change_password", "account_change_password", url("account_change_password"), "GET",
          SIGNED_IN_PAGE),
    # Everyone has a password: "set" hands over to "change".
    route("account_set_password", "account_set_password", url("account_set_password"), "GET", expect(REDIRECT)),
    route("account_reset_password", "account_reset_password", url("account_reset_password"), "GET", PUBLIC),
    route("account_reset_password_done", "account_reset_password_done", url("account_reset_password_done"), "GET",
          PUBLIC),
    # A made-up key: the page says the link is invalid.
    route("account_reset_password_from_key", "account_reset_password_from_key",
          lambda world: reverse("account_reset_password_from_key", kwargs={"uidb36": "3", "key": "abc-def"}), "GET",
          PUBLIC),
    route("account_reset_password_from_key_done", "account_reset_password_from_key_done",
          url("account_reset_password_from_key_done"), "GET", PUBLIC),
    # A provider that is not configured (tests/test_sso.py signs in through a real one).
    route("openid_connect_login", "openid_connect_login",
          lambda world: reverse("openid_connect_login", kwargs={"provider_id": "nosuch"}), "GET",
          expect(NOT_FOUND, anonymous=NOT_FOUND)),
    route("openid_connect_callback", "openid_connect_callback",
          lambda world: reverse("openid_connect_callback", kwargs={"provider_id": "nosuch"}), "GET",
          expect(NOT_FOUND, anonymous=NOT_FOUND)),
    route("socialaccount_login_cancelled", "socialaccount_login_cancelled", url("socialaccount_login_cancelled"),
          "GET", PUBLIC),
    # Not among the public pages (sign-in, password reset, language switch, health check, static files);
    # allauth answers it with 401.
    route("socialaccount_login_error", "socialaccount_login_error", url("socialaccount_login_error"), "GET",
          expect(Expect((401,)))),
    # No third-party sign-in under way: back to the sign-in page.
    route("socialaccount_signup", "socialaccount_signup", url("socialaccount_signup"), "GET",
          expect(REDIRECT, anonymous=LOGIN)),
    route("socialaccount_connections", "socialaccount_connections", url("socialaccount_connections"), "GET",
          SIGNED_IN_PAGE),
    # The second factor's pages (allauth.mfa). Nobody in the cast has an authenticator (tests/test_mfa.py
    # covers those who do): entering a code without a sign-in under way sends home, the pages of an
    # authenticator one does not have are 404, and the others ask for a recent sign-in first.
    route("mfa_index", "mfa_index", url("mfa_index"), "GET", SIGNED_IN_PAGE),
    route("mfa_authenticate", "mfa_authenticate", url("mfa_authenticate"), "GET", expect(REDIRECT)),
    route("mfa_reauthenticate", "mfa_reauthenticate", url("mfa_reauthenticate"), "GET", expect(REDIRECT)),
    route("mfa_activate_totp", "mfa_activate_totp", url("mfa_activate_totp"), "GET",
          expect(Expect((200, 302), label="the set-up, or a recent sign-in first"))),
    *[route(name, name, url(name), "GET", expect(NOT_FOUND)) for name in (
        "mfa_deactivate_totp", "mfa_view_recovery_codes", "mfa_download_recovery_codes")],
    route("mfa_generate_recovery_codes", "mfa_generate_recovery_codes", url("mfa_generate_recovery_codes"), "GET",
          expect(REDIRECT)),
    # Security keys: the list is one's own; adding one, and changing or removing one (here: Sam's app,
    # not a key, so nobody's key), ask for a recent sign-in first.
    route("mfa_list_webauthn", "mfa_list_webauthn", url("mfa_list_webauthn"), "GET", SIGNED_IN_PAGE),
    route("mfa_add_webauthn", "mfa_add_webauthn", url("mfa_add_webauthn"), "GET", expect(REDIRECT)),
    route("mfa_reauthenticate_webauthn", "mfa_reauthenticate_webauthn", url("mfa_reauthenticate_webauthn"), "GET",
          expect(Expect((200, 302), label="the confirmation, or home without a key"))),
    *[route(name, name, url(name, "authenticator.pk"), method, expect(Expect((302, 404), label="not theirs")))
      for name in ("mfa_edit_webauthn", "mfa_remove_webauthn") for method in ("GET", "POST")],
    # Old addresses, permanently redirected to their 3rdparty/ successors.
    route("social_login_cancelled_old", "accounts/social/login/cancelled/", "/accounts/social/login/cancelled/",
          "GET", expect(REDIRECT, anonymous=REDIRECT)),
    route("social_login_error_old", "accounts/social/login/error/", "/accounts/social/login/error/", "GET",
          expect(REDIRECT, anonymous=REDIRECT)),
    route("social_signup_old", "accounts/social/signup/", "/accounts/social/signup/", "GET",
          expect(REDIRECT, anonymous=REDIRECT)),
    route("social_connections_old", "accounts/social/connections/", "/accounts/social/connections/", "GET",
          expect(REDIRECT)),
]

# The admin -------------------------------------------------------------------------------------------


def admin_expect(**roles):
    """Admin expectations: anonymous → a sign-in page, non-staff → sign-in page or 403, unless said otherwise."""
    return expect(ADMIN_LOGIN, anonymous=ADMIN_ANONYMOUS, **roles)


ADMIN_PAGE = admin_expect(hr_staff=OK)

ADMIN_SITE_ROWS = [
    route("admin_index", "admin:index", url("admin:index"), "GET", ADMIN_PAGE),
    # Sign-in is allauth's (rate limits, SSO, one audit trail): the admin's login page only hands over;
    # staff go on to the admin, a signed-in non-staff user is refused (allauth would send them back).
    route("admin_login", "admin:login", url("admin:login"), "GET",
          expect(FORBIDDEN, anonymous=Expect((302,), ("account_login",), label="302 → allauth sign-in"),
                 hr_staff=REDIRECT)),
    route("admin_logout", "admin:logout", url("admin:logout"), "POST",
          expect(REDIRECT, anonymous=REDIRECT)),
    # Passwords are changed on allauth's page.
    route("admin_password_change", "admin:password_change", url("admin:password_change"), "GET",
          admin_expect(hr_staff=Expect((302,), ("account_change_password",)))),
    route("admin_password_change_done", "admin:password_change_done", url("admin:password_change_done"), "GET",
          ADMIN_PAGE),
    # HR may view departments, so may search them from an employee's form.
    route("admin_autocomplete", "admin:autocomplete",
          lambda world: reverse("admin:autocomplete")
          + "?app_label=guidelines&model_name=employee&field_name=department&term=Op", "GET", ADMIN_PAGE),
    route("admin_jsi18n", "admin:jsi18n", url("admin:jsi18n"), "GET", ADMIN_PAGE),
    # Guidelines have no public URL of their own here: 404 once the admin let you in.
    route("admin_view_on_site", "admin:view_on_site",
          lambda world: reverse("admin:view_on_site", args=[world.guideline_type.pk, world.everyone.pk]), "GET",
          admin_expect(hr_staff=NOT_FOUND)),
    route("admin_app_list", "admin:app_list", lambda world: reverse("admin:app_list", args=["guidelines"]), "GET",
          ADMIN_PAGE),
    # HR holds no permission in auth: the admin says the page does not exist.
    route("admin_app_list_auth", "admin:app_list", lambda world: reverse("admin:app_list", args=["auth"]), "GET",
          admin_expect(hr=NOT_FOUND, superuser=OK)),
    route("admin_catch_all", "admin/(?P<url>.*)$", "/admin/no-such-page/", "GET",
          admin_expect(hr_staff=NOT_FOUND)),
]


def _views(changelist, add, change, change_post, delete, history):
    return {"changelist": changelist, "add": add, "change": change, "change_post": change_post, "delete": delete,
            "history": history}


# A POST with no data to a change form: 200 (the form with its errors) when changing is allowed.
NO_ACCESS = _views(FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN)
FULL = _views(OK, OK, OK, OK, OK, OK)
VIEW_ADD_CHANGE = _views(OK, OK, OK, OK, FORBIDDEN, OK)
# Evidence: readable, never added, changed or deleted, even by the superuser.
READ_ONLY = _views(OK, FORBIDDEN, OK, FORBIDDEN, FORBIDDEN, OK)
# An authenticator: seen and removed (a lost phone), never made or edited in the admin.
VIEW_DELETE = _views(OK, FORBIDDEN, OK, FORBIDDEN, OK, OK)
# A published version: new drafts may be added, the version itself is frozen.
FROZEN = _views(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK)

# An API token: issued (added) and revoked (the list's action) by the superuser only; never edited or deleted.
ISSUED = _views(OK, OK, OK, FORBIDDEN, FORBIDDEN, OK)

# Every model registered in the admin: {suffix: (world attribute of an object, HR's views, the superuser's)}.
# The changelist and add page are checked with the first entry's expectations; change (GET and an empty
# POST), delete, history and the old object address for every entry.
ADMIN_MODELS = {
    # Roles and accounts are the administrators' (superuser's) business, not HR's.
    "auth.group": {"": ("approvers", NO_ACCESS, FULL)},
    "auth.user": {"": ("otto.user", NO_ACCESS, FULL)},
    "account.emailaddress": {"": ("email_address", NO_ACCESS, FULL)},
    "socialaccount.socialapp": {"": ("social_app", NO_ACCESS, FULL)},
    "socialaccount.socialaccount": {"": ("social_account", NO_ACCESS, FULL)},
    "socialaccount.socialtoken": {"": ("social_token", NO_ACCESS, FULL)},
    # A lost authenticator app is removed here by an administrator; the owner then sets up a new one.
    "mfa.authenticator": {"": ("authenticator", NO_ACCESS, VIEW_DELETE)},
    "guidelines.department": {"": ("operations", VIEW_ADD_CHANGE, FULL)},
    "guidelines.employee": {"": ("alice", VIEW_ADD_CHANGE, FULL)},
    "guidelines.guideline": {"": ("everyone", VIEW_ADD_CHANGE, FULL)},
    # A draft nobody was asked to approve is edited (and deleted) here too. Once up for review or approved
    # it is read-only here (the HR pages edit it, and an edit voids the approval); published is frozen.
    "guidelines.version": {"": ("draft", FULL, FULL), "under_review": ("under_review", FROZEN, FROZEN),
                           "approved": ("approved", FROZEN, FROZEN), "published": ("v1", FROZEN, FROZEN)},
    "guidelines.acknowledgement": {"": ("ack_alice", READ_ONLY, READ_ONLY)},
    "guidelines.apitoken": {"": ("api_token", NO_ACCESS, ISSUED)},
    "guidelines.reading": {"": ("reading", READ_ONLY, READ_ONLY)},
    "guidelines.auditevent": {"": ("audit_event", READ_ONLY, READ_ONLY)},
    # Issue 15's evidence: read-only for the superuser. The HR group holds no view permission on these
    # tables: HR reads questions and objections on the HR pages (the inbox, the employee's page).
    "guidelines.readingprogress": {"": ("reading_progress", NO_ACCESS, READ_ONLY)},
    "guidelines.quizattempt": {"": ("quiz_attempt", NO_ACCESS, READ_ONLY)},
    "guidelines.question": {"": ("question", NO_ACCESS, READ_ONLY)},
    "guidelines.objection": {"": ("objection", NO_ACCESS, READ_ONLY)},
    "guidelines.objectionresolution": {"": ("resolution", NO_ACCESS, READ_ONLY)},
}

# Extra pages some model admins add.
ADMIN_EXTRA_ROWS = [
    route("admin_auth_user_password_change", "admin:auth_user_password_change",
          lambda world: reverse("admin:auth_user_password_change", args=[world.otto.user.pk]), "GET",
          admin_expect(hr=FORBIDDEN, superuser=OK)),
]


def _admin_rows():
    rows = []
    for label, objects in ADMIN_MODELS.items():
        app_label, model_name = label.split(".")
        prefix = f"admin:{app_label}_{model_name}"
        _attr, hr, superuser = next(iter(objects.values()))
        for view in ("changelist", "add"):
            rows.append(route(f"admin_{app_label}_{model_name}_{view}", f"{prefix}_{view}", url(f"{prefix}_{view}"),
                              "GET", admin_expect(hr=hr[view], superuser=superuser[view])))
        for suffix, (attr, hr, superuser) in objects.items():
            name = f"admin_{app_label}_{model_name}" + (f"_{suffix}" if suffix else "")
            for view in ("change", "delete", "history"):
                rows.append(route(f"{name}_{view}", f"{prefix}_{view}", url(f"{prefix}_{view}", f"{attr}.pk"), "GET",
                                  admin_expect(hr=hr[view], superuser=superuser[view])))
            rows.append(route(f"{name}_change", f"{prefix}_change", url(f"{prefix}_change", f"{attr}.pk"), "POST",
                              admin_expect(hr=hr["change_post"], superuser=superuser["change_post"]),
                              data={}))
            # The pre-1.9 address of the change page: staff are redirected there, whatever they may do.
            old = url(f"{prefix}_change", f"{attr}.pk")
            rows.append(route(f"{name}_object", f"admin/{app_label}/{model_name}/<path:object_id>/",
                              lambda world, old=old: old(world).removesuffix("change/"), "GET",
                              admin_expect(hr_staff=REDIRECT)))
    return rows


# The API opens with a token only (tests/api/ has each endpoint's token matrix): a browser's session,
# whatever its role, gets 401. The schema and its documentation are public: they hold no data.
API_REFUSED = expect(Expect((401,)), anonymous=Expect((401,)))
API_ROWS = [
    route("api_schema", "api:schema", url("api:schema"), "GET", PUBLIC),
    route("api_docs", "api:docs", url("api:docs"), "GET", PUBLIC),
    route("api_guidelines", "api:guidelines", url("api:guidelines"), "GET", API_REFUSED),
    route("api_guideline", "api:guideline", url("api:guideline", "everyone.slug"), "GET", API_REFUSED),
    route("api_guideline_versions", "api:guideline-versions", url("api:guideline-versions", "everyone.slug"), "GET",
          API_REFUSED),
    route("api_version", "api:version", url("api:version", "v1.pk"), "GET", API_REFUSED),
    route("api_version_status", "api:version-status", url("api:version-status", "v1.pk"), "GET", API_REFUSED),
    route("api_version_employees", "api:version-employees", url("api:version-employees", "v1.pk"), "GET",
          API_REFUSED),
    route("api_acknowledgements", "api:acknowledgements", url("api:acknowledgements"), "GET", API_REFUSED),
    route("api_objections", "api:objections", url("api:objections"), "GET", API_REFUSED),
    route("api_chain_verification", "api:chain-verification", url("api:chain-verification"), "GET", API_REFUSED),
    route("api_reports", "api:reports", url("api:reports"), "GET", API_REFUSED),
    route("api_reports_request", "api:reports", url("api:reports"), "POST", API_REFUSED,
          data={"guideline": "everyone"}),
    route("api_report", "api:report", url("api:report", "report.verification_code"), "GET", API_REFUSED),
    route("api_report_pdf", "api:report-pdf", url("api:report-pdf", "report.verification_code"), "GET",
          API_REFUSED),
]

# SCIM provisioning opens with a token only, like the API (tests/scim/ has the token and role refusals):
# a browser's session, whatever its role, gets 401, for reading and for every write.
SCIM_ROWS = [
    route("scim_service_provider_config", "scim:service-provider-config", url("scim:service-provider-config"),
          "GET", API_REFUSED),
    route("scim_resource_types", "scim:resource-types", url("scim:resource-types"), "GET", API_REFUSED),
    route("scim_resource_type", "scim:resource-type", "/scim/v2/ResourceTypes/User", "GET", API_REFUSED),
    route("scim_schemas", "scim:schemas", url("scim:schemas"), "GET", API_REFUSED),
    route("scim_schema", "scim:schema", "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "GET",
          API_REFUSED),
    route("scim_users", "scim:users", url("scim:users"), "GET", API_REFUSED),
    route("scim_users_create", "scim:users", url("scim:users"), "POST", API_REFUSED,
          data={"userName": "new@example.com", "externalId": "E0500"}),
    route("scim_user", "scim:user", url("scim:user", "alice.pk"), "GET", API_REFUSED),
    route("scim_user_patch", "scim:user", url("scim:user", "alice.pk"), "PATCH", API_REFUSED),
    route("scim_user_put", "scim:user", url("scim:user", "alice.pk"), "PUT", API_REFUSED),
    route("scim_user_delete", "scim:user", url("scim:user", "alice.pk"), "DELETE", API_REFUSED),
    route("scim_groups", "scim:groups", url("scim:groups"), "GET", API_REFUSED),
    route("scim_groups_create", "scim:groups", url("scim:groups"), "POST", API_REFUSED,
          data={"displayName": "Traders"}),
    route("scim_group", "scim:group", url("scim:group", "approvers.pk"), "GET", API_REFUSED),
    route("scim_group_patch", "scim:group", url("scim:group", "approvers.pk"), "PATCH", API_REFUSED),
    route("scim_group_put", "scim:group", url("scim:group", "approvers.pk"), "PUT", API_REFUSED),
    route("scim_group_delete", "scim:group", url("scim:group", "approvers.pk"), "DELETE", API_REFUSED),
    route("scim_not_found", "scim:not-found", "/scim/v2/Elsewhere", "GET", API_REFUSED),
]

ROWS = GUIDELINE_ROWS + ACCOUNT_ROWS + ADMIN_SITE_ROWS + _admin_rows() + ADMIN_EXTRA_ROWS + API_ROWS + SCIM_ROWS


# The world: the cast and the objects the patterns need ---------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    media = tmp_path_factory.mktemp("matrix-media")
    # Django logs every 403 and 404 as a warning with its traceback; formatting ~1000 of them would
    # take longer than the requests. Errors (500s) are still logged.
    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.ERROR)
    try:
        with (
            django_db_blocker.unblock(),
            override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"], MEDIA_ROOT=media),
            translation.override("en"),
            transaction.atomic(),
        ):
            yield _build_world(media)
            transaction.set_rollback(True)
    finally:
        request_log.setLevel(level)


def _build_world(media):
    w = type("World", (), {})()
    w.bob = make_employee("bob@example.com", "E0002", groups=["Approvers"])
    w.alice = make_employee("alice@example.com", "E0001", manager=w.bob)
    w.hilde = make_user("hilde@example.com", first_name="Hilde", groups=["HR"], is_staff=True)
    w.arjen = make_user("arjen@example.com", first_name="Arjen", groups=["Auditors"])
    w.otto = make_employee("otto@example.com", "E0099", department="Finance")
    w.nina = make_user("nina@example.com", first_name="Nina")
    w.root = make_user("root@example.com", first_name="Root", is_staff=True, is_superuser=True)
    w.operations = Department.objects.get(name="Operations")
    w.approvers = Group.objects.get(name="Approvers")

    w.everyone = make_guideline(w.hilde)
    w.v1 = publish(w.everyone, author=w.hilde, approver=w.bob.user)
    w.ops = make_guideline(w.hilde, slug="ops", audience_everyone=False)
    w.ops.audience_departments.add(w.operations)
    w.ops_v1 = publish(w.ops, author=w.hilde, approver=w.bob.user)
    w.draft = make_draft(w.everyone, author=w.hilde)
    w.approved = make_draft(w.ops, author=w.hilde, bodies={"nl": "# Nieuw\n\nTekst.\n", "en": "# New\n\nText.\n"})
    publishing.approve_version(version=w.approved, by=w.bob.user)
    w.under_review = make_draft(w.everyone, author=w.hilde)
    publishing.request_review(version=w.under_review, by=w.hilde)
    # A guideline that requires the works council's consent, and a draft with it recorded.
    w.council = make_guideline(w.hilde, slug="conduct", requires_works_council_consent=True)
    w.consented = make_draft(w.council, author=w.hilde)
    publishing.record_works_council_consent(version=w.consented, by=w.hilde, consented_on=timezone.localdate(),
                                            reference="OR-2026-14")

    meta = services.RequestMeta(channel="web", auth_method="password", ip_address="10.1.2.3", user_agent="pytest")
    w.ack_alice, _ = services.acknowledge(employee=w.alice, version=w.v1, language="en", meta=meta)
    w.ack_otto, _ = services.acknowledge(employee=w.otto, version=w.v1, language="en", meta=meta)
    services.record_reading(employee=w.alice, version=w.ops_v1)
    w.reading = Reading.objects.get(employee=w.alice, version=w.ops_v1)
    w.exemption = services.grant_exemption(employee=w.bob, guideline=w.everyone, by=w.hilde, reason="Leave.")
    w.audit_event = AuditEvent.objects.order_by("pk").first()
    # Alice's question to the owner (Hilde), her objection and her exception request (questions.py).
    w.question = questions.ask(employee=w.alice, version=w.v1, language="en", text="May I post photos?")
    w.objection = questions.record_objection(employee=w.alice, version=w.v1, language="en", kind="objection",
                                             reason="Too strict.", meta=meta)
    w.exception_request = questions.record_objection(employee=w.alice, version=w.v1, language="en",
                                                     kind="exception", reason="On leave.", meta=meta)
    # For the admin's evidence pages: Otto's objection, handled by HR; how far Alice read Operations' version;
    # Otto's answer to the comprehension check of a guideline for Finance only (nobody else's lists change).
    handled = questions.record_objection(employee=w.otto, version=w.v1, language="en", kind="objection",
                                         reason="Unclear.", meta=meta)
    w.resolution = questions.resolve(objection=handled, by=w.hilde, outcome="answered", note="See section 2.")
    w.reading_progress = services.record_progress(employee=w.alice, version=w.ops_v1, seconds=0, percent=40)
    finance = make_guideline(w.hilde, slug="finance", audience_everyone=False)
    finance.audience_departments.add(w.otto.department)
    quiz_draft = make_draft(finance, author=w.hilde)
    comprehension.set_questions(version=quiz_draft, by=w.hilde, questions=[{
        "text": {"nl": "Vraag?", "en": "Question?"}, "choices": [{"nl": "Ja", "en": "Yes"}, {"nl": "Nee", "en": "No"}],
        "correct": 0, "hint": {"nl": "Zie de tekst.", "en": "See the text."}}])
    publishing.approve_version(version=quiz_draft, by=w.bob.user)
    quiz_version = publishing.publish_version(version=quiz_draft, by=w.hilde, material=True)
    [quiz_question] = comprehension.questions_of(quiz_version)
    comprehension.check_answers(employee=w.otto, version=quiz_version, answers={quiz_question.pk: 1})
    w.quiz_attempt = QuizAttempt.objects.get(employee=w.otto)

    (media / "reports").mkdir()
    (media / "reports" / "matrix.pdf").write_bytes(REPORT_PDF)
    w.report = Report.objects.create(
        kind=Report.Kind.AUDIT_PACK, verification_code="MTRX-ACCS-TEST", requested_by=w.arjen, language="en",
        guideline=w.everyone, status=Report.Status.DONE, file="matrix.pdf", size=len(REPORT_PDF),
        sha256=hashlib.sha256(REPORT_PDF).hexdigest(), finished_at=timezone.now(),
    )

    grc = make_user("grc@example.com", groups=["Auditors"])
    grc.set_unusable_password()
    grc.save()
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):  # no DNS look-up for the example address
        w.webhook, _secret = webhooks.add_subscriber(by=w.hilde, name="GRC", url="https://grc.example.com/hooks",
                                                     events=["version.published"])
    w.api_token, _plain = api_tokens.issue(by=w.root, name="GRC", account=grc, scopes=["status:read"],
                                           expires_at=timezone.now() + timedelta(days=30))

    # allauth's own records, for its admin pages. They belong to an account outside the cast: no provider
    # is installed, so a role's own pages (connections, reauthentication) would trip over them.
    sam = make_user("sam@example.com", first_name="Sam")
    w.email_address = EmailAddress.objects.create(user=sam, email=sam.email, primary=True, verified=True)
    w.social_app = SocialApp.objects.create(provider="openid_connect", provider_id="sso", name="SSO",
                                            client_id="intranet", secret="not-a-secret")
    w.social_account = SocialAccount.objects.create(user=sam, provider="sso", uid="sam")
    w.social_token = SocialToken.objects.create(app=w.social_app, account=w.social_account, token="token")
    w.authenticator = TOTP.activate(sam, generate_totp_secret()).instance
    w.guideline_type = ContentType.objects.get_for_model(w.everyone)

    users = {"employee": w.alice.user, "manager": w.bob.user, "hr": w.hilde, "auditor": w.arjen,
             "outsider": w.otto.user, "no_employee": w.nina, "superuser": w.root}
    w.sessions = {}
    for role, user in users.items():
        client = Client()
        sign_in(client, user)
        w.sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return w


# The resolver ----------------------------------------------------------------------------------------


def _join(prefix, pattern):
    # As Django joins routes in ResolverMatch.route: without the ^ of an included regex.
    return prefix + pattern.removeprefix("^") if prefix else pattern


def url_patterns(resolver=None, prefix="", namespace=""):
    """(route, qualified name or None) of every pattern, through every include."""
    for pattern in (resolver or get_resolver()).url_patterns:
        route_text = _join(prefix, str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from url_patterns(pattern, route_text, inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield route_text, name


def _covered():
    return ({row.pattern for row in ROWS} | {name for row in ROWS for name in row.shadows}) - {None}


def test_every_url_pattern_is_in_the_matrix():
    covered = _covered()
    missing = [
        f"The pattern {route_text!r} is not in the access matrix" + (f" (name {name!r})" if name else "")
        for route_text, name in url_patterns()
        if route_text not in covered and name not in covered
    ]
    assert not missing, "\n".join(missing)


def test_every_admin_model_has_a_policy():
    registered = {model._meta.label_lower for model in admin.site._registry}
    missing = sorted(registered - set(ADMIN_MODELS))
    assert not missing, f"Admin models without an entry in ADMIN_MODELS: {', '.join(missing)}"


def test_every_row_names_a_pattern_that_exists():
    known = set()
    for route_text, name in url_patterns():
        known.update({route_text, name})
    stale = [f"{row.id}: {pattern!r}" for row in ROWS for pattern in (row.pattern, *row.shadows)
             if pattern is not None and pattern not in known]
    assert not stale, "Rows naming patterns that no longer exist (remove or update them):\n" + "\n".join(stale)


def test_row_ids_are_unique():
    seen = set()
    for row in ROWS:
        assert (row.id, row.method) not in seen, f"Two rows are called {row.id}-{row.method}"
        seen.add((row.id, row.method))
        assert set(row.expected) == set(ROLES), row.id


# The matrix ------------------------------------------------------------------------------------------

CASES = [pytest.param(row, role, id=f"{row.id}-{row.method}-{role}") for row in ROWS for role in ROLES]


@pytest.fixture(scope="module")
def shared_client():
    # One client for the module: a new one would build the middleware chain again for every case.
    return Client(headers={"accept-language": "en"})


@pytest.fixture
def db(world):
    """This module's `db`: each case in a savepoint of the world's transaction, rolled back after it.
    pytest-django's own `db` does the same inside a higher-scoped transaction, but builds a TestCase
    and checks deferred constraints for every case: a quarter of the matrix's time. Its name still
    tells pytest-django that these tests need the test database."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.mark.parametrize(("row", "role"), CASES)
def test_access(world, shared_client, db, row, role):
    path = row.url(world)
    if row.pattern is not None:
        match = resolve(urlsplit(path).path)
        assert row.pattern in (match.view_name, match.route), f"{path} resolves to {match.route}, not {row.pattern}"

    with override_settings(**row.settings):
        client = Client(headers={"accept-language": "en"}) if row.settings else shared_client
        client.cookies.clear()
        if role != "anonymous":
            client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
        data = row.data(world) if row.data else None
        try:
            response = getattr(client, row.method.lower())(path, data=data)
        except Exception as error:  # a 500 in production
            pytest.fail(f"{row.method} {path} as {role}: the view raised {error!r} (a 500), "
                        f"expected {row.expected[role]}")
        if response.streaming:
            # Consuming it closes it (and the file a download opened) the way the test client does,
            # without the request_finished signal that would close the connection mid-transaction.
            b"".join(response.streaming_content)
    problem = row.expected[role].problem(response)
    assert problem is None, f"{row.method} {path} as {role}: {problem}"
