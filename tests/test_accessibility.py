"""Every page, for every role, in Dutch and English, at 1280 and 390 px, in Debian's Chromium:
axe-core finds nothing serious or critical, nothing scrolls sideways on a phone, a Dutch page shows no
English interface text (and the reverse), and <html lang> says which language the page is in.

The pages are derived from the URL table (tests/accessibility_survey.py): a new pattern is opened
automatically as every role, or the survey fails naming it until it is listed as "not a page" with a
reason. The data is the demo organisation (guidelines/demo.py) plus drafts, an exemption, an extension,
an import, sent e-mails and an auditor pack. The browser visits every page once per role × language ×
width (one context each) and the four checks below read what it found.

SURVEY_REPORT=<file> writes every finding (axe by impact, overflow, words) as JSON.
"""

import hashlib
import json
import logging
import os
import time
from collections import Counter

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.utils import translation

from . import accessibility_survey as survey
from .conftest import CHROMIUM

TABS = 3  # pages audited side by side in one context (2 cores: one loads while others are audited)
# axe audits a page once for what it shows: a visit whose <main> was audited as another role (same language,
# width) and whose header and footer were audited on another of this role's pages is not audited again
# (allauth's account pages, the same for every signed-in role). SURVEY_AUDIT_ALL=1 audits every visit.
AUDIT_ALL = os.environ.get("SURVEY_AUDIT_ALL") == "1"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(scope="module")
def findings(live_server, django_db_setup, django_db_blocker, tmp_path_factory):
    """The survey, once for the module: the world, the URL table opened by every role, then the browser."""
    media = tmp_path_factory.mktemp("survey-media")
    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.ERROR)  # the 403s and 404s of the discovery are expected
    host = live_server.url.split("//")[1].split(":")[0]
    started = time.monotonic()
    try:
        with (
            django_db_blocker.unblock(),
            override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"], MEDIA_ROOT=media,
                              ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, host]),
            translation.override("en"),
        ):
            # An earlier transactional test may have flushed the tables that migrations fill (the role groups).
            serialized = getattr(connection, "_test_serialized_contents", None)
            if serialized:
                connection.creation.deserialize_db_from_string(serialized)
            world = survey.build_world(media)
            built = time.monotonic()
            patterns, problems = survey.discover(world)
            discovered = time.monotonic()
            visits, spent = _visit(live_server.url, world, patterns)
    finally:
        request_log.setLevel(level)
    result = {"patterns": patterns, "problems": problems, "visits": visits,
              "timing": {"data": built - started, "discovery": discovered - built,
                         "browser": time.monotonic() - discovered, "browser_waits": spent}}
    if os.environ.get("SURVEY_REPORT"):
        _write_report(result, os.environ["SURVEY_REPORT"])
    return result


