"""Keyboard-only journeys in Debian's Chromium: the employee acknowledges, the auditor downloads an
auditor pack and verifies it. Only Tab, Shift+Tab, Enter, Space, arrow keys and typing into the
focused field; choosing a file for an upload is the one exception (the system's file picker cannot be
driven), and it goes to the field that has the keyboard focus."""

import pytest
from playwright.sync_api import expect

from guidelines.models import Acknowledgement, Report

from .factories import PASSWORD, give_authenticator, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

FOCUSED_NAME = """() => {
  const element = document.activeElement
  const labels = element.labels && element.labels.length ? element.labels[0].innerText : ''
  return (element.getAttribute('aria-label') || labels || element.innerText || element.value || '').trim()
}"""


def tab_to(page, name, *, key="Tab", limit=80):
    """Press Tab until the focused element's accessible name starts with `name`; fail if it never does."""
    seen = []
    for _ in range(limit):
        page.keyboard.press(key)
        focused = page.evaluate(FOCUSED_NAME)
        if focused.startswith(name):
            return
        seen.append(focused[:40])
    raise AssertionError(f"{name!r} never took the focus; the Tab order was {seen}")


def assert_focus_is_visible(page):
    """The focus ring: an outline of at least 3 px (WCAG 2.4.7 and 2.4.11)."""
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineWidth")
    assert float(outline.removesuffix("px")) >= 3, outline


def sign_in_by_keyboard(page, live_server, email, *, secret=None):
    page.goto(f"{live_server.url}/accounts/login/")
    tab_to(page, "E-mail address")
    page.keyboard.type(email)
    tab_to(page, "Password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    if secret:
        page.locator('input[name="code"]').wait_for()
        tab_to(page, "Code")
        page.keyboard.type(totp_code(secret))
        page.keyboard.press("Enter")
    page.get_by_role("navigation", name="Main").wait_for()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_employee_acknowledges_by_keyboard_and_an_error_lands_at_the_checkbox(
        live_server, page, alice, version_1, width):
    page.set_viewport_size({"width": width, "height": 900})
    sign_in_by_keyboard(page, live_server, "alice@example.com")
    tab_to(page, "Social media guideline")
    assert_focus_is_visible(page)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Social media guideline", level=1).wait_for()
    # Acknowledging without the tick: the error summary takes the focus and its link leads to the box.
    tab_to(page, "Acknowledge")
    page.keyboard.press("Enter")
    expect(page.locator("[data-error-summary]")).to_be_focused()
    assert page.title().startswith("Error:")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("checkbox")).to_be_focused()
    page.keyboard.press("Space")
    tab_to(page, "Acknowledge")
    assert_focus_is_visible(page)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Receipt of your acknowledgement").wait_for()
    assert Acknowledgement.objects.filter(employee=alice).count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_the_auditor_downloads_a_pack_and_verifies_it_by_keyboard(live_server, page, arjen, alice, version_1,
                                                                   tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    sign_in_by_keyboard(page, live_server, "arjen@example.com", secret=give_authenticator(arjen))
    tab_to(page, "Reports")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Auditor pack", level=1).wait_for()
    tab_to(page, "Versions")
    page.keyboard.press("ArrowDown")  # from "The current version" to "Every version"
    assert page.locator("#id_version").input_value() == "all"
    tab_to(page, "Generate the PDF")
    assert_focus_is_visible(page)
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    pdf = tmp_path / "pack.pdf"
    download.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")
    report = Report.objects.get()
    assert report.parameters["version"] == "all"

    tab_to(page, "Verify a report", key="Shift+Tab")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Verify a report", level=1).wait_for()
    tab_to(page, "PDF file")
    page.locator(":focus").set_input_files(pdf)
    tab_to(page, "Verify")
    page.keyboard.press("Enter")
    result = page.get_by_role("heading", name="Genuine: this file is a report we generated, unaltered.")
    result.wait_for()
    assert report.verification_code in page.locator("section[aria-labelledby=result-heading]").inner_text()
