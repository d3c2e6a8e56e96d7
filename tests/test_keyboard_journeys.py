"""Keyboard-only journeys in Debian's Chromium: Tab, Shift+Tab, Enter and Space (and typing into the
fields), never a click. An approver finds a draft through the menu and approves it after a
confirmation; HR publishes an approved draft after a confirmation. Where a step depends on seeing
where one is, the focused element must show the focus ring. Waits use `expect`, never
`wait_for_function`: its string predicate is eval'd in the page, which the Content-Security-Policy
forbids."""

import re

import pytest
from playwright.sync_api import expect

from guidelines import publishing

from .factories import PASSWORD, give_authenticator, make_draft, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

MAX_TABS = 60


@pytest.fixture
def authenticators(hilde, bob):
    return {user.email: (give_authenticator(user), set()) for user in (hilde, bob.user)}


def focused(page):
    """The focused element: its tag, accessible-ish name, and whether a focus ring is drawn."""
    return page.evaluate("""() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        const label = el.labels && el.labels.length ? el.labels[0].innerText : "";
        return {tag: el.tagName.toLowerCase(), type: el.type || "", id: el.id || "",
                text: (label || el.innerText || el.value || el.getAttribute("aria-label") || "").trim(),
                href: el.getAttribute("href") || "",
                ring: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0
                      || (style.boxShadow && style.boxShadow !== "none")};
    }""")


def tab_to(page, matches, *, backwards=False, what=""):
    """Press Tab (or Shift+Tab) until the focused element matches; return it."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        element = focused(page)
        if matches(element):
            return element
    raise AssertionError(f"Tab never reached {what or matches}; last focus: {focused(page)}")


def named(text):
    return lambda element: element["text"] == text


def tab_and_press(page, text, key="Enter"):
    element = tab_to(page, named(text), what=text)
    assert element["ring"], f"no visible focus on {text!r}: {element}"
    page.keyboard.press(key)
    return element


def sign_in_by_keyboard(page, live_server, email, authenticators):
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")
    tab_to(page, lambda element: element["id"] == "id_login", what="the e-mail field")
    page.keyboard.type(email)
    tab_to(page, lambda element: element["id"] == "id_password", what="the password field")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    secret, used = authenticators[email]
    page.wait_for_selector("#id_code")
    assert focused(page)["id"] == "id_code"  # the code field has the focus on arrival
    page.keyboard.type(totp_code(secret, used=used))
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")


def test_an_approver_finds_the_draft_in_the_menu_and_approves_it_with_a_confirmation(
    live_server, page, screenshots, authenticators, hilde, bob, guideline, version_1
):
    draft = make_draft(guideline, author=hilde, bodies={"nl": "# Richtlijn\n\nMeld het binnen 24 uur.\n",
                                                        "en": "# Guideline\n\nReport it within 24 hours.\n"})
    publishing.request_review(version=draft, by=hilde)
    sign_in_by_keyboard(page, live_server, "bob@example.com", authenticators)

    tab_and_press(page, "Approvals")
    page.wait_for_url(f"{live_server.url}/approvals/")
    link = tab_to(page, lambda element: element["href"].endswith(f"/hr/drafts/{draft.pk}/"), what="the draft")
    assert link["ring"]
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/hr/drafts/{draft.pk}/")

    # The text comes before the decision: the skip link to it, then the decision's own controls.
    tab_and_press(page, "Go to the decision")
    expect(page).to_have_url(re.compile(r".*#decision$"))
    approve = tab_to(page, named("Approve…"), what="Approve…")
    assert approve["ring"]
    # Shift+Tab goes back past the decision into the text's changes: the text sits before the buttons.
    back = tab_to(page, lambda element: element["tag"] == "summary", backwards=True, what="the changes")
    assert back["text"] == "Changes against the current version"
    tab_and_press(page, "Approve…")
    page.wait_for_url(re.compile(rf".*/hr/drafts/{draft.pk}/approve/\?fingerprint=[0-9a-f]{{64}}$"))
    assert publishing.awaiting_approval(bob.user).count() == 1  # the confirmation page approved nothing

    # Enter on the button without the box ticked: the error summary takes the focus.
    tab_and_press(page, "Approve")
    page.wait_for_selector("#error-summary")
    expect(page.locator("#error-summary")).to_be_focused()
    assert page.title().startswith("Error:")
    error_link = tab_to(page, lambda element: element["href"] == "#id_confirm", what="the summary's link")
    assert error_link["ring"] and error_link["text"].endswith("Confirm that you have read the text and the changes.")
    page.keyboard.press("Enter")
    expect(page.locator("#id_confirm")).to_be_focused()
    page.keyboard.press("Space")
    assert page.locator("#id_confirm").is_checked()
    page.screenshot(path=screenshots / "keyboard-approve-confirm.png", full_page=True)
    tab_and_press(page, "Approve")
    # Back in the inbox (the browser keeps the #id_confirm of the error link across the redirect).
    page.wait_for_url(re.compile(rf"^{re.escape(live_server.url)}/approvals/(#.*)?$"))
    page.get_by_text("You approved the").wait_for()
    draft.refresh_from_db()
    assert (draft.status, draft.approved_by) == ("approved", bob.user)


def test_hr_publishes_an_approved_draft_with_a_confirmation(
    live_server, page, screenshots, authenticators, hilde, bob, guideline, version_1
):
    draft = make_draft(guideline, author=hilde)
    publishing.request_review(version=draft, by=hilde)
    publishing.approve_version(version=draft, by=bob.user)
    sign_in_by_keyboard(page, live_server, "hilde@example.com", authenticators)

    tab_and_press(page, "Manage guidelines")
    page.wait_for_url(f"{live_server.url}/hr/guidelines/")
    tab_and_press(page, "Social media guideline")
    page.wait_for_url(f"{live_server.url}/hr/guidelines/social-media/")
    tab_and_press(page, draft.label)
    page.wait_for_url(f"{live_server.url}/hr/drafts/{draft.pk}/")
    tab_and_press(page, "Publish…")
    page.wait_for_url(f"{live_server.url}/hr/drafts/{draft.pk}/publish/")

    material = tab_to(page, lambda element: element["type"] == "radio", what="the first choice")
    assert material["ring"] and material["text"].startswith("Material"), material
    page.keyboard.press("Space")
    tab_and_press(page, "I have checked the text and the audience.", key="Space")
    assert page.locator("#id_confirm").is_checked()
    page.screenshot(path=screenshots / "keyboard-publish-confirm.png", full_page=True)
    tab_and_press(page, "Publish now")
    page.get_by_text("Version 2.0 is published.").wait_for()
    draft.refresh_from_db()
    assert (draft.status, draft.number) == ("published", "2.0")
