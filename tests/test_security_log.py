"""The security log: sign-ins, refusals, lockouts, exports and dashboard views are on it, with who,
from where, what and the outcome; passwords, session ids and CSRF tokens never are, in any log."""

import json
import logging
import logging.handlers
import re

import pytest
from django.contrib.auth import authenticate
from django.test import Client, RequestFactory
from django.urls import reverse

from guidelines.security import security_event

from .factories import give_authenticator, totp_code

pytestmark = pytest.mark.usefixtures("fresh_rate_limits")

CANARY = "Canary-7f3a9c1e-Secret-Passphrase"
WRONG_CANARY = "Wrong-Canary-b41d-Passphrase"
CLIENT_IP = "203.0.113.77"


@pytest.fixture
def captured(caplog, tmp_path):
    """Everything any logger emits (root and the non-propagating `security` logger, at DEBUG), and
    the security log file as SECURITY_LOG_FILE configures it."""
    security = logging.getLogger("security")
    log_file = tmp_path / "security.log"
    file_handler = logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(message)s"))
    security.addHandler(file_handler)
    security.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    for name in ("django", "django.request", "django.security", "allauth", "guidelines"):
        caplog.set_level(logging.DEBUG, logger=name)
    try:
        yield caplog, log_file
    finally:
        security.removeHandler(file_handler)
        security.removeHandler(caplog.handler)
        file_handler.close()


def csrf_token(response):
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode()).group(1)


def security_entries(caplog):
    return [json.loads(record.getMessage()) for record in caplog.records if record.name == "security"]


def events(entries, name):
    return [entry for entry in entries if entry["event"] == name]


def test_the_security_log_has_the_events_and_never_a_secret(captured, hilde, alice, version_1):
    caplog, log_file = captured
    hilde.set_password(CANARY)
    hilde.save()
    totp_secret = give_authenticator(hilde)
    slug = version_1.guideline.slug
    browser = Client(enforce_csrf_checks=True, REMOTE_ADDR=CLIENT_IP, headers={"accept-language": "en"})
    tokens = set()

    login_page = browser.get(reverse("account_login"))
    tokens.add(csrf_token(login_page))
    failed = browser.post(reverse("account_login"), {"login": "hilde@example.com", "password": WRONG_CANARY,
                                                     "csrfmiddlewaretoken": csrf_token(login_page)})
    assert failed.status_code == 200
    tokens.add(csrf_token(failed))
    signed_in = browser.post(reverse("account_login"), {"login": "hilde@example.com", "password": CANARY,
                                                        "csrfmiddlewaretoken": csrf_token(failed)})
    assert signed_in.status_code == 302 and signed_in["Location"] == reverse("mfa_authenticate")
    code_page = browser.get(reverse("mfa_authenticate"))
    code = totp_code(totp_secret)
    second_factor = browser.post(reverse("mfa_authenticate"),
                                 {"code": code, "csrfmiddlewaretoken": csrf_token(code_page)})
    assert second_factor.status_code == 302
    tokens.update({totp_secret, code})
    session_id = browser.cookies["sessionid"].value
    tokens.add(browser.cookies["csrftoken"].value)

    dashboard = browser.get(reverse("guidelines:dashboard_guideline", args=[slug]), {"status": "pending"})
    assert dashboard.status_code == 200
    tokens.add(csrf_token(dashboard))
    export = browser.get(reverse("guidelines:dashboard_export", args=[slug]))
    assert export.status_code == 200 and b"".join(export.streaming_content)
    assert browser.get(reverse("guidelines:team")).status_code == 403  # Hilde manages nobody
    assert browser.post(reverse("set_language"), {"language": "nl"}).status_code == 403  # no CSRF token
    logout = browser.post(reverse("account_logout"), {"csrfmiddlewaretoken": csrf_token(dashboard)})
    assert logout.status_code == 302

    # Someone guesses Alice's password until allauth locks the account, then floods the password reset.
    attacker = Client(REMOTE_ADDR="198.51.100.66")
    for attempt in range(6):
        attacker.post(reverse("account_login"), {"login": "alice@example.com", "password": f"{CANARY}-{attempt}"})
    statuses = [attacker.post(reverse("account_reset_password"), {"email": "alice@example.com"}).status_code
                for _ in range(7)]
    assert 429 in statuses

    everything = "\n".join([caplog.text, *(record.getMessage() for record in caplog.records),
                            log_file.read_text()])
    for secret in (CANARY, WRONG_CANARY, session_id, *tokens):
        assert secret not in everything, f"a secret is in the logs: {secret[:6]}…"

    entries = security_entries(caplog)
    assert [json.loads(line) for line in log_file.read_text().splitlines()] == entries  # one JSON object a line

    (failure,) = [entry for entry in events(entries, "login_failed") if entry["ip"] == CLIENT_IP]
    assert failure["outcome"] == "failure" and failure["details"]["attempted_login"] == "hilde@example.com"
    assert failure["path"] == reverse("account_login") and failure["user_id"] is None

    (login,) = events(entries, "login")
    assert (login["username"], login["user_id"], login["ip"], login["outcome"]) == (
        "hilde@example.com", hilde.pk, CLIENT_IP, "success")

    (viewed,) = events(entries, "dashboard_view")
    assert viewed["username"] == "hilde@example.com" and viewed["details"]["guideline"] == slug
    assert viewed["details"]["filters"]["status"] == "pending"
    (exported,) = events(entries, "export")
    assert (exported["username"], exported["ip"], exported["path"]) == (
        "hilde@example.com", CLIENT_IP, reverse("guidelines:dashboard_export", args=[slug]))

    denied = events(entries, "access_denied")
    assert [(entry["path"], entry["username"], entry["ip"], entry["outcome"]) for entry in denied] == [
        (reverse("guidelines:team"), "hilde@example.com", CLIENT_IP, "denied"),
        (reverse("set_language"), "hilde@example.com", CLIENT_IP, "denied"),
    ]
    assert "nobody reports to you" in denied[0]["details"]["reason"]

    (logged_out,) = events(entries, "logout")
    assert logged_out["username"] == "hilde@example.com"

    guesses = [entry for entry in events(entries, "login_failed") if entry["ip"] == "198.51.100.66"]
    assert len(guesses) == 5 and {entry["details"]["attempted_login"] for entry in guesses} == {"alice@example.com"}
    locked = events(entries, "login_locked")
    assert locked and locked[0]["details"]["attempted_login"] == "alice@example.com"
    limited = events(entries, "rate_limited")
    assert limited and limited[0]["path"] == reverse("account_reset_password") and limited[0]["ip"] == "198.51.100.66"


