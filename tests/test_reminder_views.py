"""HR's "remind now" button, the e-mail log page and the dashboard's last-reminder column."""

from datetime import date
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from kombu.exceptions import OperationalError

from guidelines import notifications, tasks
from guidelines.models import NotificationLog

from .factories import sign_in

pytestmark = pytest.mark.django_db


def nudge_url(guideline):
    return reverse("guidelines:hr_nudge", args=[guideline.slug])


def test_hr_reminds_now_and_the_task_is_queued_for_the_current_version(client_as, hilde, version_1, alice, otto):
    with mock.patch.object(tasks.nudge_version, "delay") as delay:
        response = client_as(hilde).post(nudge_url(version_1.guideline), {"version": version_1.pk}, follow=True)
    delay.assert_called_once_with(version_1.pk, hilde.pk)
    assert response.redirect_chain[-1][0] == reverse("guidelines:dashboard_guideline", args=["social-media"])
    assert "Reminders are on their way to the 3 employees who have not acknowledged version 1.0" in (
        response.content.decode())


def test_the_dashboard_offers_the_button_to_hr_only(client_as, hilde, arjen, version_1, alice, otto):
    url = reverse("guidelines:dashboard_guideline", args=["social-media"])
    assert "Remind the 3 employees who have not acknowledged" in client_as(hilde).get(url).content.decode()
    assert "Remind the" not in client_as(arjen).get(url).content.decode()


@pytest.mark.parametrize("who", ["arjen", "alice"])
def test_only_hr_may_remind(client_as, request, who, version_1):
    with mock.patch.object(tasks.nudge_version, "delay") as delay:
        response = client_as(request.getfixturevalue(who)).post(nudge_url(version_1.guideline),
                                                                {"version": version_1.pk})
    assert response.status_code == 403 and not delay.called


@pytest.mark.parametrize("posted", [{}, {"version": "abc"}, {"version": "999999"}])
def test_a_stale_or_altered_version_is_refused_with_a_message(client_as, hilde, version_1, posted):
    with mock.patch.object(tasks.nudge_version, "delay") as delay:
        response = client_as(hilde).post(nudge_url(version_1.guideline), posted)
    assert response.status_code == 409 and "reminders are only sent for version 1.0" in response.content.decode()
    assert not delay.called


def test_the_button_leads_to_a_confirmation_that_sends_nothing(client_as, hilde, version_1, alice, otto):
    client = client_as(hilde)
    dashboard = client.get(reverse("guidelines:dashboard_guideline", args=["social-media"])).content.decode()
    assert f'href="{nudge_url(version_1.guideline)}"' in dashboard  # a link to the confirmation, not a form
    assert f'action="{nudge_url(version_1.guideline)}"' not in dashboard
    with mock.patch.object(tasks.nudge_version, "delay") as delay:
        page = client.get(nudge_url(version_1.guideline))
    html = page.content.decode()
    assert page.status_code == 200 and not delay.called
    assert "Remind the 3 employees who have not acknowledged version 1.0?" in html
    assert f'name="version" value="{version_1.pk}"' in html and "csrfmiddlewaretoken" in html


def test_the_confirming_post_needs_the_csrf_token(hilde, version_1, alice):
    client = Client(enforce_csrf_checks=True)
    sign_in(client, hilde)
    with mock.patch.object(tasks.nudge_version, "delay") as delay:
        response = client.post(nudge_url(version_1.guideline), {"version": version_1.pk})
    assert response.status_code == 403 and not delay.called


def test_unknown_guidelines_are_refused(client_as, hilde, version_1):
    client = client_as(hilde)
    assert client.get(reverse("guidelines:hr_nudge", args=["nope"])).status_code == 404
    assert client.post(reverse("guidelines:hr_nudge", args=["nope"]), {"version": 1}).status_code == 404


def test_a_broker_that_is_down_gives_a_clear_503(client_as, hilde, version_1):
    with mock.patch.object(tasks.nudge_version, "delay", side_effect=OperationalError("connection refused")):
        response = client_as(hilde).post(nudge_url(version_1.guideline), {"version": version_1.pk})
    assert response.status_code == 503 and "task queue is unavailable" in response.content.decode()


@pytest.fixture
def logged(version_1, alice, bob, otto):
    day = date.today()
    drafts = notifications.compose_digests([alice.pk, bob.pk, otto.pk], day, kind=NotificationLog.Kind.NUDGE,
                                       version=version_1)
    claimed = notifications.claim(drafts, day=day, claimed_by="t")
    notifications.deliver([pair for pair in claimed if pair[0].recipient != otto], day=day)
    notifications.give_up("t", [draft.key for draft in drafts if draft.recipient == otto],
                      "SMTPRecipientsRefused: 550 No such mailbox")
    return drafts


def test_the_email_log_shows_hr_what_failed_and_why(client_as, hilde, logged):
    url = reverse("guidelines:hr_notifications")
    page = client_as(hilde).get(url).content.decode()
    assert "550 No such mailbox" in page and "otto@example.com" in page
    failed_only = client_as(hilde).get(url, {"status": "failed"}).content.decode()
    assert "otto@example.com" in failed_only and "alice@example.com" not in failed_only


def test_the_email_log_refuses_bad_filters_and_non_hr(client_as, hilde, arjen, logged):
    url = reverse("guidelines:hr_notifications")
    response = client_as(hilde).get(url, {"status": "exploded"})
    assert response.status_code == 400 and "Status" in response.content.decode()
    assert client_as(arjen).get(url).status_code == 403


def test_the_dashboard_shows_each_employees_last_reminder(client_as, hilde, logged, version_1):
    page = client_as(hilde).get(reverse("guidelines:dashboard_guideline", args=["social-media"])).content.decode()
    today = date.today().isoformat()
    assert page.count(f'<time datetime="{today}T') >= 2  # Alice and Bob were reminded; Otto's e-mail failed
