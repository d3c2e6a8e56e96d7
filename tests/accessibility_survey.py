"""The accessibility survey of tests/test_accessibility.py: which pages exist, who can open them, and
what a browser finds on each of them.

The pages come from the URL table (``django.urls.get_resolver()``): every pattern is either filled in
from the demo-like data below and opened, as every role, with Django's test client (a role that gets
an HTML 200 page has it checked in the browser), or listed in ``NOT_PAGES`` with the reason it is not
a page. A new pattern that nobody can open and nobody listed makes the survey say so by name.
"""

import csv
import gettext
import io
import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from .factories import make_draft, sign_in

ROLES = ("anonymous", "employee", "manager", "hr", "auditor")
LANGUAGES = ("en", "nl")
WIDTHS = (1280, 390)
ACCOUNTS = {"employee": "employee@example.com", "manager": "manager@example.com", "hr": "hr@example.com",
            "auditor": "auditor@example.com"}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
BLOCKING = ("serious", "critical")

# Patterns that are not pages (by URL name, or by route for a pattern without one), and why.
NOT_PAGES = {
    "guidelines:acknowledge": "POST only: a GET is sent on to the guideline's page",
    "guidelines:reading_progress": "POST only: the reading page's reports, answered with 204 and no page",
    "guidelines:hr_draft_preview": "POST only: the draft editor's live preview (an HTML fragment)",
    "guidelines:hr_draft_review": "POST only: request approval, approve, send back (buttons on the draft page)",
    "guidelines:hr_import_apply": "POST only: 'Apply this file' under a dry run's list of changes",
    "guidelines:dashboard_export": "a CSV download",
    "guidelines:report_download": "a PDF download (the auditor pack)",
    "guidelines:report_certificate": "a PDF download (the certificate)",
    "set_language": "POST only: the language switch",
    "healthz/": "plain-text health check for the load balancer",
    # allauth's e-mail management is replaced by a 404 (addresses come from the HR import); allauth's own
    # patterns behind these are shadowed (the survey sees that through resolve()).
    "accounts/email/": "replaced by a 404: e-mail addresses come from HR",
    "accounts/confirm-email/": "replaced by a 404: e-mail addresses come from HR",
    r"^accounts/confirm-email/(?P<key>[-:\w]+)/$": "replaced by a 404: e-mail addresses come from HR",
    "account_set_password": "redirect only: everyone has a password, 'set' hands over to 'change'",
    "account_request_reauthentication_code": "redirect only: nobody has a verified allauth e-mail address",
    "account_confirm_reauthentication_code": "redirect only: no reauthentication code under way",
    "account_confirm_login_code": "redirect only: sign-in by code is not enabled",
    "openid_connect_login": "hands over to the identity provider (none configured here: a 404)",
    "openid_connect_callback": "the identity provider's return address (none configured here: a 404)",
    "socialaccount_login_error": "answers 401 outside a failed provider sign-in (tests/test_sso_browser.py)",
    "socialaccount_signup": "redirect only: no provider sign-in under way",
    "mfa_authenticate": "redirect only outside a sign-in (tests/test_second_factor_browser.py opens it)",
    "mfa_reauthenticate": "redirect only without an authenticator",
    "mfa_deactivate_totp": "404 without an authenticator app",
    "mfa_view_recovery_codes": "404 without recovery codes",
    "mfa_download_recovery_codes": "a text download (404 without recovery codes)",
    "mfa_reauthenticate_webauthn": "redirect only without a security key",
    "mfa_edit_webauthn": "needs a security key (WebAuthn hardware): none in the test data",
    "mfa_remove_webauthn": "POST only, and needs a security key",
    "accounts/social/login/cancelled/": "an old address, permanently redirected",
    "accounts/social/login/error/": "an old address, permanently redirected",
    "accounts/social/signup/": "an old address, permanently redirected",
    "accounts/social/connections/": "an old address, permanently redirected",
}
# Whole subtrees by route prefix.
NOT_PAGES_UNDER = {
    "admin/": "Django's own administration (its templates are Django's, not the product's)",
    "api/v1/": "the REST API: JSON for machines, and its schema's documentation (Swagger UI and Redoc's pages)",
    "scim/v2/": "SCIM provisioning: JSON for the identity provider's provisioning service, no pages",
}

