"""Publishing, approving, importing employees and granting exemptions confirm a sign-in older than
REAUTHENTICATION_MINUTES first (guidelines.accounts.fresh_sign_in_required), then carry on."""

from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from guidelines import publishing
from guidelines.models import Exemption, Version

from .factories import PASSWORD, give_authenticator, make_draft, sign_in, totp_code

pytestmark = pytest.mark.django_db
STALE = 16  # minutes: older than the default 15


@pytest.fixture
def approved_draft(guideline, hilde, bob, version_1):
    draft = make_draft(guideline, author=hilde)
    publishing.approve_version(version=draft, by=bob.user)
    return draft


def publish(client, draft):
    return client.post(reverse("guidelines:hr_draft_publish", args=[draft.pk]), {"change": "material", "confirm": "on"})


def test_a_fresh_sign_in_publishes_at_once(client, hilde, approved_draft):
    sign_in(client, hilde, minutes_ago=5)
    assert publish(client, approved_draft).status_code == 302
    assert Version.objects.get(pk=approved_draft.pk).status == Version.Status.PUBLISHED


def test_a_stale_sign_in_asks_for_the_password_and_then_publishes(client, hilde, approved_draft, security_log):
    sign_in(client, hilde, minutes_ago=STALE)
    asked = publish(client, approved_draft)
    assert asked.status_code == 302 and urlsplit(asked.url).path == reverse("account_reauthenticate")
    assert Version.objects.get(pk=approved_draft.pk).status == Version.Status.APPROVED
    assert security_log("reauthentication_required")[0]["path"] == f"/hr/drafts/{approved_draft.pk}/publish/"

    wrong = client.post(asked.url, {"password": "not my password"})
    assert wrong.status_code == 200
    assert Version.objects.get(pk=approved_draft.pk).status == Version.Status.APPROVED
    confirmed = client.post(asked.url, {"password": PASSWORD})  # the publication posted before goes through
    assert confirmed.status_code == 302
    assert Version.objects.get(pk=approved_draft.pk).status == Version.Status.PUBLISHED


def test_with_an_authenticator_the_code_confirms(client, hilde, approved_draft):
    secret = give_authenticator(hilde)
    sign_in(client, hilde, minutes_ago=STALE)
    asked = publish(client, approved_draft)
    assert urlsplit(asked.url).path == reverse("mfa_reauthenticate")
    assert client.post(asked.url, {"code": totp_code(secret)}).status_code == 302
    assert Version.objects.get(pk=approved_draft.pk).status == Version.Status.PUBLISHED


def test_approving_with_a_stale_sign_in_asks_first(client, hilde, bob, guideline, version_1):
    draft = make_draft(guideline, author=hilde)
    publishing.request_review(version=draft, by=hilde)
    sign_in(client, bob, minutes_ago=STALE)
    asked = client.post(reverse("guidelines:hr_draft_approve", args=[draft.pk]),
                        {"fingerprint": publishing.fingerprint_of(draft), "confirm": "on"})
    assert urlsplit(asked.url).path == reverse("account_reauthenticate")
    assert Version.objects.get(pk=draft.pk).status != Version.Status.APPROVED


def test_granting_an_exemption_with_a_stale_sign_in_asks_first(client, hilde, alice, guideline, version_1):
    sign_in(client, hilde, minutes_ago=STALE)
    asked = client.post(reverse("guidelines:hr_exemption_grant", args=[guideline.slug]),
                        {"employee_number": alice.employee_number, "reason": "Long-term leave",
                         "starts_on": "2026-12-01"})
    assert urlsplit(asked.url).path == reverse("account_reauthenticate")
    assert not Exemption.objects.exists()


def test_the_import_page_with_a_stale_sign_in_asks_first_and_comes_back(client, hilde):
    sign_in(client, hilde, minutes_ago=STALE)
    asked = client.get(reverse("guidelines:hr_import"))
    assert urlsplit(asked.url).path == reverse("account_reauthenticate")
    back = client.post(asked.url, {"password": PASSWORD})
    assert back.status_code == 302 and back.url == reverse("guidelines:hr_import")
    assert client.get(reverse("guidelines:hr_import")).status_code == 200


def test_an_import_file_posted_with_a_stale_sign_in_is_not_applied_and_the_page_comes_back(client, hilde):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from guidelines.models import Employee, ImportRun

    sign_in(client, hilde, minutes_ago=STALE)
    csv = SimpleUploadedFile("hr.csv", b"employee_number,email\n", content_type="text/csv")
    asked = client.post(reverse("guidelines:hr_import"), {"file": csv, "dry_run": ""})
    assert asked.url == f"{reverse('account_reauthenticate')}?next=%2Fhr%2Femployees%2Fimport%2F"
    assert not ImportRun.objects.exists() and Employee.objects.count() == 0


@pytest.mark.parametrize("password_login", [True, False])
def test_a_stale_sign_in_through_a_provider_is_confirmed_at_the_provider(client, hilde, approved_draft, settings,
                                                                         password_login):
    """Without a password, or with passwords switched off even for an account that still has one."""
    import time

    from allauth.account.internal.flows import login as allauth_login

    from guidelines.accounts import SSO_SESSION_KEY

    settings.PASSWORD_LOGIN = password_login
    if password_login:
        hilde.set_unusable_password()
        hilde.save()
    sign_in(client, hilde)
    session = client.session
    session[allauth_login.AUTHENTICATION_METHODS_SESSION_KEY] = [
        {"method": "socialaccount", "provider": "entra", "uid": "sub-hilde", "at": time.time() - STALE * 60}]
    session[SSO_SESSION_KEY] = {"provider": "entra", "subject": "sub-hilde", "amr": ["mfa"], "acr": ""}
    session.save()
    asked = publish(client, approved_draft)
    # The provider is asked to authenticate her again, even over a session it still has.
    assert asked.url == (f"/accounts/oidc/entra/login/?process=login&next=%2Fhr%2Fdrafts%2F{approved_draft.pk}"
                         "%2Fpublish%2F&auth_params=prompt%3Dlogin%26max_age%3D0")
    assert Version.objects.get(pk=approved_draft.pk).status == Version.Status.APPROVED
