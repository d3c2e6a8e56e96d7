"""Proof of reading in Debian's Chromium, at a desk and on a phone: the button holds until the end of
a long text was on screen, then the acknowledgement records when and for how long; without
JavaScript it still works and records only the opening."""

import pytest
from playwright.sync_api import expect

from guidelines import publishing
from guidelines.models import Acknowledgement

from .factories import PASSWORD, make_draft

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
LONG = {
    "nl": "# Richtlijn\n\n" + "\n\n".join(f"## Regel {n}\n\nWees respectvol, ook online." for n in range(40)),
    "en": "# Guideline\n\n" + "\n\n".join(f"## Rule {n}\n\nBe respectful, online too." for n in range(40)),
}


@pytest.fixture
def long_strict_version(guideline, hilde, bob):
    draft = make_draft(guideline, author=hilde, bodies=LONG)
    draft.require_read_to_end = True
    draft.save()
    publishing.approve_version(version=draft, by=bob.user)
    return publishing.publish_version(version=draft, by=hilde, material=True)


def sign_in(page, live_server, width):
    page.set_viewport_size({"width": width, "height": 844})
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-mail address").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_button_holds_until_the_end_was_on_screen(live_server, page, screenshots, alice, long_strict_version,
                                                      width):
    sign_in(page, live_server, width)
    page.goto(f"{live_server.url}/guidelines/social-media/")
    button = page.get_by_role("button", name="Acknowledge")
    note = page.locator("#reading-note")
    expect(note).to_be_visible()
    expect(note).to_have_text("Read the text to its end first: the button works once you have reached the end.")
    expect(button).to_have_attribute("aria-disabled", "true")
    page.screenshot(path=screenshots / f"reading-held-{width}.png")

    # The button pressed before the end was on screen (a click that does not scroll the page, as from a
    # link to the form): nothing is sent, the note takes the focus. Reaching the form by scrolling
    # passes the end of the text, which is above it.
    button.dispatch_event("click")
    expect(note).to_be_focused()
    assert page.url == f"{live_server.url}/guidelines/social-media/"
    assert not Acknowledgement.objects.exists()

    page.keyboard.press("End")  # to the bottom of the page, past the end of the text
    expect(note).to_have_text("You have reached the end of the text.")
    expect(button).not_to_have_attribute("aria-disabled", "true")
    page.screenshot(path=screenshots / f"reading-reached-{width}.png", full_page=False)
    page.get_by_role("checkbox").check()
    button.click()
    page.get_by_role("heading", name="Receipt of your acknowledgement").wait_for()
    ack = Acknowledgement.objects.get(employee=alice)
    assert ack.read_to_end_at is not None and ack.seconds_on_text is not None
    assert ack.read_to_end_at >= ack.first_opened_at
    receipt = page.locator("main").inner_text()
    assert "Read to the end" in receipt and "Time on the text" in receipt
    page.screenshot(path=screenshots / f"reading-receipt-{width}.png", full_page=True)
    assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


def test_without_javascript_the_acknowledgement_records_the_opening_only(live_server, page, screenshots, alice,
                                                                        long_strict_version):
    context = page.context.browser.new_context(java_script_enabled=False, locale="en-GB",
                                               viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, live_server, 390)
    page.goto(f"{live_server.url}/guidelines/social-media/")
    expect(page.locator("#reading-note")).to_be_hidden()
    page.get_by_role("checkbox").check()
    page.get_by_role("button", name="Acknowledge").click()
    page.get_by_role("heading", name="Receipt of your acknowledgement").wait_for()
    ack = Acknowledgement.objects.get(employee=alice)
    assert ack.first_opened_at is not None and (ack.read_to_end_at, ack.seconds_on_text) == (None, None)
    assert "not recorded: the page reported no reading" in page.locator("main").inner_text()
    page.screenshot(path=screenshots / "reading-receipt-without-javascript.png", full_page=True)
    context.close()