# URL parameters, filled from the world by name. `pk` depends on the view: PK_OBJECTS.
PARAMETERS = {
    "slug": lambda w: [w.guideline.slug],
    "code": lambda w: [w.report.verification_code],
    "number": lambda w: [w.v2.number],
    "uidb36": lambda w: ["3"],  # a made-up reset link: the page says it is invalid
    "key": lambda w: ["abc-def"],
    "provider_id": lambda w: ["nosuch"],
    "ack": lambda w: [w.ack.pk],
}
PK_OBJECTS = {
    "guidelines:receipt": ("ack",),
    "guidelines:hr_exemption_revoke": ("exemption",),
    "guidelines:hr_draft": ("draft", "under_review"),
    "guidelines:hr_draft_edit": ("draft",),
    "guidelines:hr_draft_questions": ("draft",),
    "guidelines:hr_draft_review": ("under_review",),
    "guidelines:hr_draft_publish": ("approved",),
    "guidelines:hr_draft_consent": ("draft", "under_review"),
    "guidelines:hr_draft_consent_withdraw": ("draft",),
    "guidelines:hr_draft_approve": ("under_review",),
    "guidelines:hr_draft_send_back": ("under_review",),
    "guidelines:hr_employee": ("emma",),
    "guidelines:hr_employee_receipt": ("emma",),
    "guidelines:report_certificate": ("ack",),
    "guidelines:hr_webhook": ("webhook", "failing_webhook"),
    "guidelines:hr_webhook_disable": ("webhook",),
    "guidelines:hr_webhook_enable": ("failing_webhook",),
    "guidelines:question": ("question",),
    "guidelines:objection": ("exception_request", "handled_objection"),
    "mfa_edit_webauthn": ("no_key",),
    "mfa_remove_webauthn": ("no_key",),
}


HR_TEXTS = ("Long-term leave until further notice.", "Back from parental leave.")
# A webhook receiver's own answer, shown as it came: not interface text either.
RECEIVER_TEXTS = ("HTTP 503 Service Unavailable",)
# Employees' questions and reasons, the owner's and HR's answers: their own words, not interface text.
QUESTION_TEXTS = ("May I share photos of the team outing on my own account?", "Yes, if everyone in them agrees.",
                  "I am on parental leave until the summer.", "The rule on private accounts goes too far.",
                  "Noted; the rule stays, and we will explain it at the next team meeting.")

# The world: the demo organisation, plus what the demo does not make ------------------------------------


