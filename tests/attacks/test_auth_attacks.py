"""Attacks on signing in: guessing a password (also through the admin), taking over the e-mail
address that reminders and password resets go to, and the password reset of imported employees
(who set their first password with it) and of leavers (who get nothing)."""

import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import resolve, reverse
from django.utils import timezone

from guidelines import imports
from guidelines.accounts import NoAddEmailForm

from ..factories import PASSWORD, give_authenticator, totp_code

pytestmark = pytest.mark.usefixtures("fresh_rate_limits")

User = get_user_model()
NEW_PASSWORD = "a-new-and-long-passphrase-42"


def sign_in(client, login, password, **extra):
    return client.post(reverse("account_login"), {"login": login, "password": password}, **extra)


def signed_in_as(client):
    return client.session.get("_auth_user_id")


# Guessing passwords ------------------------------------------------------------------------------------


def test_six_wrong_passwords_for_a_staff_account_lock_it_even_for_the_right_password(client, hilde):
    for attempt in range(6):
        response = sign_in(client, "hilde@example.com", f"guess-{attempt}")
        assert response.status_code in (200, 429)
        assert not signed_in_as(client)
    refused = sign_in(client, "hilde@example.com", PASSWORD)
    assert refused.status_code == 429 or "Too many failed login attempts" in refused.content.decode()
    assert not signed_in_as(client)
    # The lock is on the account, not on the address the guesses came from.
    elsewhere = sign_in(client, "hilde@example.com", PASSWORD, REMOTE_ADDR="198.51.100.9")
    assert elsewhere.status_code == 429 or "Too many failed login attempts" in elsewhere.content.decode()
    assert not signed_in_as(client)
    assert client.get(reverse("admin:index")).status_code == 302


def test_the_rate_limits_are_configured_explicitly(settings):
    assert settings.ACCOUNT_RATE_LIMITS["login_failed"] == "10/m/ip,5/5m/key"
    assert settings.CACHES["default"]["BACKEND"] != "django.core.cache.backends.dummy.DummyCache"


def test_other_accounts_can_still_sign_in_during_a_lockout(client, hilde, alice):
    for attempt in range(6):
        sign_in(client, "hilde@example.com", f"guess-{attempt}")
    response = sign_in(client, "alice@example.com", PASSWORD)
    assert response.status_code == 302 and signed_in_as(client) == str(alice.user.pk)


# The admin signs in through the one sign-in --------------------------------------------------------------


def test_the_admin_login_page_has_no_password_form_and_sends_to_the_sign_in(client, hilde):
    for method in (client.get, client.post):
        response = method(reverse("admin:login"), {"username": "hilde@example.com", "password": PASSWORD})
        assert response.status_code == 302, method
        assert response.url.startswith(reverse("account_login"))
        assert b"password" not in response.content
        assert not signed_in_as(client)
    page = client.get(reverse("admin:index"), follow=True)
    assert page.request["PATH_INFO"] == reverse("account_login")
    html = page.content.decode()
    assert 'name="login"' in html and 'name="username"' not in html
    assert parse_qs(urlsplit(page.redirect_chain[-1][0]).query)["next"] == [reverse("admin:index")]


def test_the_admin_login_keeps_a_local_next_and_drops_a_foreign_one(client, db):
    changelist = reverse("admin:guidelines_version_changelist")
    response = client.get(reverse("admin:login"), {"next": changelist})
    assert parse_qs(urlsplit(response.url).query)["next"] == [changelist]
    response = client.get(reverse("admin:login"), {"next": "https://evil.example/admin/"})
    assert parse_qs(urlsplit(response.url).query)["next"] == [reverse("admin:index")]


def test_staff_reach_the_admin_after_the_one_sign_in_and_the_second_factor(client, hilde):
    secret = give_authenticator(hilde)
    response = client.post(f"{reverse('account_login')}?next={reverse('admin:index')}",
                           {"login": "hilde@example.com", "password": PASSWORD, "next": reverse("admin:index")})
    assert response.status_code == 302 and response.url == reverse("mfa_authenticate")
    assert not signed_in_as(client)  # the password alone does not sign staff in
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302 and response.url == reverse("admin:index")
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:login")).url == reverse("admin:index")
    assert client.get(reverse("admin:password_change")).url == reverse("account_change_password")
    response = client.post(reverse("admin:logout"))
    assert response.status_code == 302 and not signed_in_as(client)


def test_a_signed_in_non_staff_user_is_refused_not_looped(client_as, alice):
    client = client_as(alice)
    assert client.get(reverse("admin:login"), {"next": reverse("admin:index")}).status_code == 403


