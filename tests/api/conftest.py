"""Service accounts and their tokens, issued as an administrator would (api_tokens.issue)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from guidelines import api_tokens
from guidelines.models import ApiToken

from ..factories import make_user

EVERY_SCOPE = list(ApiToken.Scope.values)


@pytest.fixture
def root(db):
    return make_user("root@example.com", is_staff=True, is_superuser=True)


def service_account(email, *groups):
    account = make_user(email, groups=groups)
    account.set_unusable_password()
    account.save()
    return account


@pytest.fixture
def issue(root):
    """issue(account, scopes=every scope, days=30) → the token's plain text."""

    def make(account, scopes=EVERY_SCOPE, days=30, name="GRC tool"):
        return api_tokens.issue(by=root, name=name, account=account, scopes=scopes,
                                expires_at=timezone.now() + timedelta(days=days))[1]

    return make


@pytest.fixture
def grc(db):
    """The GRC tool's account: an auditor."""
    return service_account("grc@example.com", "Auditors")


@pytest.fixture
def grc_token(issue, grc):
    return issue(grc)


@pytest.fixture
def api():
    """api(token) → a test client that sends the token."""

    def client(token=None):
        headers = {"accept-language": "en"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        return Client(headers=headers)

    return client