def build_world(media_root):
    """The demo (guidelines/demo.py: 60 people, the social media guideline v1 and v2, acknowledgements),
    plus drafts in every state, a second guideline, an exemption, an extension, an import, e-mails sent and
    a finished auditor pack. Returns a namespace; its `sessions` are a signed-in session cookie per role."""
    from guidelines import imports, notifications, publishing, services
    from guidelines.demo import load_demo
    from guidelines.models import Acknowledgement, Employee, Guideline, NotificationLog, Report

    User = get_user_model()
    load_demo()
    w = type("World", (), {})()
    users = {role: User.objects.get(email=email) for role, email in ACCOUNTS.items()}
    w.users = users
    hr, manager = users["hr"], users["manager"]
    w.guideline = Guideline.objects.get(slug="social-media")
    w.v1, w.v2 = w.guideline.versions.filter(published_at__isnull=False).order_by("published_at")
    emma = Employee.objects.get(user=users["employee"])
    w.ack = Acknowledgement.objects.filter(employee=emma).latest("acknowledged_at")
    w.emma = emma

    w.draft = make_draft(w.guideline, author=hr)
    # The demo guideline requires the works council's consent: recorded for one draft, not (yet) for the other.
    publishing.record_works_council_consent(version=w.draft, by=hr, consented_on=timezone.localdate(),
                                            reference="OR-2026-14")
    w.under_review = make_draft(w.guideline, author=hr)
    publishing.request_review(version=w.under_review, by=hr)
    w.second = Guideline.objects.create(slug="working-from-home", title_nl="Thuiswerken", title_en="Working from home",
                                        owner=hr, due_days=30)
    first = _draft(w.second, hr, "Regels 2025.")
    publishing.approve_version(version=first, by=manager)
    publishing.publish_version(version=first, by=hr, material=True)
    w.approved = _draft(w.second, hr, "Nieuwe regels voor 2026.")
    publishing.approve_version(version=w.approved, by=manager)
    w.no_key = 999_999

    others = list(Employee.objects.exclude(user__in=users.values()).order_by("employee_number")[:3])
    # Reasons are HR's free text, in whichever language HR wrote them: not interface text (HR_TEXTS).
    w.exemption = services.grant_exemption(employee=others[0], guideline=w.guideline, by=hr, reason=HR_TEXTS[0])
    services.extend_due_date(employee=others[1], version=w.v2, by=hr,
                             due_date=timezone.localdate() + timedelta(days=90), reason=HR_TEXTS[1])

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(imports.COLUMNS)
    for employee in Employee.objects.select_related("user", "department", "manager").order_by("pk"):
        writer.writerow([employee.employee_number, employee.user.email, employee.user.first_name,
                         employee.user.last_name, employee.department.name if employee.department else "",
                         employee.manager.employee_number if employee.manager else "",
                         employee.start_date.isoformat() if employee.start_date else "", "", employee.language])
    writer.writerow(["E0900", "fien.nieuw@example.com", "Fien", "Nieuw", "Operations", "E0002", "2026-01-05", "",
                     "nl"])
    content = out.getvalue().encode()
    imports.run_import(content, source="people.csv", by=hr, dry_run=True)
    imports.run_import(content, source="people.csv", by=hr)

    day = date.today()
    recipients = [employee.pk for employee in others]
    drafts = notifications.compose_digests(recipients, day, kind=NotificationLog.Kind.NUDGE, version=w.v2)
    claimed = notifications.claim(drafts, day=day, claimed_by="survey", requested_by=hr)
    notifications.deliver(claimed[:-1], day=day)
    notifications.give_up("survey", [claimed[-1][0].key], "SMTPRecipientsRefused: 550 No such mailbox")

    pdf = b"%PDF-1.7\n% accessibility survey\n%%EOF\n"
    (Path(media_root) / "reports").mkdir(parents=True, exist_ok=True)
    (Path(media_root) / "reports" / "survey.pdf").write_bytes(pdf)
    import hashlib

    w.report = Report.objects.create(
        kind=Report.Kind.AUDIT_PACK, verification_code="SRVY-A11Y-TEST", requested_by=users["auditor"],
        language="en", guideline=w.guideline, status=Report.Status.DONE, file="survey.pdf", size=len(pdf),
        sha256=hashlib.sha256(pdf).hexdigest(), finished_at=timezone.now(),
    )

    w.webhook, w.failing_webhook = _webhooks(hr)
    w.question, w.exception_request, w.handled_objection = _questions(w, hr, others)

    w.sessions = {role: signed_in_session(user) for role, user in users.items()}
    # Not interface text: people's names (Emma Employee, Martin Manager) and HR's free text.
    w.verbatim = sorted({f"{u.first_name} {u.last_name}".strip() for u in User.objects.all()} - {""}
                        | set(HR_TEXTS) | set(RECEIVER_TEXTS) | set(QUESTION_TEXTS), key=len, reverse=True)
    return w


def _webhooks(hr):
    """A subscriber with a delivery log (one delivered, one waiting for a retry), and one that was disabled
    automatically after its deliveries kept failing."""
    from django.test import override_settings

    from guidelines import webhook_events, webhooks
    from guidelines.models import WebhookDelivery, WebhookSubscriber

    Event = WebhookSubscriber.Event
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_DISABLE_AFTER=1):  # example addresses: no DNS
        working, _secret = webhooks.add_subscriber(by=hr, name="GRC", url="https://grc.example.com/hooks",
                                                   events=[Event.ACKNOWLEDGEMENT_CREATED, Event.VERSION_OVERDUE])
        [delivered, waiting] = [
            webhook_events.record(Event.VERSION_OVERDUE, f"survey:{n}", {}, timezone.now())[0] for n in (1, 2)]
        webhooks._mark_delivered(WebhookDelivery.objects.get(pk=delivered), 204)
        WebhookDelivery.objects.filter(pk=waiting).update(attempts=2, response_status=503,
                                                          last_error=RECEIVER_TEXTS[0])
        failing, _secret = webhooks.add_subscriber(by=hr, name="GRC-archief", url="https://archive.example.com/in",
                                                   events=[Event.REPORT_READY])
        [failed] = webhook_events.record(Event.REPORT_READY, "survey:3", {}, timezone.now())
        webhooks.give_up(failed, RECEIVER_TEXTS[0])
    failing.refresh_from_db()
    return working, failing