# E-mail addresses come from HR -----------------------------------------------------------------------------


@pytest.fixture
def alice_addresses(alice):
    EmailAddress.objects.create(user=alice.user, email="alice@example.com", primary=True, verified=True)
    # An address left over from before (or added by an administrator): still not hers to promote.
    EmailAddress.objects.create(user=alice.user, email="alice.private@example.net", primary=False, verified=False)
    return alice


def addresses(user):
    return sorted(EmailAddress.objects.filter(user=user).values_list("email", "primary", "verified"))


@pytest.mark.parametrize("action, email", [
    ("action_add", "mallory@evil.example"),
    ("action_primary", "alice.private@example.net"),
    ("action_remove", "alice@example.com"),
    ("action_send", "alice.private@example.net"),
])
def test_employees_cannot_add_switch_or_remove_their_email_address(client_as, alice_addresses, action, email):
    client = client_as(alice_addresses)
    before = addresses(alice_addresses.user)
    response = client.post("/accounts/email/", {action: "", "email": email})
    assert response.status_code == 404
    assert "come from HR" in response.content.decode()
    assert addresses(alice_addresses.user) == before
    alice_addresses.user.refresh_from_db()
    assert alice_addresses.user.email == "alice@example.com"


def test_the_email_management_pages_are_gone_for_everyone(client, client_as, alice, hilde):
    assert client.get("/accounts/email/").status_code == 404
    for person in (alice, hilde):
        assert client_as(person).get("/accounts/email/").status_code == 404
        assert client_as(person).get("/accounts/confirm-email/").status_code == 404
    assert resolve(reverse("account_email")).func.__name__ == "email_addresses_come_from_hr"


def test_the_add_email_form_refuses_any_address(alice):
    form = NoAddEmailForm(user=alice.user, data={"email": "new@example.com"})
    assert not form.is_valid() and "come from HR" in str(form.errors)


def test_employees_still_change_their_password(client_as, client, alice):
    signed_in = client_as(alice)
    assert signed_in.get(reverse("account_change_password")).status_code == 200
    response = signed_in.post(reverse("account_change_password"),
                              {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    alice.user.refresh_from_db()
    assert alice.user.check_password(NEW_PASSWORD)


# Password reset: imported employees set their first password; leavers get nothing --------------------------


def hr_file(*rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(imports.COLUMNS)
    for row in rows:
        writer.writerow([row.get(column, "") for column in imports.COLUMNS])
    return out.getvalue().encode()


def person(number, **fields):
    return {"employee_number": number, "email": f"{number.lower()}@example.com", "first_name": "Fien",
            "last_name": number, "department": "Operations", "start_date": "2024-01-15", "language": "en", **fields}


def reset_link(message):
    return urlsplit(re.search(r"https?://\S+/accounts/password/reset/key/\S+/", message.body).group(0)).path


def test_an_imported_employee_sets_a_first_password_through_forgot_password(client, db):
    imports.run_import(hr_file(person("E1001")), source="hr.csv")
    user = User.objects.get(email="e1001@example.com")
    assert user.is_active and not user.has_usable_password()
    assert sign_in(client, "e1001@example.com", "").status_code == 200  # no password to sign in with yet

    response = client.post(reverse("account_reset_password"), {"email": "E1001@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["e1001@example.com"]

    form_page = client.get(reset_link(mail.outbox[0]), follow=True)
    assert form_page.status_code == 200 and 'name="password1"' in form_page.content.decode()
    response = client.post(form_page.request["PATH_INFO"], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.has_usable_password() and user.check_password(NEW_PASSWORD)

    response = sign_in(client, "e1001@example.com", NEW_PASSWORD)
    assert response.status_code == 302 and signed_in_as(client) == str(user.pk)
    assert client.get(reverse("guidelines:home")).status_code == 200


def test_leavers_and_unknown_addresses_get_no_reset_email_and_the_same_answer(client, db):
    yesterday = timezone.localdate() - timezone.timedelta(days=1)
    imports.run_import(hr_file(person("E1002", start_date="2020-01-01", end_date=str(yesterday))), source="hr.csv")
    leaver = User.objects.get(email="e1002@example.com")
    assert not leaver.is_active
    answers = [client.post(reverse("account_reset_password"), {"email": email})
               for email in ("e1002@example.com", "nobody@example.com")]
    assert [(answer.status_code, answer.url) for answer in answers] == [
        (302, reverse("account_reset_password_done"))] * 2
    assert mail.outbox == []
