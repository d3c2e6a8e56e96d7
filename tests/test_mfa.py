"""A second factor for HR, approvers, auditors and staff who sign in with a password
(guidelines.middleware.SecondFactorMiddleware, allauth.mfa), through the real sign-in pages."""

import base64
import re
from xml.etree import ElementTree

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY
from django.urls import reverse

from guidelines.models import Acknowledgement

from .factories import PASSWORD, give_authenticator, totp_code

pytestmark = pytest.mark.django_db


def password_sign_in(client, email, next_url=None):
    data = {"login": email, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("account_login"), data)


@pytest.mark.parametrize("path", ["/hr/guidelines/", "/admin/", "/", "/dashboards/", "/accounts/3rdparty/"])
def test_hr_without_a_second_factor_is_sent_to_set_one_up_before_any_page(client, hilde, path):
    assert password_sign_in(client, "hilde@example.com").status_code == 302
    response = client.get(path)
    assert response.status_code == 302
    assert response.url == f"{reverse('mfa_activate_totp')}?next={path.replace('/', '%2F')}"


def test_while_the_second_factor_is_pending_the_menu_offers_nothing(client, hilde):
    password_sign_in(client, "hilde@example.com")
    confirm = client.get(reverse("mfa_activate_totp"))
    page = client.get(confirm.url).content.decode()
    assert "Manage guidelines" not in page and 'aria-label="Main"' not in page
    assert "Sign out" in page


def test_an_employee_is_not_asked_for_a_second_factor(client, alice, version_1):
    password_sign_in(client, "alice@example.com")
    assert client.get("/").status_code == 200
    assert client.get("/guidelines/social-media/").status_code == 200


def test_hr_sets_up_an_authenticator_and_then_works(client, hilde, security_log, django_capture_on_commit_callbacks):
    password_sign_in(client, "hilde@example.com")
    # Setting up a second factor asks for the password once more (allauth's reauthentication).
    confirm = client.get(reverse("mfa_activate_totp"))
    assert confirm.url.startswith(reverse("account_reauthenticate"))
    assert client.get(confirm.url).status_code == 200
    back = client.post(confirm.url, {"password": PASSWORD})
    assert back.status_code == 302 and back.url == reverse("mfa_activate_totp")
    setup = client.get(reverse("mfa_activate_totp"))
    assert setup.status_code == 200
    page = setup.content.decode()
    secret = client.session[SECRET_SESSION_KEY]
    assert secret in page  # to type into the app, or
    qr_svg = base64.b64decode(re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', page).group(1))
    assert ElementTree.fromstring(qr_svg).tag == "{http://www.w3.org/2000/svg}svg"  # a QR code a browser shows

    wrong = client.post(reverse("mfa_activate_totp"), {"code": "000000"})
    assert wrong.status_code == 200 and not Authenticator.objects.filter(user=hilde).exists()
    with django_capture_on_commit_callbacks(execute=True):  # allauth announces the new authenticator on commit
        done = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert done.status_code == 302
    assert Authenticator.objects.filter(user=hilde, type=Authenticator.Type.TOTP).exists()
    assert Authenticator.objects.filter(user=hilde, type=Authenticator.Type.RECOVERY_CODES).exists()
    assert client.get("/hr/guidelines/").status_code == 200
    assert client.get("/admin/").status_code == 200
    assert security_log("second_factor_added")[0]["username"] == "hilde@example.com"


def test_with_an_authenticator_the_password_alone_does_not_sign_in(client, hilde):
    secret = give_authenticator(hilde)
    response = password_sign_in(client, "hilde@example.com", next_url="/hr/guidelines/")
    assert response.url == reverse("mfa_authenticate")
    assert client.get("/hr/guidelines/").status_code == 302  # not signed in yet
    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302 and response.url == "/hr/guidelines/"
    assert client.get("/hr/guidelines/").status_code == 200


def test_a_wrong_code_is_refused_and_guessing_is_rate_limited(client, hilde, fresh_rate_limits):
    secret = give_authenticator(hilde)
    password_sign_in(client, "hilde@example.com")
    for guess in ("000000", "111111", "222222", "333333", "444444"):
        refused = client.post(reverse("mfa_authenticate"), {"code": guess})
        assert refused.status_code == 200 and "Incorrect code" in refused.content.decode()
    # The limit is reached: even the right code is refused now.
    limited = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert limited.status_code == 200 and "Too many failed" in limited.content.decode()
    assert client.get("/hr/guidelines/").status_code == 302


def test_a_recovery_code_works_once(client, hilde):
    give_authenticator(hilde)
    code = RecoveryCodes.activate(hilde).get_unused_codes()[0]
    password_sign_in(client, "hilde@example.com")
    assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302
    assert client.get("/hr/guidelines/").status_code == 200
    client.post(reverse("account_logout"))

    password_sign_in(client, "hilde@example.com")
    again = client.post(reverse("mfa_authenticate"), {"code": code})
    assert again.status_code == 200 and "Incorrect code" in again.content.decode()
    assert client.get("/hr/guidelines/").status_code == 302


def test_the_acknowledgement_records_the_second_factor(client, hilde, version_1):
    from guidelines.models import Employee

    Employee.objects.create(user=hilde, employee_number="E0301")
    secret = give_authenticator(hilde)
    password_sign_in(client, "hilde@example.com")
    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    response = client.post("/guidelines/social-media/acknowledge/",
                           {"version": version_1.pk, "language": "en", "confirm": "on"})
    assert response.status_code == 302
    assert Acknowledgement.objects.get(employee__user=hilde).auth_method == "password+mfa"


# The second factor's own pages -------------------------------------------------------------------------


def signed_in_and_confirmed(client, user, secret):
    """Signed in with the password and the app's code, then confirmed with another code, as allauth
    asks before changing or showing a second factor."""
    used = set()
    password_sign_in(client, user.email)
    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret, used=used)})
    assert client.post(reverse("mfa_reauthenticate"), {"code": totp_code(secret, used=used)}).status_code == 302