def _questions(w, hr, others):
    """Emma's question to the owner (HR), answered; her open exception request; another employee's objection,
    answered by HR."""
    from guidelines import questions, services

    meta = services.RequestMeta(channel="web", auth_method="password", ip_address="10.1.2.3", user_agent="survey")
    question = questions.ask(employee=w.emma, version=w.v2, language="en", text=QUESTION_TEXTS[0])
    questions.answer(question=question, by=hr, text=QUESTION_TEXTS[1])
    request = questions.record_objection(employee=w.emma, version=w.v2, language="en", kind="exception",
                                         reason=QUESTION_TEXTS[2], meta=meta)
    objection = questions.record_objection(employee=others[2], version=w.v2, language="nl", kind="objection",
                                           reason=QUESTION_TEXTS[3], meta=meta)
    questions.resolve(objection=objection, by=hr, outcome="answered", note=QUESTION_TEXTS[4])
    return question, request, objection


def signed_in_session(user):
    """A session cookie value: signed in with a password (and the second factor for privileged roles) and,
    as if the password had just been asked again, reauthenticated: the pages that ask for that first
    (setting up an authenticator app) are pages of the survey too. allauth trusts a reauthentication for
    a few minutes only: the browser asks for a fresh session per context."""
    from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY

    client = Client()
    sign_in(client, user)
    session = client.session
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [
        *session[AUTHENTICATION_METHODS_SESSION_KEY],
        {"method": "password", "at": time.time(), "email": user.email, "reauthenticated": True},
    ]
    session.save()
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _draft(guideline, author, text):
    from guidelines.models import Version, VersionText

    version = Version.objects.create(guideline=guideline, leading_language="nl", created_by=author)
    for language, title, body in (("nl", "Thuiswerken", f"# Thuiswerken\n\n{text}\n"),
                                  ("en", "Working from home", f"# Working from home\n\nRules: {text}\n")):
        VersionText.objects.create(version=version, language=language, title=title, body=body)
    return version


# The URL table ---------------------------------------------------------------------------------------


@dataclass
class Pattern:
    route: str
    name: str | None
    parameters: tuple
    callback: object = None
    shadowed_by: str = ""  # another pattern answers its address first
    urls: list = field(default_factory=list)
    roles: dict = field(default_factory=dict)  # role → [urls answering an HTML 200]
    answers: dict = field(default_factory=dict)  # (role, url) → status / content type, for the message

    @property
    def key(self):
        return self.name or self.route

    def excluded(self):
        for label in (self.name, self.route):
            if label in NOT_PAGES:
                return NOT_PAGES[label]
        for prefix, reason in NOT_PAGES_UNDER.items():
            if self.route.startswith(prefix):
                return reason
        return None


def url_patterns(resolver=None, prefix="", namespace="", parameters=()):
    """Every pattern of the URL configuration, through every include, with the parameters of its whole
    route (an include's prefix may hold some)."""
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern).removeprefix("^") if prefix else str(pattern.pattern)
        own = (*parameters, *pattern.pattern.regex.groupindex)
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from url_patterns(pattern, route, inner, own)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield Pattern(route, name, own, pattern.callback)


def fill(pattern, world):
    """The URLs of a pattern with its parameters taken from the world, or a reason it cannot be filled."""
    if not pattern.parameters:
        if pattern.name:
            return [reverse(pattern.name)], None
        if re.search(r"[\^$()\[\]*+?\\]", pattern.route.removeprefix("^").removesuffix("$")):
            return [], f"the regular expression {pattern.route!r} has no name to reverse"
        return ["/" + pattern.route.removeprefix("^").removesuffix("$")], None
    if not pattern.name:
        return [], "a pattern with parameters but without a name"
    choices = []
    for parameter in pattern.parameters:
        if parameter == "pk":
            objects = PK_OBJECTS.get(pattern.name)
            if not objects:
                return [], f"which object's pk? add {pattern.name!r} to PK_OBJECTS"
            choices.append([getattr(getattr(world, attr), "pk", getattr(world, attr)) for attr in objects])
        elif parameter in PARAMETERS:
            choices.append(PARAMETERS[parameter](world))
        else:
            return [], f"no value for the parameter {parameter!r}: add it to PARAMETERS"
    return [reverse(pattern.name, kwargs=dict(zip(pattern.parameters, values, strict=True)))
            for values in itertools.product(*choices)], None


