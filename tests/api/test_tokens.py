"""API tokens: who may issue them and to whom, what is stored, and every way a token is refused, on
every endpoint, with the security log's account of it."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from guidelines import api_tokens
from guidelines.models import ApiToken, AuditEvent

from ..factories import make_user
from .conftest import service_account

# Every endpoint with a token, by method, address and the scope it needs (the schema and its docs
# are public and not listed here; test_schema covers that every path in the schema is listed).
ENDPOINTS = [
    ("get", "api:guidelines", (), "status:read"),
    ("get", "api:guideline", ("social-media",), "status:read"),
    ("get", "api:guideline-versions", ("social-media",), "status:read"),
    ("get", "api:version", (1,), "status:read"),
    ("get", "api:version-status", (1,), "status:read"),
    ("get", "api:version-employees", (1,), "status:read"),
    ("get", "api:acknowledgements", (), "evidence:read"),
    ("get", "api:objections", (), "evidence:read"),
    ("get", "api:chain-verification", (), "evidence:read"),
    ("get", "api:reports", (), "reports:request"),
    ("post", "api:reports", (), "reports:request"),
    ("get", "api:report", ("ABCD-EFGH",), "reports:request"),
    ("get", "api:report-pdf", ("ABCD-EFGH",), "reports:request"),
]


def call(client, method, name, args):
    url = reverse(name, args=args)
    return client.post(url, {}, content_type="application/json") if method == "post" else client.get(url)


def test_only_a_superuser_issues_tokens(hilde, grc):
    with pytest.raises(PermissionDenied):
        api_tokens.issue(by=hilde, name="x", account=grc, scopes=["status:read"],
                         expires_at=timezone.now() + timedelta(days=1))
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("problem", ["password", "superuser", "inactive"])
def test_a_token_is_issued_to_a_service_account_only(root, problem):
    account = service_account("svc@example.com", "Auditors")
    if problem == "password":
        account.set_password("a password someone could type")
    elif problem == "superuser":
        account.is_superuser = True
    else:
        account.is_active = False
    account.save()
    with pytest.raises(ValidationError) as refusal:
        api_tokens.issue(by=root, name="x", account=account, scopes=["status:read"],
                         expires_at=timezone.now() + timedelta(days=1))
    assert "account" in refusal.value.message_dict
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(("scopes", "days", "field"), [
    ([], 30, "scopes"), (["status:write"], 30, "scopes"), (["status:read"], 366, "expires_at"),
    (["status:read"], -1, "expires_at"),
])
def test_scopes_and_expiry_are_checked(root, grc, scopes, days, field):
    with pytest.raises(ValidationError) as refusal:
        api_tokens.issue(by=root, name="x", account=grc, scopes=scopes,
                         expires_at=timezone.now() + timedelta(days=days))
    assert field in refusal.value.message_dict


def test_only_a_hash_of_the_secret_is_stored(root, grc):
    token, plain = api_tokens.issue(by=root, name="GRC", account=grc, scopes=["status:read"],
                                    expires_at=timezone.now() + timedelta(days=30))
    prefix, key_id, secret = plain.split("_", 2)
    assert (prefix, key_id) == ("gl", token.key_id) and len(secret) >= 43
    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert not any(secret in str(value) for value in stored.values())
    event = AuditEvent.objects.get(action=AuditEvent.Action.API_TOKEN_ISSUED)
    assert event.actor == root and event.details["client_id"] == key_id and secret not in str(event.details)


@pytest.mark.parametrize(("method", "name", "args", "scope"), ENDPOINTS)
def test_every_endpoint_refuses_a_missing_or_wrong_token(api, grc_token, method, name, args, scope, security_log):
    missing = call(api(), method, name, args)
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    wrong_secret = grc_token[:-4] + ("AAAA" if not grc_token.endswith("AAAA") else "BBBB")
    for token in (wrong_secret, "gl_nonsense", "Basic abc", "gl_" + "0" * 16 + "_" + "x" * 43):
        assert call(api(token), method, name, args).status_code == 401
    reasons = [entry["details"]["reason"] for entry in security_log("api_token_refused")]
    assert reasons[0] == "no token" and "unknown" in reasons and "malformed" in reasons


@pytest.mark.parametrize(("method", "name", "args", "scope"), ENDPOINTS)
def test_every_endpoint_refuses_an_expired_revoked_or_deactivated_token(
        api, issue, grc, root, method, name, args, scope, security_log):
    token = issue(grc, days=1)
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        assert call(api(token), method, name, args).status_code == 401
    api_tokens.revoke(ApiToken.objects.get(), by=root)
    assert call(api(token), method, name, args).status_code == 401
    fresh = issue(grc)
    grc.is_active = False
    grc.save()
    assert call(api(fresh), method, name, args).status_code == 401
    reasons = [entry["details"]["reason"] for entry in security_log("api_token_refused")]
    assert reasons == ["expired", "revoked", "account deactivated"]


@pytest.mark.parametrize(("method", "name", "args", "scope"), ENDPOINTS)
def test_every_endpoint_refuses_a_token_without_its_scope(api, issue, grc, method, name, args, scope, security_log):
    others = [other for other in ApiToken.Scope.values if other != scope]
    response = call(api(issue(grc, scopes=others)), method, name, args)
    assert response.status_code == 403
    assert response.json()["detail"] == "This token's scopes do not include this request."
    assert security_log("access_denied")[-1]["username"] == "grc@example.com"


@pytest.mark.parametrize("change", ["superuser", "password"])
def test_a_token_stops_when_its_account_stops_being_a_service_account(api, grc, grc_token, change, security_log):
    assert api(grc_token).get(reverse("api:guidelines")).status_code == 200
    if change == "superuser":
        grc.is_superuser = True
    else:
        grc.set_password("now a person can sign in with it")
    grc.save()
    assert api(grc_token).get(reverse("api:guidelines")).status_code == 401
    assert security_log("api_token_refused")[-1]["details"]["reason"] == "no longer a service account"


def test_each_use_is_in_the_security_log(api, grc_token, security_log):
    assert api(grc_token).get(reverse("api:guidelines")).status_code == 200
    [entry] = security_log("api_request")
    assert entry["username"] == "grc@example.com" and entry["details"]["client_id"] == grc_token.split("_")[1]
    assert entry["details"]["client"] == "GRC tool" and entry["path"] == "/api/v1/guidelines/"


def test_a_token_is_rate_limited(api, grc_token, settings, fresh_rate_limits):
    settings.API_RATE = (3, 60)
    client = api(grc_token)
    assert [client.get(reverse("api:guidelines")).status_code for _ in range(3)] == [200] * 3
    refused = client.get(reverse("api:guidelines"))
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60


def test_api_responses_are_never_cached(api, grc_token):
    response = api(grc_token).get(reverse("api:guidelines"))
    assert "no-store" in response["Cache-Control"]


def test_a_session_does_not_open_the_api(client_as, hilde, api):
    """Only tokens: a signed-in browser (and so a cross-site request riding on its cookie) gets nowhere."""
    client = client_as(hilde)
    assert client.get(reverse("api:guidelines")).status_code == 401


def test_the_admin_issues_a_token_once_and_revokes_it(root, grc, client):
    from ..factories import sign_in

    sign_in(client, root)
    page = client.post(reverse("admin:guidelines_apitoken_add"), {
        "name": "ServiceNow", "account": grc.pk, "scopes": ["status:read", "evidence:read"],
        "expires_at_0": (timezone.localdate() + timedelta(days=30)).isoformat(), "expires_at_1": "12:00:00",
    })
    assert page.status_code == 200, page.content
    token = ApiToken.objects.get()
    plain = page.context["plain_text"]
    assert plain.startswith(f"gl_{token.key_id}_") and plain.encode() in page.content
    assert token.created_by == root and token.scopes == ["evidence:read", "status:read"]
    listing = client.get(reverse("admin:guidelines_apitoken_changelist"))
    assert plain.encode() not in listing.content and token.key_id.encode() in listing.content
    client.post(reverse("admin:guidelines_apitoken_changelist"),
                {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_by == root


def test_the_admin_refuses_a_person_s_account(root, client):
    from ..factories import sign_in

    person = make_user("person@example.com", groups=["Auditors"])
    sign_in(client, root)
    page = client.post(reverse("admin:guidelines_apitoken_add"), {
        "name": "x", "account": person.pk, "scopes": ["status:read"],
        "expires_at_0": (timezone.localdate() + timedelta(days=30)).isoformat(), "expires_at_1": "12:00:00",
    })
    assert page.status_code == 200 and b"can sign in with a password" in page.content
    assert not ApiToken.objects.exists()


def test_hr_staff_cannot_reach_tokens_in_the_admin(hilde, client):
    from ..factories import sign_in

    sign_in(client, hilde, second_factor=True)
    assert client.get(reverse("admin:guidelines_apitoken_changelist")).status_code == 403
    assert client.get(reverse("admin:guidelines_apitoken_add")).status_code == 403