def test_a_privileged_user_cannot_switch_off_their_authenticator_app(client, hilde):
    secret = give_authenticator(hilde)
    RecoveryCodes.activate(hilde)
    signed_in_and_confirmed(client, hilde, secret)
    overview = client.get(reverse("mfa_index")).content.decode()
    assert "Your role needs a second factor and this is your only one" in overview
    assert reverse("mfa_deactivate_totp") not in overview
    assert "10 of 10 codes unused" in overview

    # Posted anyway (the form is allauth's): refused, with the reason, and nothing removed.
    refused = client.post(reverse("mfa_deactivate_totp"))
    assert refused.status_code == 200
    assert "Your role needs a second factor, so you cannot remove your last one" in refused.content.decode()
    assert Authenticator.objects.filter(user=hilde, type=Authenticator.Type.TOTP).exists()


def test_an_employee_may_switch_their_own_authenticator_app_off(client, alice):
    secret = give_authenticator(alice.user)
    signed_in_and_confirmed(client, alice.user, secret)
    overview = client.get(reverse("mfa_index")).content.decode()
    assert reverse("mfa_deactivate_totp") in overview and "Switch off" in overview
    done = client.post(reverse("mfa_deactivate_totp"))
    assert done.status_code == 302
    assert not Authenticator.objects.filter(user=alice.user, type=Authenticator.Type.TOTP).exists()


def test_the_recovery_codes_page_lists_the_unused_codes_after_a_confirmation(client, hilde):
    secret = give_authenticator(hilde)
    codes = RecoveryCodes.activate(hilde).get_unused_codes()
    password_sign_in(client, "hilde@example.com")
    client.post(reverse("mfa_authenticate"), {"code": codes[0]})  # one used to sign in
    # Confirmed with the second factor first (accounts.IntranetAccountAdapter.get_reauthentication_methods).
    assert client.get(reverse("mfa_view_recovery_codes")).url.startswith(reverse("mfa_reauthenticate"))
    client.post(reverse("mfa_reauthenticate"), {"code": totp_code(secret)})
    page = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    listed = re.findall(r"<li><code>([^<]+)</code></li>", page)
    assert listed == codes[1:] and "9 of 10 codes unused" in page


def test_an_administrator_removes_a_lost_authenticator_and_the_audit_trail_keeps_no_secret(client, hilde):
    from django.test import Client

    from guidelines.models import AuditEvent

    from .factories import make_employee, sign_in

    secret = give_authenticator(hilde)
    app = Authenticator.objects.get(user=hilde, type=Authenticator.Type.TOTP)
    root = make_employee("root@example.com", "E0900", is_staff=True, is_superuser=True).user
    admin = Client()
    sign_in(admin, root)
    url = reverse("admin:mfa_authenticator_delete", args=[app.pk])
    assert admin.post(url, {"post": "yes"}).status_code == 302
    assert not Authenticator.objects.filter(pk=app.pk).exists()
    event = AuditEvent.objects.get(details__model="mfa.authenticator")
    assert event.actor == root and event.details["operation"] == "deleted"
    assert secret not in str(event.details) and "data" not in event.details["changes"]

    # Hilde's next sign-in sends her to set up a new one.
    password_sign_in(client, "hilde@example.com")
    assert client.get("/hr/guidelines/").url.startswith(reverse("mfa_activate_totp"))