def test_the_team_page_view_is_logged(captured, client_as, alice, bob, version_1):
    caplog, _log_file = captured
    assert client_as(bob).get(reverse("guidelines:team")).status_code == 200
    (entry,) = events(security_entries(caplog), "team_view")
    assert entry["username"] == "bob@example.com" and entry["details"]["guideline"] == version_1.guideline.slug


def test_an_oversized_upload_is_logged(captured, client_as, hilde):
    caplog, _log_file = captured
    response = client_as(hilde).post(reverse("guidelines:hr_import"), data="", content_type="text/csv",
                                     CONTENT_LENGTH=str(10**9))
    assert response.status_code == 413
    (entry,) = events(security_entries(caplog), "upload_refused")
    assert entry["details"] == {"status": 413, "content_length": 10**9, "limit_bytes": 32 * 1024 * 1024}
    assert entry["username"] == "hilde@example.com" and entry["path"] == reverse("guidelines:hr_import")


def test_a_forged_line_in_a_login_name_stays_on_one_line(captured, db):
    caplog, log_file = captured
    forged = 'mallory@example.com\n{"event": "login", "outcome": "success", "username": "hilde@example.com"}'
    request = RequestFactory().post(reverse("account_login"), REMOTE_ADDR=CLIENT_IP)
    assert authenticate(request, username=forged, password=CANARY) is None

    class Named:
        pk, is_authenticated = 99, True

        def get_username(self):
            return "eve\r\n{\"event\": \"login\"}\u2028x"

    security_event("probe", request=request, user=Named())
    lines = log_file.read_text().splitlines()
    assert len(lines) == 2
    failure, probe = (json.loads(line) for line in lines)
    assert failure["event"] == "login_failed" and failure["details"]["attempted_login"] == forged
    assert probe["username"] == "eve\r\n{\"event\": \"login\"}\u2028x"
    assert CANARY not in log_file.read_text()


def test_secret_looking_details_are_dropped():
    entry = security_event("probe", password="x", csrf_token="y", sessionid="z", api_key="k", reason="kept")
    assert entry["details"] == {"reason": "kept"}


def test_a_refusal_is_logged_once_even_when_the_refusing_code_logged_it(captured, db):
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpResponse

    from guidelines.middleware import SecurityLogMiddleware

    caplog, _log_file = captured

    def refusing_view(request):
        security_event("rate_limited", request=request, outcome="denied", bucket="download")
        return HttpResponse(status=429)

    for get_response, expected in ((refusing_view, [{"bucket": "download"}]),
                                   (lambda request: HttpResponse(status=429), [{"status": 429}]),
                                   (lambda request: HttpResponse(status=403), [{"status": 403, "reason": ""}])):
        caplog.clear()
        request = RequestFactory().get("/reports/x/download/")
        request.user = AnonymousUser()
        SecurityLogMiddleware(get_response)(request)
        assert [entry["details"] for entry in security_entries(caplog)] == expected


@pytest.mark.parametrize("proxies, forwarded, expected", [
    (0, "192.0.2.1", "10.0.0.5"),  # no trusted proxy: X-Forwarded-For is the client's to forge
    (1, "192.0.2.1", "192.0.2.1"),
    (1, "6.6.6.6, 192.0.2.1", "192.0.2.1"),  # the forged first entry is ignored
    (2, "6.6.6.6, 192.0.2.1, 10.1.1.1", "192.0.2.1"),
    (2, "192.0.2.1", "10.0.0.5"),  # fewer hops than proxies: the connection's address
])
def test_the_client_address_honours_trusted_proxies_only(settings, proxies, forwarded, expected):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=forwarded)
    assert security_event("probe", request=request)["ip"] == expected
