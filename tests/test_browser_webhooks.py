"""HR's webhook pages in Debian's Chromium, at a desk and on a phone: adding a subscriber (an address
refused with the GOV.UK error summary first), the secret shown once, the delivery log, and a
subscriber disabled after its deliveries kept failing."""

import pytest
from playwright.sync_api import expect

from guidelines import webhook_events, webhooks
from guidelines.models import WebhookDelivery, WebhookSubscriber

from .test_browser_hr import _sign_in, authenticator_apps  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
Event = WebhookSubscriber.Event
WIDTHS = {"desk": 1280, "phone": 390}


def shoot(page, screenshots, name):
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=screenshots / f"webhooks-{name}-{label}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_hr_adds_a_subscriber_and_sees_why_another_was_disabled(live_server, page, screenshots, settings, hilde,
                                                                bob):
    settings.DEBUG, settings.WEBHOOK_ALLOW_PRIVATE, settings.WEBHOOK_DISABLE_AFTER = False, False, 2
    _sign_in(page, live_server, "hilde@example.com")
    page.goto(f"{live_server.url}/hr/guidelines/")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("link", name="Add a subscriber").click()
    page.get_by_label("Name").fill("GRC tool")
    page.get_by_label("Address").fill("https://169.254.169.254/latest/meta-data/")
    page.get_by_label("an employee acknowledged a version").check()
    page.get_by_role("button", name="Add").click()
    summary = page.locator("#error-summary")
    assert "points to an internal network address" in summary.inner_text()
    expect(page.locator("#error-summary")).to_be_focused()  # error-summary.js runs once the page has loaded
    shoot(page, screenshots, "1-refused")

    settings.WEBHOOK_ALLOW_PRIVATE = True  # a public address stands in for one: no DNS in the tests
    page.get_by_label("Address").fill("https://grc.example.com/hooks/guidelines")
    page.get_by_role("button", name="Add").click()
    secret = page.locator("[data-webhook-secret]").inner_text()
    assert secret.startswith("whsec_")
    subscriber = WebhookSubscriber.objects.get()
    assert webhooks.secret_of(subscriber) == secret
    shoot(page, screenshots, "2-secret")

    for number, error in enumerate(["HTTP 503 Service Unavailable", "ConnectionError: connection refused"]):
        [delivery] = webhook_events.record(Event.ACKNOWLEDGEMENT_CREATED, f"browser:{number}", {}, None)
        WebhookDelivery.objects.filter(pk=delivery).update(attempts=9, response_status=503 if number == 0 else None,
                                                           last_error=error)
        webhooks.give_up(delivery, error)
    page.goto(f"{live_server.url}/hr/webhooks/{subscriber.pk}/")
    assert "Disabled automatically" in page.locator("main").inner_text()
    assert "ConnectionError: connection refused" in page.locator("[data-disabled-reason]").inner_text()
    shoot(page, screenshots, "3-disabled")
    page.goto(f"{live_server.url}/hr/webhooks/")
    assert "disabled after failures" in page.locator("main").inner_text()
    shoot(page, screenshots, "4-list")
    page.goto(f"{live_server.url}/hr/webhooks/{subscriber.pk}/")
    page.get_by_role("link", name="Enable").click()
    shoot(page, screenshots, "5-enable")
    page.get_by_role("button", name="Enable").click()
    assert "receives events again" in page.locator("body").inner_text()