def fake_key(user, name="Key"):
    """A security key's row (its credential is not used by these tests; the browser tests make real ones)."""
    return Authenticator.objects.create(user=user, type=Authenticator.Type.WEBAUTHN,
                                        data={"name": name, "credential": {}})


def test_a_privileged_users_last_security_key_is_not_removed(client, hilde):
    from .factories import sign_in

    key = fake_key(hilde)
    sign_in(client, hilde)
    refused = client.post(reverse("mfa_remove_webauthn", args=[key.pk]))
    assert refused.status_code == 409
    assert "you cannot remove your last one" in refused.content.decode()
    assert Authenticator.objects.filter(pk=key.pk).exists()


def test_with_an_app_as_well_a_privileged_user_removes_a_key(client, hilde, security_log):
    secret = give_authenticator(hilde)
    key = fake_key(hilde)
    signed_in_and_confirmed(client, hilde, secret)
    assert client.post(reverse("mfa_remove_webauthn", args=[key.pk])).status_code == 302
    assert not Authenticator.objects.filter(pk=key.pk).exists()
    assert security_log("second_factor_removed")[0]["details"]["type"] == "webauthn"
    # The app is now the last one: it stays.
    assert client.post(reverse("mfa_deactivate_totp")).status_code == 200
    assert Authenticator.objects.filter(user=hilde, type=Authenticator.Type.TOTP).exists()


def test_someone_elses_key_cannot_be_removed(client, hilde, alice):
    key = fake_key(alice.user)
    secret = give_authenticator(hilde)
    fake_key(hilde)
    signed_in_and_confirmed(client, hilde, secret)
    assert client.post(reverse("mfa_remove_webauthn", args=[key.pk])).status_code == 404
    assert Authenticator.objects.filter(pk=key.pk).exists()


@pytest.mark.parametrize("credential", ["not json", '{"id": "x"}', '{"id": "AAAA", "rawId": "AAAA", '
                                        '"response": {"clientDataJSON": "e30", "attestationObject": "oA"}, '
                                        '"type": "public-key"}', "[]"])
def test_a_forged_credential_is_refused_without_an_error_page(client, hilde, credential):
    secret = give_authenticator(hilde)
    signed_in_and_confirmed(client, hilde, secret)
    assert client.get(reverse("mfa_add_webauthn")).status_code == 200  # the ceremony's challenge
    response = client.post(reverse("mfa_add_webauthn"), {"name": "Forged", "credential": credential})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert not Authenticator.objects.filter(user=hilde, type=Authenticator.Type.WEBAUTHN).exists()



def test_the_second_factors_secrets_are_encrypted_at_rest(hilde, settings):
    from allauth.mfa.totp.internal.auth import TOTP
    from cryptography.fernet import Fernet, InvalidToken

    from guidelines.accounts import second_factor_cipher

    secret = give_authenticator(hilde)
    codes = RecoveryCodes.activate(hilde)
    stored = Authenticator.objects.get(user=hilde, type=Authenticator.Type.TOTP).data["secret"]
    seed = Authenticator.objects.get(user=hilde, type=Authenticator.Type.RECOVERY_CODES).data["seed"]
    assert secret not in stored and stored.startswith("gAAAA")  # a Fernet token
    assert second_factor_cipher().decrypt(seed.encode()).decode() not in seed
    # A new key encrypts from now on; rows made before still open (rotation), and the codes still work.
    settings.MFA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    app = TOTP(Authenticator.objects.get(user=hilde, type=Authenticator.Type.TOTP))
    assert app.validate_code(totp_code(secret))
    assert RecoveryCodes(codes.instance).get_unused_codes() == codes.get_unused_codes()
    # Without the key (a copy of the database elsewhere, with another SECRET_KEY) nothing opens.
    settings.MFA_ENCRYPTION_KEYS, settings.SECRET_KEY = [], "another-" + "k" * 60
    with pytest.raises(InvalidToken):
        second_factor_cipher().decrypt(stored.encode())


def test_the_migration_encrypts_secrets_stored_before(hilde):
    import importlib

    from django.apps import apps

    from guidelines.accounts import second_factor_cipher

    migration = importlib.import_module("guidelines.migrations.0013_encrypt_second_factors")
    plain = Authenticator.objects.create(user=hilde, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"})
    migration.encrypt_existing(apps, None)
    migration.encrypt_existing(apps, None)  # twice: already encrypted rows stay as they are
    stored = Authenticator.objects.get(pk=plain.pk).data["secret"]
    assert second_factor_cipher().decrypt(stored.encode()).decode() == "JBSWY3DPEHPK3PXP"
