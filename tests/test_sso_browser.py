"""Signing in with the identity provider in Debian's Chromium: the real provider on loopback
(tests/oidc/provider.mjs), the site on Django's live server."""


import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model

from guidelines.models import Acknowledgement, Employee
from intranet.settings import provider_origins

from .oidc_provider import OIDCProvider
from .test_sso import ACCOUNTS, CLIENT, entra_app

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def provider(live_server, settings):
    client = {**CLIENT, "redirect_uris": [f"{live_server.url}/accounts/oidc/entra/login/callback/"],
              "post_logout_redirect_uris": [f"{live_server.url}/"]}
    provider = OIDCProvider().start([client], ACCOUNTS)
    apps = [entra_app(provider.issuer)]
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": apps}}
    settings.SECURE_CSP = {**settings.SECURE_CSP, "form-action": ["'self'", *provider_origins(apps)]}
    yield provider
    provider.stop()


def in_language(page, live_server, language):
    """Choose the language with the site's own switch, as a visitor would."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator(f'button[name="language"][value="{language}"]').click()
    page.wait_for_load_state()


def sign_in_at_the_provider(page, live_server, login, button="Sign in with Entra ID"):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("button", name=button).click()
    page.wait_for_url("http://127.0.0.1:*/interaction/**")
    page.get_by_label("E-mail", exact=True).fill(login)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_an_employee_signs_in_at_the_provider_and_acknowledges(
        live_server, page, screenshots, provider, alice, version_1):
    page.goto(f"{live_server.url}/accounts/login/")
    page.screenshot(path=screenshots / "sso-1-sign-in-page.png", full_page=True)
    page.get_by_role("button", name="Sign in with Entra ID").click()
    page.wait_for_url(f"{provider.issuer}/**")
    page.screenshot(path=screenshots / "sso-1b-provider.png", full_page=True)
    page.get_by_label("E-mail", exact=True).fill("alice@example.com")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("heading", name="To acknowledge").wait_for()
    assert page.url == f"{live_server.url}/"

    page.get_by_role("link", name="Read and acknowledge").click()
    page.get_by_label("I have read and understood the Social media guideline, version 1.0.").check()
    page.get_by_role("button", name="Acknowledge").click()
    page.get_by_role("heading", name="Receipt of your acknowledgement").wait_for()
    ack = Acknowledgement.objects.get(employee=alice)
    assert (ack.auth_method, ack.sso_subject, ack.seal_format) == ("sso:entra", "sub-alice", 3)
    assert SocialAccount.objects.get(user=alice.user).uid == "sub-alice"


@pytest.mark.parametrize("language, button, text", [
    ("en", "Sign in with Entra ID", "You are not registered for the guidelines"),
    ("nl", "Inloggen met Entra ID", "Je bent niet geregistreerd voor de richtlijnen"),
])
def test_an_unknown_person_sees_why_and_gets_no_account(
        live_server, page, screenshots, provider, language, button, text):
    in_language(page, live_server, language)
    users_before = get_user_model().objects.count()
    sign_in_at_the_provider(page, live_server, "stranger@example.com", button)
    page.get_by_role("alert").filter(has_text=text).wait_for()
    page.screenshot(path=screenshots / f"sso-2-not-registered-{language}.png", full_page=True)
    assert get_user_model().objects.count() == users_before
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url


def test_a_staff_address_at_the_provider_does_not_open_the_staff_account(live_server, page, provider, hilde):
    Employee.objects.create(user=hilde, employee_number="E0301")
    sign_in_at_the_provider(page, live_server, "hilde@example.com")
    page.get_by_role("alert").filter(has_text="administrative rights").wait_for()
    page.goto(f"{live_server.url}/hr/guidelines/")
    assert "/accounts/login/" in page.url
    assert not SocialAccount.objects.exists()


def test_a_provider_outage_is_a_clear_page(live_server, page, screenshots, provider):
    page.goto(f"{live_server.url}/accounts/login/")
    provider.stop()
    page.get_by_role("button", name="Sign in with Entra ID").click()
    page.get_by_role("alert").filter(has_text="the identity provider did not answer").wait_for()
    page.screenshot(path=screenshots / "sso-3-provider-down.png", full_page=True)


def test_with_sso_only_the_sign_in_page_is_one_button(live_server, page, screenshots, provider, without_passwords):
    for language in ("en", "nl"):
        in_language(page, live_server, language)
        page.goto(f"{live_server.url}/admin/")
        assert "/accounts/login/" in page.url
        assert page.get_by_label("Password").count() == 0
        page.screenshot(path=screenshots / f"sso-4-sso-only-{language}.png", full_page=True)
    button = page.get_by_role("button", name="Inloggen met Entra ID")
    assert button.count() == 1
