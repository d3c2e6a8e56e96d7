"""HR journey in Debian's Chromium: draft → approval by a second person → publish → the dashboard
moves after an employee acknowledges."""

import re

import pytest

from .factories import PASSWORD, give_authenticator, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


AUTHENTICATORS = {}  # e-mail address → (secret, codes used): HR and approvers pass a second factor
USED_CODES = {}


@pytest.fixture(autouse=True)
def authenticator_apps(hilde, bob):
    for user in (hilde, bob.user):
        AUTHENTICATORS[user.email] = give_authenticator(user)
        USED_CODES[user.email] = set()


def _sign_in(page, live_server, email):  # noqa: F811
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if email in AUTHENTICATORS:
        page.locator('input[name="code"]').fill(totp_code(AUTHENTICATORS[email], used=USED_CODES[email]))
        page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(f"{live_server.url}/")


def _acknowledged_count(page):  # noqa: F811
    card = page.locator("li.card", has=page.get_by_role("heading", name="Acknowledged", exact=True))
    return card.locator("strong").inner_text()


def test_hr_drafts_gets_approval_publishes_and_sees_the_dashboard_move(
    live_server, page, screenshots, hilde, bob, alice, guideline, version_1  # noqa: F811
):
    _sign_in(page, live_server, "hilde@example.com")
    page.get_by_role("link", name="Manage guidelines").click()
    page.get_by_role("link", name="Social media guideline").click()
    page.get_by_role("link", name="New draft").click()
    english = page.get_by_label("Text in English (Markdown)")
    english.fill(english.input_value().replace("Report it straight away.", "Report it within 24 hours."))
    page.locator("#preview-en").filter(has_text="within 24 hours").wait_for()  # the live preview followed
    page.get_by_label("Summary of changes (English)").fill("Report within 24 hours.")
    page.get_by_role("button", name="Save draft").click()
    page.get_by_text("The draft was saved.").wait_for()
    assert "within 24 hours." in page.locator(".diff ins").first.inner_text()
    page.get_by_role("button", name="Ask for approval").click()
    draft_url = page.url
    page.screenshot(path=screenshots / "hr-1-draft.png", full_page=True)

    _sign_in(page, live_server, "bob@example.com")
    page.goto(draft_url)
    page.get_by_role("link", name="Approve…").click()
    page.get_by_label("I have read the text in every language and the changes against the current version.").check()
    page.get_by_role("button", name="Approve").click()
    page.get_by_text("You approved the").wait_for()

    _sign_in(page, live_server, "hilde@example.com")
    page.goto(draft_url)
    page.get_by_role("link", name="Publish…").click()
    assert re.search(r"\d+ employees? (is|are) in scope today", page.content())
    page.get_by_role("radio", name=re.compile("Material")).check()
    page.get_by_label("I have checked the text and the audience.").check()
    page.screenshot(path=screenshots / "hr-2-publish.png", full_page=True)
    page.get_by_role("button", name="Publish now").click()
    page.get_by_text("Version 2.0 is published.").wait_for()

    page.goto(f"{live_server.url}/dashboards/social-media/")
    before = _acknowledged_count(page)
    page.screenshot(path=screenshots / "hr-3-dashboard-before.png", full_page=True)

    _sign_in(page, live_server, "alice@example.com")
    page.get_by_role("link", name="Read and acknowledge").click()
    page.get_by_label(re.compile("I have read and understood")).check()
    page.get_by_role("button", name="Acknowledge").click()
    page.get_by_role("heading", name="Receipt of your acknowledgement").wait_for()

    _sign_in(page, live_server, "hilde@example.com")
    page.goto(f"{live_server.url}/dashboards/social-media/")
    after = _acknowledged_count(page)
    page.screenshot(path=screenshots / "hr-4-dashboard-after.png", full_page=True)
    assert int(after) == int(before) + 1


def test_the_trend_chart_labels_are_readable_on_a_phone_and_a_wide_screen(
    live_server, page, bob, alice, version_1  # noqa: F811
):
    """The chart scales with the page: once drawn 960 units wide, its labels were ~5 px at 390 px."""
    _sign_in(page, live_server, "bob@example.com")
    for width, shown, hidden in ((390, "chart-narrow", "chart-wide"), (1280, "chart-wide", "chart-narrow")):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/team/")
        assert page.locator(f"svg.{hidden}").is_hidden()
        labels = page.locator(f"svg.{shown} text")
        assert labels.count() == 7  # five grid labels, the first and the last day
        heights = [labels.nth(index).bounding_box()["height"] for index in range(labels.count())]
        assert all(11 <= height <= 24 for height in heights), (width, heights)
        assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_the_draft_preview_keeps_list_bullets_and_is_reachable_by_keyboard(
    live_server, page, hilde, guideline, version_1  # noqa: F811
):
    _sign_in(page, live_server, "hilde@example.com")
    page.goto(f"{live_server.url}/hr/guidelines/social-media/drafts/new/")
    page.get_by_label("Text in English (Markdown)").fill("# Guideline\n\n- Be respectful.\n- Report it.\n")
    item = page.locator("#preview-en li").first
    item.wait_for()
    assert item.evaluate("element => getComputedStyle(element).listStyleType") == "disc"
    assert page.locator("#preview-en").evaluate("element => parseFloat(getComputedStyle(element).paddingLeft)") > 8
    page.get_by_label("Text in English (Markdown)").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "preview-en"


def test_the_audience_choices_hide_while_everyone_must_acknowledge(live_server, page, hilde, guideline):  # noqa: F811
    _sign_in(page, live_server, "hilde@example.com")
    page.goto(f"{live_server.url}/hr/guidelines/social-media/edit/")
    everyone = page.get_by_label("Everyone must acknowledge it")
    assert everyone.is_checked()
    assert page.locator("#id_audience_departments").is_hidden() and page.locator("#id_audience_groups").is_hidden()
    everyone.press("Space")
    assert page.locator("#id_audience_departments").is_visible() and page.locator("#id_audience_groups").is_visible()
