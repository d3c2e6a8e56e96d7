"""Attacks on the second factor, through the real pages: the last key removed by another HTTP method,
WebAuthn credentials made of hostile bytes, and the admin showing an authenticator's secret."""

import json
import time

import pytest
from allauth.account.internal.flows import login as allauth_login
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse
from fido2.utils import websafe_encode as b64

from ..factories import PASSWORD, give_authenticator, make_employee, sign_in, totp_code

pytestmark = pytest.mark.django_db


def fake_key(user):
    return Authenticator.objects.create(user=user, type=Authenticator.Type.WEBAUTHN,
                                        data={"name": "Key", "credential": {}})


def browser():
    return Client(enforce_csrf_checks=True, raise_request_exception=False, headers={"accept-language": "en"})


def confirmed_with_key(client):
    """As after allauth's confirmation with the security key."""
    session = client.session
    records = session[allauth_login.AUTHENTICATION_METHODS_SESSION_KEY]
    records.append({"method": "mfa", "at": time.time(), "type": "webauthn", "reauthenticated": True})
    session[allauth_login.AUTHENTICATION_METHODS_SESSION_KEY] = records
    session.save()


@pytest.mark.parametrize("method", ["post", "delete", "put", "patch"])
def test_no_http_method_removes_a_privileged_users_last_key(hilde, method, security_log):
    key = fake_key(hilde)
    client = browser()
    sign_in(client, hilde)
    confirmed_with_key(client)
    url = reverse("mfa_remove_webauthn", args=[key.pk])
    assert client.get(url).status_code == 200
    response = getattr(client, method)(url, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert response.status_code == (409 if method == "post" else 405)
    assert Authenticator.objects.filter(pk=key.pk).exists()
    assert security_log("second_factor_removed") == []


def password_sign_in(client, email):
    return client.post(reverse("account_login"), {"login": email, "password": PASSWORD})


def client_data(kind):
    return b64(json.dumps({"type": kind, "challenge": "AAAA", "origin": "http://testserver"}).encode())


# Authenticator data whose flags promise parts that are not there, or whose CBOR is cut short: the
# parsers raise IndexError and struct.error, not the errors allauth expects.
BAD_AUTHENTICATOR_DATA = {
    "extension flag without extensions": b"\x00" * 32 + b"\x80" + b"\x00" * 4,
    "credential flag, data cut short": b"\x00" * 32 + b"\x41" + b"\x00" * 4 + b"\x00" * 16 + b"\x00\x00",
    "cut CBOR integer": b"\x00" * 32 + b"\x81" + b"\x00" * 4 + b"\x19\x00",
}


@pytest.mark.parametrize("name", BAD_AUTHENTICATOR_DATA)
def test_a_hostile_assertion_at_the_second_step_is_a_wrong_credential(hilde, name):
    give_authenticator(hilde)  # an app only: the key form is still accepted by allauth
    client = Client(raise_request_exception=False, headers={"accept-language": "en"})
    assert password_sign_in(client, hilde.email).url == reverse("mfa_authenticate")
    client.get(reverse("mfa_authenticate"))
    credential = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {
        "clientDataJSON": client_data("webauthn.get"), "authenticatorData": b64(BAD_AUTHENTICATOR_DATA[name]),
        "signature": "AAAA"}}
    response = client.post(reverse("mfa_authenticate"), {"credential": json.dumps(credential)})
    assert response.status_code == 200 and "Incorrect code" in response.content.decode()
    assert client.get("/hr/guidelines/").status_code == 302


@pytest.mark.parametrize("credential", ["[" * 200_000 + "]" * 200_000, '"' + "x" * 100_000 + '"'])
def test_a_huge_or_deeply_nested_credential_is_refused_before_it_is_parsed(hilde, credential):
    give_authenticator(hilde)
    client = Client(raise_request_exception=False, headers={"accept-language": "en"})
    password_sign_in(client, hilde.email)
    response = client.post(reverse("mfa_authenticate"), {"credential": credential})
    assert response.status_code == 200 and "Incorrect code" in response.content.decode()


BAD_ATTESTATIONS = {"empty": b"", "cut integer": b"\x18", "cut struct": b"\x19\x00", "deep": b"\x81" * 5000}


@pytest.mark.parametrize("name", BAD_ATTESTATIONS)
def test_a_hostile_attestation_adds_no_key(hilde, name):
    secret = give_authenticator(hilde)
    client = Client(raise_request_exception=False, headers={"accept-language": "en"})
    used = set()
    password_sign_in(client, hilde.email)
    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret, used=used)})
    client.post(reverse("mfa_reauthenticate"), {"code": totp_code(secret, used=used)})
    assert client.get(reverse("mfa_add_webauthn")).status_code == 200
    credential = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {
        "clientDataJSON": client_data("webauthn.create"), "attestationObject": b64(BAD_ATTESTATIONS[name])}}
    response = client.post(reverse("mfa_add_webauthn"), {"name": "x", "credential": json.dumps(credential)})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    assert not Authenticator.objects.filter(user=hilde, type=Authenticator.Type.WEBAUTHN).exists()


def test_the_admin_never_shows_an_authenticators_secret(hilde):
    secret = give_authenticator(hilde)
    app = Authenticator.objects.get(user=hilde, type=Authenticator.Type.TOTP)
    root = make_employee("root@example.com", "E0900", is_staff=True, is_superuser=True).user
    admin = Client()
    sign_in(admin, root)
    page = admin.get(reverse("admin:mfa_authenticator_change", args=[app.pk]))
    assert page.status_code == 200 and "hilde@example.com" in page.content.decode()
    assert secret not in page.content.decode()
