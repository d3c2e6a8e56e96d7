"""Simultaneous acknowledgement requests over real HTTP against the threaded live server."""

import re
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

from guidelines.models import Acknowledgement

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _session_cookie(user):
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_simultaneous_http_clicks_by_one_employee_store_one_acknowledgement(live_server, alice, version_1):
    opener = urllib.request.build_opener(NoRedirect)
    cookie = _session_cookie(alice.user)
    page = opener.open(urllib.request.Request(f"{live_server.url}/guidelines/social-media/",
                                              headers={"Cookie": cookie})).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "version": version_1.pk, "language": "en", "confirm": "on"}
    ).encode()
    headers = {"Cookie": f"{cookie}; csrftoken={token}", "Referer": live_server.url,
               "Accept-Language": "en", "Content-Type": "application/x-www-form-urlencoded"}
    barrier, statuses, bodies = threading.Barrier(6), [], []

    def click():
        request = urllib.request.Request(f"{live_server.url}/guidelines/social-media/acknowledge/", data=form,
                                         headers=headers)
        barrier.wait()
        try:
            response = opener.open(request)
            statuses.append(response.status)
            bodies.append(response.read().decode())
        except urllib.error.HTTPError as error:  # the 302 to the receipt arrives as an HTTPError here
            statuses.append(error.code)

    threads = [threading.Thread(target=click) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] * 5 + [302]
    assert all("Already acknowledged" in body for body in bodies)
    assert Acknowledgement.objects.filter(employee=alice).count() == 1
