"""The works council step in Debian's Chromium, on a desktop and on a phone: HR finds "Record the works
council's consent" as the next step of an approved draft, gets the form back with its errors, records
the consent, publishes, and finds the consent in the guideline's version history."""

import re
from datetime import timedelta

import pytest
from django.utils import formats, timezone
from playwright.sync_api import expect

from guidelines import publishing

from .factories import PASSWORD, give_authenticator, make_draft, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def approved_draft(guideline, version_1, hilde, bob):
    guideline.requires_works_council_consent = True
    guideline.save()
    draft = make_draft(guideline, author=hilde, bodies={"nl": "# Nieuw\n\nAnders.\n", "en": "# New\n\nOther.\n"})
    return publishing.approve_version(version=draft, by=bob.user)


def _sign_in_as_hilde(page, live_server, hilde):
    secret = give_authenticator(hilde)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-mail address").fill(hilde.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator('input[name="code"]').fill(totp_code(secret))
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(f"{live_server.url}/")


def _scrolls_sideways(page):
    return page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth")


@pytest.mark.parametrize("width", [1280, 390])
def test_hr_records_the_works_councils_consent_and_publishes(live_server, page, screenshots, hilde, approved_draft,
                                                             width):
    page.set_viewport_size({"width": width, "height": 900 if width > 600 else 844})
    _sign_in_as_hilde(page, live_server, hilde)
    page.goto(f"{live_server.url}/hr/drafts/{approved_draft.pk}/")
    actions = page.locator("div.actions")
    expect(actions.get_by_role("link", name="Record the works council's consent…")).to_be_visible()
    expect(page.get_by_role("link", name="Publish…")).to_have_count(0)
    expect(page.get_by_text("No consent is recorded for this draft yet.")).to_be_visible()
    assert not _scrolls_sideways(page)
    actions.get_by_role("link", name="Record the works council's consent…").click()

    # A day in the future and no reference: the form comes back with both errors, summarised and linked.
    expect(page.get_by_role("heading", name="Record the works council's consent")).to_be_visible()
    tomorrow = timezone.localdate() + timedelta(days=1)
    page.get_by_label("Day of the works council's consent").fill(tomorrow.isoformat())
    page.get_by_label("The works council consented to this text, in both languages.").check()
    page.get_by_role("button", name="Record the consent").click()
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link", name="The day of consent cannot lie in the future.")).to_be_visible()
    expect(summary.get_by_role("link", name="Give the works council's reference, e.g. the number of its decision.")
           ).to_be_visible()
    expect(page.get_by_label("Day of the works council's consent")).to_have_attribute("aria-invalid", "true")
    assert not _scrolls_sideways(page)
    page.screenshot(path=screenshots / f"works-council-form-errors-{width}.png", full_page=True)
    summary.get_by_role("link", name="Give the works council's reference, e.g. the number of its decision.").click()
    expect(page.get_by_label("The works council's reference")).to_be_focused()

    day = timezone.localdate() - timedelta(days=3)
    page.get_by_label("Day of the works council's consent").fill(day.isoformat())
    page.get_by_label("The works council's reference").fill("OR-2026-14")
    page.get_by_label("Note (optional)").fill("On condition that the reporting desk is evaluated after a year.")
    page.get_by_label("The works council consented to this text, in both languages.").check()
    page.get_by_role("button", name="Record the consent").click()

    expect(page.get_by_text("The works council's consent (OR-2026-14) is recorded for this draft.")).to_be_visible()
    consent = page.locator("section.works-council")
    expect(consent).to_contain_text("OR-2026-14")
    expect(consent).to_contain_text(formats.date_format(day, "j F Y"))
    expect(consent).to_contain_text("On condition that the reporting desk is evaluated after a year.")
    assert not _scrolls_sideways(page)
    page.screenshot(path=screenshots / f"works-council-draft-{width}.png", full_page=True)

    page.locator("div.actions").get_by_role("link", name="Publish…").click()
    expect(page.get_by_text("The works council consented to this text on")).to_be_visible()
    page.get_by_role("radio", name=re.compile("^Material")).check()
    page.get_by_label("I have checked the text and the audience.").check()
    page.get_by_role("button", name="Publish now").click()
    expect(page.get_by_text("Version 2.0 is published.")).to_be_visible()

    history = page.get_by_role("region", name="Published versions, newest first")
    expect(history).to_contain_text("OR-2026-14")
    expect(history).to_contain_text("recorded by Hilde")
    assert not _scrolls_sideways(page)
    page.screenshot(path=screenshots / f"works-council-history-{width}.png", full_page=True)
