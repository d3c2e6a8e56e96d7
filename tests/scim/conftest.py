"""Entra ID's side of provisioning: an HR service account with a scim:provision token, and replay(),
which sends a recorded request (fixtures/*.json) as Entra sends it."""

import json
from pathlib import Path

import pytest
from django.test import Client

from ..api.conftest import issue, root, service_account  # noqa: F401 (fixtures)

FIXTURES = Path(__file__).parent / "fixtures"
SCIM_JSON = "application/scim+json"


@pytest.fixture
def entra(db):
    """The provisioning service's account: a service account in HR."""
    return service_account("entra-provisioning@example.com", "HR")


@pytest.fixture
def entra_token(issue, entra):  # noqa: F811
    return issue(entra, scopes=["scim:provision"], name="Entra ID provisioning")


def scim_client(token=None):
    headers = {"accept-language": "en", "accept": SCIM_JSON}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return Client(headers=headers)


@pytest.fixture
def scim(entra_token):
    return scim_client(entra_token)


def send(client, method, path, body=None):
    url = path if path.startswith("/") else f"/scim/v2/{path}"
    if body is None:
        return getattr(client, method.lower())(url)
    return getattr(client, method.lower())(url, json.dumps(body), content_type=SCIM_JSON)


@pytest.fixture
def replay(scim):
    """replay(name, **placeholders) → the response to the recorded request fixtures/<name>.json."""

    def run(name, **placeholders):
        text = (FIXTURES / f"{name}.json").read_text()
        for key, value in placeholders.items():
            text = text.replace("{" + key + "}", str(value))
        recorded = json.loads(text)
        return send(scim, recorded["method"], recorded["path"], recorded["body"])

    return run