def discover(world):
    """Every pattern, filled and opened as every role with the test client (fast): which role gets an HTML
    200 where. Returns (patterns, problems)."""
    patterns, problems = [], []
    clients = {}
    for role in ROLES:
        client = Client(headers={"accept-language": "en"})
        if role != "anonymous":
            client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
        clients[role] = client
    for pattern in url_patterns():
        patterns.append(pattern)
        reason = pattern.excluded()
        urls, why_not = fill(pattern, world)
        if why_not:
            if reason is None:
                problems.append(f"{pattern.key!r} ({pattern.route}): {why_not}, or list it in NOT_PAGES")
            continue
        pattern.urls = urls
        match = resolve(urlsplit(urls[0]).path)
        if match.func is not pattern.callback:
            pattern.shadowed_by = match.view_name or match.route  # checked as that pattern
            continue
        if reason is not None and pattern.route.startswith(tuple(NOT_PAGES_UNDER)):
            continue  # a whole excluded subtree (the admin): not opened at all
        for role, client in clients.items():
            for url in urls:
                response = client.get(url)
                if response.streaming:
                    b"".join(response.streaming_content)
                kind = response.headers.get("Content-Type", "").split(";")[0]
                location = response.headers.get("Location", "")
                pattern.answers[(role, url)] = f"{response.status_code}" + (f" → {location}" if location else "")
                if response.status_code == 200 and kind == "text/html":
                    pattern.roles.setdefault(role, []).append(url)
        if reason is None and not pattern.roles:
            answers = ", ".join(f"{role} {answer}" for (role, _url), answer in pattern.answers.items())
            problems.append(f"{pattern.key!r} ({pattern.route}, {', '.join(urls)}): no role gets an HTML page "
                            f"({answers}); make it reachable with the test data, or list it in NOT_PAGES with a "
                            "reason")
        if reason is not None and pattern.roles:
            problems.append(f"{pattern.key!r} is listed in NOT_PAGES ({reason}) but is an HTML page for "
                            f"{', '.join(pattern.roles)}: take it off the list so it is checked")
    return patterns, problems


# The message catalogue -------------------------------------------------------------------------------

CATALOGUE = Path(__file__).resolve().parent.parent / "guidelines" / "locale" / "nl" / "LC_MESSAGES" / "django.mo"
PLACEHOLDER = re.compile(r"%\(\w+\)[sdf]|%[sdf]|\{[^}]*\}|<[^>]+>")
# Words that are the same, or legitimately shown in the other language, and why. Besides: people's names
# (Emma Employee, Martin Manager), HR's free text (an exemption's reason) and e-mail addresses are taken out
# of the text (foreign_words); text marked with the other language (lang="nl" on an English page: the
# language switch, a draft's Dutch text, a receipt's statement in the language read) and code (<code>: CSV
# column names) are not read at all (TEXT_IN_PAGE_LANGUAGE).
ALLOWED = {
    "Upload": "Dutch too: the imperative of 'uploaden' ('Upload een pdf')",
    "Kind": "Dutch too ('kind': child)",
    "kind": "Dutch too ('kind': child)",
}


def phrases(text):
    """The literal pieces of a catalogue text worth looking for: placeholders split it; a piece counts when
    it has two words or more and at least 10 letters, or is a single word of 3 letters or more."""
    result = []
    for piece in PLACEHOLDER.split(text):
        piece = " ".join(piece.split()).strip(" .,:;!?…()\"'‘’“”-–")
        words = piece.split()
        letters = sum(character.isalpha() for character in piece)
        if (len(words) >= 2 and letters >= 10) or (len(words) == 1 and letters >= 3 and piece.isalpha()):
            result.append(piece)
    return result


