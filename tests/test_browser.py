"""The employee journey in Debian's Chromium, driven by Playwright (no downloaded browser)."""


import pytest
from playwright.sync_api import expect

from guidelines import services
from guidelines.models import Acknowledgement

from .factories import PASSWORD, publish

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
V2_BODIES = {
    "nl": "# Richtlijn\n\n## Uitgangspunten\nWees respectvol.\n\n## Melden\nMeld het binnen 24 uur.\n",
    "en": "# Guideline\n\n## Principles\nBe respectful.\n\n## Reporting\nReport it within 24 hours.\n",
}


def test_employee_reads_the_changes_acknowledges_and_finds_it_in_history(
    live_server, page, screenshots, alice, guideline, version_1, hilde, bob, web_meta
):
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    publish(guideline, author=hilde, approver=bob.user, bodies=V2_BODIES)

    page.goto(f"{live_server.url}/")
    page.get_by_label("E-mail address").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="To acknowledge").wait_for()
    page.screenshot(path=screenshots / "journey-1-home.png", full_page=True)

    page.get_by_role("link", name="Read and acknowledge").click()
    changes = page.get_by_role("region", name="What changed since version 1.0, which you acknowledged")
    assert "within 24 hours." in changes.locator(".diff ins").all_inner_texts()[0]
    assert "straight away." in changes.locator(".diff del").all_inner_texts()[0]
    page.screenshot(path=screenshots / "journey-2-guideline.png", full_page=True)

    page.get_by_role("button", name="Acknowledge").click()
    summary = page.get_by_role("heading", name="There is a problem")
    summary.wait_for()
    # The error summary, beside the form, has the focus; its link leads to the checkbox.
    expect(page.locator("#error-summary")).to_be_focused()
    assert page.title().startswith("Error:")
    page.get_by_role("link", name="Please tick the box").click()
    expect(page.locator("#id_confirm")).to_be_focused()
    assert Acknowledgement.objects.filter(employee=alice, major=2).count() == 0

    page.get_by_label("I have read and understood the Social media guideline, version 2.0.").check()
    page.get_by_role("button", name="Acknowledge").click()
    page.get_by_role("heading", name="Receipt of your acknowledgement").wait_for()
    assert "Thank you. Your acknowledgement has been recorded." in page.content()
    page.screenshot(path=screenshots / "journey-3-receipt.png", full_page=True)

    page.get_by_role("link", name="My acknowledgements").click()
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    assert rows.first.locator("td").nth(1).inner_text() == "2.0"
    page.screenshot(path=screenshots / "journey-4-history.png", full_page=True)

    ack = Acknowledgement.objects.get(employee=alice, major=2)
    assert (ack.channel, ack.auth_method, ack.language) == ("web", "password", "en")
    assert "Chrome" in ack.user_agent


def sign_in_on_a_phone(live_server, page, email):
    """At 390 px, by keyboard: the address, the password, Enter."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")


def test_keyboard_only_employee_can_acknowledge_on_a_phone(live_server, page, alice, version_1, screenshots):
    sign_in_on_a_phone(live_server, page, "alice@example.com")
    page.get_by_role("heading", name="To acknowledge").wait_for()
    page.goto(f"{live_server.url}/guidelines/social-media/")
    checkbox = page.get_by_role("checkbox")
    checkbox.focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Acknowledge"
    page.screenshot(path=screenshots / "mobile-guideline.png")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Receipt of your acknowledgement").wait_for()
    assert Acknowledgement.objects.filter(employee=alice).count() == 1
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow, "the page scrolls sideways on a phone"


@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/guidelines/social-media/", "/my/acknowledgements/"])
def test_pages_have_no_accessibility_violations(live_server, page, alice, guideline, version_1, hilde, bob,
                                               web_meta, path):
    """axe-core (shipped inside axe-playwright-python, no network) finds no WCAG violations."""
    from axe_playwright_python.sync_playwright import Axe

    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    publish(guideline, author=hilde, approver=bob.user, bodies=V2_BODIES)
    if path != "/accounts/login/":
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("E-mail address").fill("alice@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="To acknowledge").wait_for()
    page.goto(f"{live_server.url}{path}")
    results = Axe().run(page, options={"runOnly": ["wcag2a", "wcag2aa", "wcag21aa", "best-practice"]})
    assert len(results.response["passes"]) > 10  # the audit really ran
    assert results.violations_count == 0, results.generate_report()


def test_the_employee_pages_do_not_scroll_sideways_on_a_phone(live_server, page, alice, version_1, web_meta):
    """At 390 px: visually hidden texts in a table (absolutely positioned) once widened the whole page of
    "My acknowledgements" by ~165 px; a table may scroll inside its own box, the page may not."""
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    sign_in_on_a_phone(live_server, page, "alice@example.com")
    page.get_by_role("navigation", name="Main").wait_for()
    for path in ("/", "/my/acknowledgements/", "/guidelines/social-media/", "/guidelines/social-media/versions/"):
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
