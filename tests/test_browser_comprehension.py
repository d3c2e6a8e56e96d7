"""The comprehension check in Debian's Chromium, on a phone and at a desk: a wrong answer shows the
passage that answers it, the right one then acknowledges, and the receipt names the tries."""

import pytest
from playwright.sync_api import expect

from guidelines import comprehension, publishing
from guidelines.models import Acknowledgement

from .factories import make_draft
from .test_browser_reading import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def checked(guideline, hilde, bob):
    draft = make_draft(guideline, author=hilde)
    comprehension.set_questions(version=draft, by=hilde, questions=[{
        "text": {"nl": "Mag je klantgegevens online delen?", "en": "May you share client data online?"},
        "choices": [{"nl": "Ja, met collega's", "en": "Yes, with colleagues"}, {"nl": "Nooit", "en": "Never"}],
        "correct": 1, "hint": {"nl": "Deel nooit klantgegevens.", "en": "Never share client data online."}}])
    publishing.approve_version(version=draft, by=bob.user)
    return publishing.publish_version(version=draft, by=hilde, material=True)


@pytest.mark.parametrize("width", [390, 1280])
def test_a_wrong_answer_shows_the_passage_then_the_right_one_acknowledges(live_server, page, screenshots, alice,
                                                                          checked, width):
    sign_in(page, live_server, width)
    page.goto(f"{live_server.url}/guidelines/social-media/")
    group = page.get_by_role("group", name="1. May you share client data online?")
    group.get_by_label("Yes, with colleagues").check()
    page.get_by_role("checkbox", name="I have read and understood").check()
    page.get_by_role("button", name="Acknowledge").click()

    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#error-summary")).to_contain_text("Question 1: not quite")
    expect(page.locator(".quiz-hint")).to_have_text("Never share client data online.")
    assert not Acknowledgement.objects.exists()
    page.screenshot(path=screenshots / f"comprehension-wrong-{width}.png", full_page=True)

    page.locator("#error-summary a").first.click()
    group.get_by_label("Never").check()
    page.get_by_role("checkbox", name="I have read and understood").check()
    page.get_by_role("button", name="Acknowledge").click()
    page.get_by_role("heading", name="Receipt of your acknowledgement").wait_for()
    ack = Acknowledgement.objects.get()
    assert ack.answers == '[{"question":1,"choice":1,"tries":2}]'
    expect(page.locator("main")).to_contain_text("1 question answered rightly (tries: 2)")
    page.screenshot(path=screenshots / f"comprehension-receipt-{width}.png", full_page=True)
    assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
