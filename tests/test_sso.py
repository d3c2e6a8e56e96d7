"""Signing in with the company's identity provider, through a real OpenID Connect provider on loopback
(tests/oidc/provider.mjs) and Django's test client: who gets in, as whom, and what is recorded."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from guidelines import services
from guidelines.accounts import SSO_SESSION_KEY
from guidelines.models import Acknowledgement, AuditEvent

from .factories import make_employee, sign_in
from .oidc_provider import OIDCProvider, OIDCProviderError, oidc_provider
from .oidc_provider import sign_in as sign_in_at_provider

pytestmark = pytest.mark.django_db
CALLBACK = "http://testserver/accounts/oidc/entra/login/callback/"
CLIENT = {"client_id": "intranet", "client_secret": "s3cret-for-tests", "redirect_uris": [CALLBACK],
          "post_logout_redirect_uris": ["http://testserver/"]}
MFA = {"amr": ["pwd", "mfa"], "acr": "urn:example:mfa"}


def account(sub, email, **claims):
    return {"sub": sub, "email": email, "email_verified": True, "name": sub, **MFA, **claims}


ACCOUNTS = {
    # The provider spells the address differently from HR's import: still the same person.
    "alice@example.com": account("sub-alice", "ALICE@Example.COM"),
    "stranger@example.com": account("sub-stranger", "stranger@example.com"),
    "hilde@example.com": account("sub-hilde", "hilde@example.com"),
    "leaver@example.com": account("sub-leaver", "leaver@example.com"),
    "mallory@elsewhere.test": account("sub-mallory", "alice@elsewhere.test"),
    "nomail@example.com": {"sub": "sub-nomail", "name": "No Mail", "amr": ["pwd"]},
    # Hostile or careless provider accounts: an address the provider has not confirmed, look-alike
    # letters that the database would fold into another employee's address, claims it cannot store.
    "unverified@example.com": account("sub-unverified", "otto@example.com", email_verified=False),
    "dotless@example.com": account("sub-dotless", "al\u0131ce@example.com"),
    "longs@example.com": account("sub-longs", "\u017fusan@example.com"),
    "nul@example.com": account("sub-nul", "otto@example.com", name="x\u0000y"),
    "longsub@example.com": account("s" * 300, "otto@example.com"),
    # HR's account at the provider, signed in with a password only.
    "hilde-pwd@example.com": account("sub-hilde-pwd", "hilde@example.com", amr=["pwd"], acr="urn:example:pwd"),
}


def entra_app(issuer, **settings):
    return {"provider_id": "entra", "name": "Entra ID", "client_id": CLIENT["client_id"],
            "secret": CLIENT["client_secret"],
            "settings": {"server_url": issuer, "scope": ["openid", "email", "profile"], "oauth_pkce_enabled": True,
                         "email_claim": "email", "allowed_domains": ["example.com"], **settings}}


@pytest.fixture(scope="module")
def identity_provider():
    with oidc_provider([CLIENT], ACCOUNTS) as provider:
        yield provider


@pytest.fixture
def entra(settings, identity_provider):
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": [entra_app(identity_provider.issuer)]}}
    return identity_provider


def sso_sign_in(client, login):
    """Start at the sign-in page's button (a POST), sign in at the provider, come back: the response
    of the callback."""
    start = client.post("/accounts/oidc/entra/login/?process=login")
    assert start.status_code == 302, start.content.decode()[:500]
    back = urlsplit(sign_in_at_provider(start["Location"], login))
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return client.get(f"{back.path}?{back.query}")


def test_an_employee_signs_in_and_the_acknowledgement_says_sso(entra, alice, version_1, client, security_log):
    response = sso_sign_in(client, "alice@example.com")
    assert response.status_code == 302 and response["Location"] == "/"
    assert SocialAccount.objects.get(provider="entra", uid="sub-alice").user == alice.user
    assert client.session[SSO_SESSION_KEY] == {"provider": "entra", "subject": "sub-alice", **MFA, "auth_time": None}
    [signed_in] = security_log("sso_login")
    assert (signed_in["username"], signed_in["details"]["amr"], signed_in["details"]["acr"]) == (
        alice.user.username, ["pwd", "mfa"], "urn:example:mfa")
    assert security_log("sso_account_linked")[0]["details"]["subject"] == "sub-alice"

    acknowledged = client.post("/guidelines/social-media/acknowledge/",
                               {"version": version_1.pk, "language": "en", "confirm": "on"})
    assert acknowledged.status_code == 302
    ack = Acknowledgement.objects.get(employee=alice)
    assert (ack.auth_method, ack.sso_subject, ack.sso_amr, ack.sso_acr) == (
        "sso:entra", "sub-alice", '["pwd","mfa"]', "urn:example:mfa")
    assert services.verify_evidence().intact


def test_a_second_sign_in_finds_the_account_by_the_subject(entra, alice, client):
    sso_sign_in(client, "alice@example.com")
    client.logout()
    # HR changes her address; the provider still says the old one: the subject decides.
    get_user_model().objects.filter(pk=alice.user_id).update(email="alice.new@example.com")
    assert sso_sign_in(client, "alice@example.com").status_code == 302
    assert client.get("/").status_code == 200
    assert SocialAccount.objects.filter(user=alice.user).count() == 1


@pytest.mark.parametrize("login, reason, text", [
    ("stranger@example.com", "unknown", "You are not registered for the guidelines"),
    ("mallory@elsewhere.test", "domain", "is not one of this organisation"),
    ("nomail@example.com", "no_email", "did not tell us your e-mail address"),
])
def test_nobody_but_hrs_employees_gets_in_and_no_account_is_made(
        entra, alice, client, security_log, login, reason, text):
    users_before = get_user_model().objects.count()
    response = sso_sign_in(client, login)
    assert response.status_code == 403
    assert text in response.content.decode()
    assert get_user_model().objects.count() == users_before
    assert not SocialAccount.objects.exists()
    assert client.get("/").status_code == 302  # still signed out
    assert security_log("sso_login_refused")[0]["details"]["reason"] == reason


def test_the_refusal_speaks_dutch_to_a_dutch_browser(entra, client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "nl"
    response = sso_sign_in(client, "stranger@example.com")
    assert response.status_code == 403
    assert "Je bent niet geregistreerd voor de richtlijnen" in response.content.decode()


def test_a_staff_address_at_the_provider_does_not_open_the_staff_account(entra, hilde, client, security_log):
    make_employee("hilde.employee@example.com", "E0300")  # HR's Hilde is also an employee elsewhere: irrelevant
    hilde.email = "hilde@example.com"
    from guidelines.models import Employee

    Employee.objects.create(user=hilde, employee_number="E0301")
    response = sso_sign_in(client, "hilde@example.com")
    assert response.status_code == 403
    assert "administrative rights" in response.content.decode()
    assert not SocialAccount.objects.filter(user=hilde).exists()
    assert client.get("/hr/guidelines/").status_code == 302
    assert security_log("sso_login_refused")[0]["details"]["reason"] == "privileged"


def test_a_leaver_is_refused_even_when_linked_before(entra, client, security_log):
    leaver = make_employee("leaver@example.com", "E0400")
    assert sso_sign_in(client, "leaver@example.com").status_code == 302
    client.logout()
    leaver.end_date = timezone.localdate() - timedelta(days=1)
    leaver.save()
    response = sso_sign_in(client, "leaver@example.com")
    assert response.status_code == 403
    assert "Your employment has ended" in response.content.decode()
    assert client.get("/").status_code == 302
    assert security_log("sso_login_refused")[-1]["details"]["reason"] == "leaver"


def test_a_provider_that_does_not_answer_is_a_clear_page_not_a_500(settings, client, security_log):
    provider = OIDCProvider().start([CLIENT], ACCOUNTS)
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": [entra_app(provider.issuer)]}}
    provider.stop()
    response = client.post("/accounts/oidc/entra/login/?process=login")
    assert response.status_code == 502
    assert "the identity provider did not answer" in response.content.decode()
    assert security_log("sso_error")[0]["details"]["exception"] == "ConnectionError"


def test_a_provider_that_goes_down_during_the_sign_in_is_a_clear_page(settings, alice, client):
    provider = OIDCProvider().start([CLIENT], ACCOUNTS)
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": [entra_app(provider.issuer)]}}
    try:
        start = client.post("/accounts/oidc/entra/login/?process=login")
        back = urlsplit(sign_in_at_provider(start["Location"], "alice@example.com"))
    finally:
        provider.stop()
    response = client.get(f"{back.path}?{back.query}")  # the code cannot be exchanged any more
    assert response.status_code == 502
    assert "the identity provider did not answer" in response.content.decode()
    assert client.get("/").status_code == 302


# --- PASSWORD_LOGIN=0 ---------------------------------------------------------------------------------


@pytest.fixture
def sso_only(without_passwords, entra):
    return entra


def test_with_sso_only_the_sign_in_page_has_only_the_provider(sso_only, client):
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Entra ID" in page and 'action="/accounts/oidc/entra/login/?process=login"' in page
    assert 'name="password"' not in page and "Forgot your password?" not in page


def test_with_sso_only_a_password_is_refused_however_it_is_posted(sso_only, alice, client, security_log):
    alice.user.set_password("correct horse battery staple")
    alice.user.save()
    response = client.post("/accounts/login/", {"login": "alice@example.com",
                                                 "password": "correct horse battery staple"})
    assert response.status_code == 200 and "this intranet has no passwords" in response.content.decode()
    assert client.get("/").status_code == 302
    assert security_log("login_refused")[0]["details"]["reason"] == "password_login_off"


@pytest.mark.parametrize("path", ["/accounts/password/reset/", "/accounts/password/change/",
                                  "/accounts/password/set/"])
def test_with_sso_only_there_are_no_password_pages(sso_only, client, path):
    assert client.get(path).status_code == 404


def test_with_sso_only_the_admin_signs_in_through_the_provider_page(sso_only, client):
    response = client.get("/admin/", follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "Sign in with Entra ID" in page and 'name="password"' not in page


def test_a_staff_member_links_their_own_provider_account_while_signed_in(entra, hilde, client, security_log):
    """The one way to a privileged account: its owner, signed in with their password, connects it."""
    sign_in(client, hilde)  # with password and second factor
    start = client.post("/accounts/oidc/entra/login/?process=connect")
    assert start.status_code == 302
    back = urlsplit(sign_in_at_provider(start["Location"], "hilde@example.com"))
    assert client.get(f"{back.path}?{back.query}").status_code == 302
    assert SocialAccount.objects.get(provider="entra").user == hilde
    client.logout()
    assert sso_sign_in(client, "hilde@example.com").status_code == 302
    assert client.get("/hr/guidelines/").status_code == 200
    assert client.session[SSO_SESSION_KEY]["subject"] == "sub-hilde"


def test_signing_out_ends_the_session_at_the_provider_too(entra, alice, client, security_log):
    from .oidc_provider import ProviderBrowser, sign_out

    browser = ProviderBrowser()
    start = client.post("/accounts/oidc/entra/login/?process=login")
    back = urlsplit(sign_in_at_provider(start["Location"], "alice@example.com", browser=browser))
    client.get(f"{back.path}?{back.query}")
    assert client.get("/").status_code == 200

    out = client.post("/accounts/logout/")
    end_session = urlsplit(out["Location"])
    assert f"{end_session.scheme}://{end_session.netloc}" == entra.issuer
    assert "client_id=intranet" in end_session.query
    assert "post_logout_redirect_uri=http%3A%2F%2Ftestserver%2F" in end_session.query
    assert client.get("/").status_code == 302  # signed out here at once
    returned = sign_out(out["Location"], browser)
    assert returned.startswith("http://testserver/")
    # The provider's session is gone: the next sign-in there asks for the login again.
    again = client.post("/accounts/oidc/entra/login/?process=login")
    reply = browser.request(again["Location"])
    while reply.location and reply.location.startswith(entra.issuer) and "/interaction/" not in reply.url:
        reply = browser.request(reply.location)
    assert 'name="login"' in reply.text


def test_signing_out_of_a_password_session_stays_here(entra, alice, client):
    sign_in(client, alice)
    out = client.post("/accounts/logout/")
    assert out["Location"] == "/"


def test_with_sso_only_an_administrator_links_a_privileged_account_in_the_admin(
        entra, without_passwords, hilde, client, security_log):
    """PASSWORD_LOGIN=0: HR cannot connect their provider account with a password, and their address
    alone does not link it. An administrator adds the link (the README's way); from then on HR signs in
    at the provider, without a second factor here."""
    assert sso_sign_in(client, "hilde@example.com").status_code == 403  # refused: privileged
    assert not SocialAccount.objects.exists()

    root = make_employee("root@example.com", "E0900", is_staff=True, is_superuser=True).user
    admin = Client()
    sign_in(admin, root)
    form = admin.get("/admin/socialaccount/socialaccount/add/")
    assert form.status_code == 200
    added = admin.post("/admin/socialaccount/socialaccount/add/", {
        "user": hilde.pk, "provider": "entra", "uid": "sub-hilde", "extra_data": "{}"})
    assert added.status_code == 302, re.findall(r"errorlist[^>]*>(.*?)</ul>", added.content.decode(), re.S)
    link = SocialAccount.objects.get(provider="entra", uid="sub-hilde")
    assert link.user == hilde
    assert LogEntry.objects.get(object_id=str(link.pk)).user == root  # the admin records who linked it
    event = AuditEvent.objects.get(details__model="socialaccount.socialaccount")
    assert event.actor == root and event.details["operation"] == "added"
    assert event.details["changes"]["uid"] == [None, "sub-hilde"]
    assert event.details["changes"]["provider"] == [None, "entra"]

    client.logout()
    assert sso_sign_in(client, "hilde@example.com").status_code == 302
    assert client.get("/hr/guidelines/").status_code == 200
    assert client.session[SSO_SESSION_KEY]["subject"] == "sub-hilde"


@pytest.mark.parametrize("login, reason, text", [
    ("unverified@example.com", "unverified", "says your e-mail address is not confirmed"),
    ("dotless@example.com", "unknown", "You are not registered"),
    ("longs@example.com", "unknown", "You are not registered"),
    ("nul@example.com", "unreadable", "sent details we cannot use"),
    ("longsub@example.com", "unreadable", "sent details we cannot use"),
])
def test_a_provider_account_that_could_take_over_an_employee_is_refused(
        entra, client, otto, alice, login, reason, text, security_log):
    make_employee("susan@example.com", "E0500")
    response = sso_sign_in(client, login)
    assert response.status_code == 403 and text in response.content.decode()
    assert not SocialAccount.objects.exists() and client.get("/").status_code == 302
    assert security_log("sso_login_refused")[-1]["details"]["reason"] == reason


def link(user, uid):
    """As an administrator links an account in the admin."""
    return SocialAccount.objects.create(user=user, provider="entra", uid=uid)


def test_a_privileged_sign_in_without_the_providers_second_factor_is_refused(entra, hilde, client, security_log):
    link(hilde, "sub-hilde-pwd")
    response = sso_sign_in(client, "hilde-pwd@example.com")
    assert response.status_code == 403 and "did not report one for this sign-in" in response.content.decode()
    assert client.get("/admin/").status_code == 302 and client.get("/hr/guidelines/").status_code == 302
    assert security_log("sso_login_refused")[-1]["details"]["reason"] == "no_second_factor"


@pytest.mark.parametrize("statement", [{"mfa_enforced": True}, {"mfa_acr": ["urn:example:pwd"]}])
def test_the_operator_may_state_that_the_provider_asks_for_the_second_factor(entra, settings, hilde, client,
                                                                            statement):
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": [entra_app(entra.issuer, **statement)]}}
    link(hilde, "sub-hilde-pwd")
    assert sso_sign_in(client, "hilde-pwd@example.com").status_code == 302
    assert client.get("/hr/guidelines/").status_code == 200


def test_confirming_at_the_provider_asks_it_to_authenticate_again(entra, hilde, guideline, bob, version_1, client):
    """The provider's own session is still open: without prompt=login it would answer at once."""
    import time

    from allauth.account.internal.flows import login as allauth_login

    from guidelines import publishing

    from .factories import make_draft
    from .oidc_provider import ProviderBrowser

    approved_draft = make_draft(guideline, author=hilde)
    publishing.approve_version(version=approved_draft, by=bob.user)
    hilde.set_unusable_password()  # she signs in at the provider only
    hilde.save()

    link(hilde, "sub-hilde")
    browser = ProviderBrowser()
    start = client.post("/accounts/oidc/entra/login/?process=login")
    back = urlsplit(sign_in_at_provider(start["Location"], "hilde@example.com", browser=browser))
    assert client.get(f"{back.path}?{back.query}").status_code == 302
    session = client.session  # the sign-in grows old
    for record in session[allauth_login.AUTHENTICATION_METHODS_SESSION_KEY]:
        record["at"] = time.time() - 3600
    session[SSO_SESSION_KEY] = {**session[SSO_SESSION_KEY], "auth_time": time.time() - 3600}
    session.save()

    asked = client.post(f"/hr/drafts/{approved_draft.pk}/publish/", {"change": "material", "confirm": "on"})
    assert asked.status_code == 302 and "prompt%3Dlogin" in asked.url
    start = client.post(asked.url)
    assert start.status_code == 302 and "prompt=login" in start["Location"] and "max_age=0" in start["Location"]
    # The provider shows its sign-in form again, although its session is open (without a login to
    # give, the helper stops at a form), and its ID token then says when she authenticated.
    with pytest.raises(OIDCProviderError, match="login"):
        sign_in_at_provider(start["Location"], None, browser=browser)
    back = urlsplit(sign_in_at_provider(start["Location"], "hilde@example.com", browser=browser))
    assert client.get(f"{back.path}?{back.query}").status_code == 302
    assert time.time() - client.session[SSO_SESSION_KEY]["auth_time"] < 60