def _visit(base, world, patterns):
    """Every (role, language, width) in its own browser context; every page that role can open, TABS at a
    time: while axe works in one tab (its own renderer process) the next page loads in another."""
    from playwright.sync_api import sync_playwright

    words = survey.catalogue_words()
    foreign = {"nl": survey.compile_words(words["en"]), "en": survey.compile_words(words["nl"])}
    axe_options = {"runOnly": {"type": "tag", "values": survey.AXE_TAGS}, "resultTypes": ["violations"]}
    axe_script = Axe().axe_script
    visits = []
    spent = Counter()  # seconds waited for: loading, settling, axe, the other checks
    audited = {}  # (language, width, "main" or "frame", digest) → the first visit that axe audited with it
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
        )
        for role in survey.ROLES:
            urls = [(pattern.key, url) for pattern in patterns for url in pattern.roles.get(role, ())]
            for language in survey.LANGUAGES:
                for width in survey.WIDTHS:
                    clock = time.monotonic()
                    context = browser.new_context(locale="en-GB" if language == "en" else "nl-NL",
                                                  viewport={"width": width, "height": 900 if width > 600 else 844})
                    context.add_init_script(axe_script)
                    cookies = [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base}]
                    if role != "anonymous":
                        cookies.append({"name": settings.SESSION_COOKIE_NAME, "url": base,
                                        "value": survey.signed_in_session(world.users[role])})
                    context.add_cookies(cookies)
                    tabs = [context.new_page() for _ in range(TABS)]
                    for tab in tabs:
                        tab.set_default_timeout(20_000)
                        _count_requests(tab)
                    spent["contexts"] += time.monotonic() - clock
                    for start in range(0, len(urls), TABS):
                        batch = []
                        for tab, (key, url) in zip(tabs, urls[start:start + TABS], strict=False):
                            visit = {"pattern": key, "url": url, "role": role, "language": language, "width": width}
                            visits.append(visit)
                            clock = time.monotonic()
                            response = tab.goto(base + url, wait_until="load")
                            spent["load"] += time.monotonic() - clock
                            visit["status"] = response.status if response else None
                            visit["final_url"] = tab.url.removeprefix(base)
                            if visit["status"] != 200 or visit["final_url"] != url:
                                continue  # reported by test_the_browser_sees_what_the_client_saw
                            clock = time.monotonic()
                            _settle(tab)
                            parts = [hashlib.sha256(part.encode()).hexdigest()
                                     for part in tab.evaluate(survey.PAGE_PARTS)]
                            spent["settle"] += time.monotonic() - clock
                            seen = audited.get((language, width, "main", parts[0]))
                            if seen and (language, width, "frame", parts[1]) in audited and not AUDIT_ALL:
                                visit["audited_as"] = seen  # the same <main> and the same page around it
                            else:
                                audited.setdefault((language, width, "main", parts[0]), f"{role} at {url}")
                                audited.setdefault((language, width, "frame", parts[1]), f"{role} at {url}")
                                # Started, not awaited: the tabs' audits run side by side.
                                clock = time.monotonic()
                                tab.evaluate("options => { window.__audit = axe.run(document, options); }",
                                             axe_options)
                                spent["axe"] += time.monotonic() - clock
                            batch.append((tab, visit))
                        for tab, visit in batch:
                            clock = time.monotonic()
                            result = {"violations": []} if "audited_as" in visit else tab.evaluate("window.__audit")
                            spent["axe"] += time.monotonic() - clock
                            clock = time.monotonic()
                            visit["violations"] = [
                                {"id": v["id"], "impact": v["impact"], "help": v["help"],
                                 "nodes": [{"target": " ".join(map(str, node["target"])),
                                            "summary": " ".join((node.get("failureSummary") or "").split())[:300]}
                                           for node in v["nodes"]]}
                                for v in result["violations"]
                            ]
                            visit["layout"] = tab.evaluate(survey.WIDEST_OVERFLOW)
                            visit["html_lang"] = tab.evaluate("document.documentElement.lang")
                            text = tab.evaluate(survey.TEXT_IN_PAGE_LANGUAGE)
                            visit["foreign_words"] = survey.foreign_words(text, foreign[language], world.verbatim)
                            spent["checks"] += time.monotonic() - clock
                    context.close()
        browser.close()
    return visits, {name: round(seconds, 1) for name, seconds in spent.items()}


def _count_requests(tab):
    """Requests of the page still under way (the draft editor's live preview is fetched after loading)."""
    tab.in_flight = set()
    tab.on("request", lambda request: tab.in_flight.add(request))
    tab.on("requestfinished", lambda request: tab.in_flight.discard(request))
    tab.on("requestfailed", lambda request: tab.in_flight.discard(request))


def _settle(tab):
    """Until the page's own requests are answered and it has drawn what they brought."""
    for _ in range(200):
        if not tab.in_flight:
            break
        tab.wait_for_timeout(25)
    tab.evaluate("() => new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve)))")


def _write_report(result, path):
    patterns = [{"pattern": p.key, "route": p.route, "urls": p.urls, "roles": p.roles,
                 "not_a_page": p.excluded(), "shadowed_by": p.shadowed_by} for p in result["patterns"]]
    with open(path, "w", encoding="utf-8") as file:
        json.dump({"patterns": patterns, "problems": result["problems"], "visits": result["visits"],
                   "timing": result["timing"]}, file, indent=1)


def _checked(findings):
    return [visit for visit in findings["visits"] if "violations" in visit]


def _where(visit):
    return f"{visit['url']} as {visit['role']}, {visit['language']}, {visit['width']} px"


def test_every_url_pattern_is_a_checked_page_or_says_why_not(findings):
    assert not findings["problems"], "\n".join(findings["problems"])
    checked = {visit["pattern"] for visit in _checked(findings)}
    pages = {pattern.key for pattern in findings["patterns"] if pattern.roles}
    assert pages and pages <= checked
    # The survey really covers the product: the employee's, HR's, the auditor's and the public pages.
    assert {"guidelines:home", "guidelines:hr_draft", "guidelines:report_status", "account_login",
            "guidelines:public_verify"} <= checked


def test_the_browser_sees_what_the_client_saw(findings):
    wrong = [f"{_where(visit)}: {visit['status']} at {visit['final_url']}" for visit in findings["visits"]
             if "violations" not in visit]
    assert not wrong, "Pages the test client opened that the browser did not get:\n" + "\n".join(wrong)