def catalogue_words():
    """{"en": phrases that must not appear on a Dutch page, "nl": phrases that must not appear on an English
    page}, from the project's Dutch catalogue: for every message whose Dutch translation differs."""
    with CATALOGUE.open("rb") as file:
        catalog = gettext.GNUTranslations(file)._catalog
    english, dutch = set(), set()
    for msgid, msgstr in catalog.items():
        if isinstance(msgid, tuple):  # a plural form: (msgid, index)
            continue  # the plural's pieces are checked through its singular's and the forms' own pieces
        if not msgid or not msgstr:
            continue
        msgid = msgid.split("\x04")[-1]  # without its context
        for english_piece in phrases(msgid):
            english.add(english_piece)
        for dutch_piece in phrases(msgstr):
            dutch.add(dutch_piece)
    for (msgid, _index), msgstr in ((k, v) for k, v in catalog.items() if isinstance(k, tuple)):
        english.update(phrases(msgid.split("\x04")[-1]))
        dutch.update(phrases(msgstr))
    same = english & dutch
    return {"en": sorted(english - same - ALLOWED.keys()), "nl": sorted(dutch - same - ALLOWED.keys())}


def compile_words(words):
    """One regular expression per word list: whole words, case-sensitive."""
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")


E_MAIL = re.compile(r"\S+@\S+")


def foreign_words(text, pattern, verbatim):
    """{catalogue phrase of the other language: where in `text`}, without e-mail addresses and the
    `verbatim` texts (people's names, HR's free text)."""
    text = E_MAIL.sub(" ", text)
    for value in verbatim:
        text = text.replace(value, " ")
    text = " ".join(text.split())
    found = {}
    for match in pattern.finditer(text):
        found.setdefault(match.group(0), "…" + text[max(0, match.start() - 30):match.end() + 30] + "…")
    return found


# In the browser --------------------------------------------------------------------------------------

# The widest element that sticks out of the viewport while no ancestor clips or scrolls it.
WIDEST_OVERFLOW = """() => {
  const width = window.innerWidth;
  if (document.documentElement.scrollWidth <= width) {
    return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, worst: null};
  }
  const describe = (el) => {
    let text = el.tagName.toLowerCase();
    if (el.id) text += '#' + el.id;
    if (el.classList.length) text += '.' + [...el.classList].join('.');
    return text;
  };
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.documentElement; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (style.overflowX !== 'visible' && p !== document.body) return true;
    }
    return false;
  };
  let worst = null;
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0 && getComputedStyle(el).position !== 'absolute') continue;
    if (box.right > width + 0.5 && !clipped(el)) {
      if (!worst || box.right > worst.right) {
        const path = [];
        for (let p = el; p && p !== document.body && path.length < 4; p = p.parentElement) path.unshift(describe(p));
        worst = {right: Math.round(box.right), element: path.join(' > '),
                 text: (el.innerText || el.textContent || '').trim().slice(0, 60)};
      }
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, worst};
}"""

# What axe would find the same twice: the page around <main> (the header with the role's menu, the footer)
# and <main> itself, without what changes from request to request (the CSRF token, the language switch's
# return address, the menu's "current page" mark).
PAGE_PARTS = """() => {
  const clean = (html) => html
    .replace(/(name="(?:csrfmiddlewaretoken|next)" value=")[^"]*"/g, '$1"')
    .replace(/ aria-current="[^"]*"/g, '');
  const main = document.querySelector('main');
  const inside = main ? main.outerHTML : '';
  return [clean(inside), clean(document.body.outerHTML.replace(inside, ''))];
}"""

# The page's text in its own language: visible text nodes (and the labels a screen reader reads out) that
# are not inside an element marked with another language (lang="nl" on an English page is Dutch on purpose).
TEXT_IN_PAGE_LANGUAGE = """() => {
  const own = (document.documentElement.lang || '').split('-')[0];
  const inOwnLanguage = (el) => {
    if (el.closest('code, kbd, samp, pre')) return false;
    const marked = el.closest('[lang]');
    return !marked || marked.lang.split('-')[0] === own;
  };
  const parts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.data.trim() || !el || !el.checkVisibility() || !inOwnLanguage(el)) continue;
    parts.push(node.data);
  }
  for (const el of document.body.querySelectorAll('[aria-label], [placeholder], img[alt], input[type=submit]')) {
    if (!inOwnLanguage(el)) continue;
    for (const name of ['aria-label', 'placeholder', 'alt', 'value']) {
      if (el.hasAttribute(name) && (name !== 'value' || el.type === 'submit')) parts.push(el.getAttribute(name));
    }
  }
  return parts.join(' ');
}"""
