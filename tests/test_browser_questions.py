"""Questions and objections in Debian's Chromium, at a desk and on a phone: an employee asks the owner
of a guideline a question from its page (the empty form first: the error summary takes the focus), the
owner answers it from the inbox, the employee reads the answer in the thread and on the guideline's
page; then the employee records an objection, which stays open for HR and leaves them pending."""

import pytest
from playwright.sync_api import expect

from guidelines import status
from guidelines.models import Objection, Question

from .factories import PASSWORD, make_employee

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def olga(guideline, version_1):
    """The owner of the guideline, an employee who signs in with a password like any other."""
    owner = make_employee("olga@example.com", "E0077", department="Compliance")
    guideline.owner = owner.user
    guideline.save()
    return owner


def sign_in(page, live_server, email, width):
    page.set_viewport_size({"width": width, "height": 844})
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def no_sideways_scrolling(page):
    assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


@pytest.mark.parametrize("width", [1280, 390])
def test_an_employee_asks_the_owner_and_reads_the_answer(live_server, page, screenshots, alice, olga, version_1,
                                                         width):
    sign_in(page, live_server, "alice@example.com", width)
    page.goto(f"{live_server.url}/guidelines/social-media/")
    expect(page.get_by_text("Owner: Olga Example")).to_be_visible()
    page.get_by_role("link", name="Ask the owner a question").click()
    expect(page.get_by_role("heading", name="Ask the owner a question")).to_be_visible()

    page.get_by_role("button", name="Send the question").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Write your question.")
    field = page.get_by_label("Your question")
    expect(field).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=screenshots / f"questions-ask-error-{width}.png", full_page=True)
    no_sideways_scrolling(page)
    assert not Question.objects.exists()

    field.fill("May I share photos of the team outing on my own account?\nThey show colleagues, not clients.")
    page.get_by_role("button", name="Send the question").click()
    expect(page.get_by_role("heading", name="Question about the Social media guideline, version 1.0")).to_be_visible()
    expect(page.get_by_text("Your question has been sent to Olga Example")).to_be_visible()
    expect(page.locator("main")).to_contain_text("waiting for an answer")
    thread_url = page.url
    page.screenshot(path=screenshots / f"questions-asked-{width}.png", full_page=True)

    # The owner, in a browser of her own: the inbox, the thread, her answer.
    owner_page = page.context.browser.new_context(locale="en-GB").new_page()
    sign_in(owner_page, live_server, "olga@example.com", width)
    owner_page.goto(f"{live_server.url}/questions/")
    owner_page.get_by_role("link", name="May I share photos of the team outing").click()
    owner_page.get_by_label("Your answer").fill("Yes, if everyone in the photos agrees. Do not tag colleagues.")
    owner_page.get_by_role("button", name="Send the answer").click()
    expect(owner_page.get_by_text("Your answer has been sent to Alice Example.")).to_be_visible()
    owner_page.screenshot(path=screenshots / f"questions-answered-by-owner-{width}.png", full_page=True)
    owner_page.context.close()

    page.goto(thread_url)
    thread = page.locator("ol.thread > li")
    expect(thread).to_have_count(2)
    expect(thread.nth(1)).to_contain_text("Yes, if everyone in the photos agrees.")
    expect(thread.nth(1)).to_contain_text("owner of the guideline")
    expect(page.locator("main .badge")).to_have_text("answered")
    page.screenshot(path=screenshots / f"questions-thread-answered-{width}.png", full_page=True)
    no_sideways_scrolling(page)

    page.goto(f"{live_server.url}/guidelines/social-media/")
    own = page.get_by_role("list", name="Your questions and objections about this guideline")
    expect(own).to_contain_text("Your question about version 1.0")
    expect(own).to_contain_text("answered")


@pytest.mark.parametrize("width", [1280, 390])
def test_an_employee_objects_and_stays_pending(live_server, page, screenshots, alice, olga, version_1, width):
    sign_in(page, live_server, "alice@example.com", width)
    page.goto(f"{live_server.url}/guidelines/social-media/")
    page.get_by_role("link", name="Object, or ask for an exception").click()
    page.get_by_role("button", name="Record it").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Choose an objection or an exception request.")
    expect(summary).to_contain_text("Give your reason.")
    page.screenshot(path=screenshots / f"questions-object-error-{width}.png", full_page=True)
    no_sideways_scrolling(page)
    # The summary's link leads to the group of choices.
    summary.get_by_role("link", name="Choose an objection or an exception request.").click()
    expect(page.locator("fieldset#id_kind")).to_be_visible()

    page.get_by_label("An objection: I have read this version and I object to it").check()
    page.get_by_label("Your reason").fill("Private accounts are private: the rule on them goes too far.")
    page.get_by_role("button", name="Record it").click()
    expect(page.get_by_role("heading", name="Objection to the Social media guideline, version 1.0")).to_be_visible()
    main = page.locator("main")
    expect(main).to_contain_text("I have read the Social media guideline, version 1.0, and I object to it.")
    expect(main).to_contain_text("Not handled yet")
    expect(main).to_contain_text("does not count as an acknowledgement")
    page.screenshot(path=screenshots / f"questions-objection-{width}.png", full_page=True)
    no_sideways_scrolling(page)

    objection = Objection.objects.get(employee=alice)
    assert objection.kind == "objection" and objection.content_hash == version_1.texts.get(language="en").content_hash
    assert status.standings(alice, [version_1])[version_1.pk].status == status.Status.PENDING
    page.goto(f"{live_server.url}/my/questions/")
    expect(page.get_by_role("link", name="Objection")).to_be_visible()
    expect(main).to_contain_text("waiting for HR")
