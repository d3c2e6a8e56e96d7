"""A session is signed out after SESSION_IDLE_MINUTES without a request (middleware.IdleTimeoutMiddleware)."""

import time

import pytest
from django.urls import reverse

from guidelines.middleware import IdleTimeoutMiddleware

from .factories import sign_in

pytestmark = pytest.mark.django_db
KEY = IdleTimeoutMiddleware.KEY


def last_active(client, minutes_ago):
    session = client.session
    session[KEY] = int(time.time()) - minutes_ago * 60
    session.save()


def test_an_idle_session_is_signed_out_and_told_why(client, alice, version_1, security_log):
    sign_in(client, alice)
    last_active(client, 31)
    response = client.get("/guidelines/social-media/")
    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next=/guidelines/social-media/"
    page = client.get(response.url).content.decode()
    assert "You were signed out after 30 minutes without activity." in page
    assert client.get("/").status_code == 302  # still signed out
    assert security_log("session_idle_timeout")[0]["details"]["idle_minutes"] == 31


def test_an_active_session_stays_and_is_written_at_most_once_a_minute(client, alice, version_1):
    sign_in(client, alice)
    last_active(client, 29)
    assert client.get("/").status_code == 200
    stamped = client.session[KEY]
    assert abs(stamped - time.time()) < 5  # renewed
    assert client.get("/").status_code == 200
    assert client.session[KEY] == stamped  # within the minute: no new write


def test_signing_in_stamps_the_activity_so_the_next_request_writes_nothing(client, alice, version_1,
                                                                           django_assert_max_num_queries):
    sign_in(client, alice)
    assert abs(client.session[KEY] - time.time()) < 5
    client.get("/")  # warm the caches of the page
    with django_assert_max_num_queries(5):  # session, user, employee, texts, acknowledgements: no UPDATE
        assert client.get("/").status_code == 200


def test_the_idle_time_is_a_setting(client, alice, settings):
    settings.SESSION_IDLE_MINUTES = 5
    sign_in(client, alice)
    last_active(client, 6)
    assert client.get("/").status_code == 302