def test_axe_finds_nothing_serious_or_critical(findings):
    visits = [visit for visit in _checked(findings) if "audited_as" not in visit]
    totals = Counter(v["impact"] for visit in visits for v in visit["violations"])
    problems = [
        f"{_where(visit)}: [{v['impact']}] {v['id']} ({v['help']}): "
        + "; ".join(f"{node['target']}: {node['summary']}" for node in v["nodes"][:3])
        + (f" (+{len(v['nodes']) - 3} more)" if len(v["nodes"]) > 3 else "")
        for visit in visits for v in visit["violations"] if v["impact"] in survey.BLOCKING
    ]
    assert len(visits) > 50
    skipped = len(_checked(findings)) - len(visits)
    assert not problems, (f"axe over {len(visits)} page visits ({skipped} more showed what was audited already): "
                          f"{dict(totals)}\n" + "\n".join(problems))


def test_no_page_scrolls_sideways_on_a_phone(findings):
    phone = [visit for visit in _checked(findings) if visit["width"] == 390]
    assert phone
    wide = [
        f"{_where(visit)}: {visit['layout']['scrollWidth']} px wide"
        + (f", widest: {visit['layout']['worst']['element']} reaching {visit['layout']['worst']['right']} px "
           f"({visit['layout']['worst']['text']!r})" if visit["layout"]["worst"] else "")
        for visit in phone if visit["layout"]["scrollWidth"] > visit["layout"]["innerWidth"]
    ]
    assert not wide, "\n".join(wide)


def test_pages_speak_one_language(findings):
    visits = _checked(findings)
    wrong_lang = [f"{_where(visit)}: <html lang={visit['html_lang']!r}>" for visit in visits
                  if visit["html_lang"].split("-")[0] != visit["language"]]
    mixed = [f"{_where(visit)}: " + ", ".join(f"{word!r} in {context!r}" for word, context in
                                              visit["foreign_words"].items())
             for visit in visits if visit["foreign_words"]]
    assert not wrong_lang, "\n".join(wrong_lang)
    assert not mixed, "Interface text of the other language (from the catalogue):\n" + "\n".join(mixed)


def test_the_word_lists_come_from_the_catalogue():
    words = survey.catalogue_words()
    assert "There is a problem" in words["en"] and "Er is een probleem" in words["nl"]
    assert len(words["en"]) > 200 and len(words["nl"]) > 200
    pattern = survey.compile_words(words["en"])
    found = survey.foreign_words("Fout: There is a problem met het formulier.", pattern, [])
    assert list(found) == ["There is a problem"]
    # Names and addresses are not interface text: Emma Employee stays Emma Employee on a Dutch page.
    assert survey.foreign_words("Welkom, Emma Employee (employee@example.com)", pattern, ["Emma Employee"]) == {}


def test_the_browser_checks_see_what_they_look_for(page):
    """The overflow and text checks on a made-up page: they can fail."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.set_content("""<!DOCTYPE html><html lang="en"><body>
      <p>Welcome <span lang="nl">Richtlijn sociale media</span> <code>department</code></p>
      <p style="display:none">Hidden text</p><button aria-label="Close the box">×</button>
      <div class="table-wrap" style="overflow-x:auto"><table><tr><td style="min-width:900px">wide</td></tr>
      </table></div>
      <section><p id="too-wide" style="width:600px">A paragraph wider than the phone</p></section>
      </body></html>""")
    layout = page.evaluate(survey.WIDEST_OVERFLOW)
    assert layout["scrollWidth"] > layout["innerWidth"] == 390
    assert layout["worst"]["element"] == "section > p#too-wide"  # not the table inside its scroll box
    text = " ".join(page.evaluate(survey.TEXT_IN_PAGE_LANGUAGE).split())
    assert text == "Welcome × wide A paragraph wider than the phone Close the box"
    page.set_content('<!DOCTYPE html><html lang="en"><body><p>Fits</p></body></html>')
    assert page.evaluate(survey.WIDEST_OVERFLOW) == {"scrollWidth": 390, "innerWidth": 390, "worst": None}


def test_a_new_pattern_cannot_slip_through_unnamed():
    """A pattern whose parameters the survey cannot fill is named, with what to add."""
    world = type("World", (), {"guideline": type("Guideline", (), {"slug": "social-media"})()})()
    new_page = survey.Pattern("hr/teams/<int:pk>/", "guidelines:hr_team_page", ("pk",))
    assert survey.fill(new_page, world) == ([], "which object's pk? add 'guidelines:hr_team_page' to PK_OBJECTS")
    unknown = survey.Pattern("hr/teams/<str:team>/", "guidelines:hr_team", ("team",))
    assert survey.fill(unknown, world) == ([], "no value for the parameter 'team': add it to PARAMETERS")
    assert survey.fill(survey.Pattern("guidelines/<slug:slug>/", "guidelines:detail", ("slug",)), world) == (
        ["/guidelines/social-media/"], None)
    assert survey.Pattern("admin/guidelines/", "admin:app_list", ()).excluded().startswith("Django's own")
    assert survey.Pattern("dashboards/", "guidelines:dashboard_overview", ()).excluded() is None
