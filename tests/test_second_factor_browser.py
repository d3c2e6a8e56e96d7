"""The second factor in Debian's Chromium: the authenticator app set up from the page's own secret,
and a security key through Chromium's virtual authenticator (the browser's own WebAuthn test device,
driven through the DevTools protocol): real ceremonies, real signatures, checked by allauth's fido2
server."""

import pytest
from allauth.mfa.models import Authenticator

from .factories import PASSWORD, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def plug_in_key(page):
    """A USB security key with a PIN (user verification), as Chromium's virtual authenticator."""
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    key = devtools.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "usb", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return devtools, key["authenticatorId"]


def password_sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def confirm_password(page):
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()


def test_hr_adds_a_security_key_and_signs_in_with_it(live_server, page, screenshots, hilde, security_log):
    assert "localhost" in live_server.url  # WebAuthn refuses an IP address as the site's identity
    devtools, key = plug_in_key(page)
    password_sign_in(page, live_server, hilde.email)
    # No second factor yet: sent to set one up (allauth asks for the password once more first),
    # where a key may replace the app.
    confirm_password(page)
    page.get_by_role("heading", name="Set up your authenticator app").wait_for()
    page.get_by_role("link", name="Add it instead of an app").click()
    page.get_by_role("heading", name="Add a security key").wait_for()
    page.get_by_label("Name of the key").fill("YubiKey on my keyring")
    page.screenshot(path=screenshots / "webauthn-1-add.png", full_page=True)
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    stored = Authenticator.objects.get(user=hilde, type=Authenticator.Type.WEBAUTHN)
    assert stored.data["name"] == "YubiKey on my keyring"
    assert len(devtools.send("WebAuthn.getCredentials", {"authenticatorId": key})["credentials"]) == 1
    page.get_by_role("link", name="I have kept them: continue").click()
    page.goto(f"{live_server.url}/hr/guidelines/")
    assert page.url.endswith("/hr/guidelines/")  # the key counted as this session's second factor

    page.goto(f"{live_server.url}/accounts/2fa/webauthn/")
    page.screenshot(path=screenshots / "webauthn-2-list.png", full_page=True)
    # Her only second factor: no way to remove it is offered.
    assert page.get_by_role("link", name="Rename").count() == 1
    assert page.get_by_role("link", name="Remove").count() == 0

    # The next sign-in asks for the key, which signs the server's challenge.
    page.context.clear_cookies()
    password_sign_in(page, live_server, hilde.email)
    page.get_by_role("heading", name="Confirm your sign-in").wait_for()
    page.screenshot(path=screenshots / "webauthn-3-sign-in.png", full_page=True)
    page.get_by_role("button", name="Use my security key").click()
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/hr/guidelines/")
    assert page.url.endswith("/hr/guidelines/")
    assert Authenticator.objects.get(pk=stored.pk).last_used_at is not None

    # A step that asks to confirm the sign-in (adding a second key) takes the key as well.
    page.goto(f"{live_server.url}/accounts/2fa/webauthn/add/")
    # allauth's confirmation takes a second factor first (the code); the key is one of the other ways.
    page.get_by_role("link", name="Use a security key").click()
    page.get_by_role("heading", name="Confirm it is you").wait_for()
    page.screenshot(path=screenshots / "webauthn-5-confirm.png", full_page=True)
    page.get_by_role("button", name="Use my security key").click()
    page.get_by_role("heading", name="Add a security key").wait_for()
    assert [event["details"]["type"] for event in security_log("second_factor_added")] == ["webauthn",
                                                                                          "recovery_codes"]


def test_another_key_than_hers_is_refused_with_a_message(live_server, page, screenshots, hilde):
    devtools, key = plug_in_key(page)
    password_sign_in(page, live_server, hilde.email)
    confirm_password(page)
    page.get_by_role("link", name="Add it instead of an app").click()
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()

    # Signing in again with a different key (hers was left at home): the browser finds no credential
    # for this site on it, and the page says so instead of doing nothing.
    devtools.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": key})
    plug_in_key(page)
    page.context.clear_cookies()
    password_sign_in(page, live_server, hilde.email)
    page.get_by_role("button", name="Use my security key").click()
    alert = page.get_by_role("alert").filter(has_text="The security key was not used")
    alert.wait_for()
    page.screenshot(path=screenshots / "webauthn-4-wrong-key.png", full_page=True)
    page.goto(f"{live_server.url}/hr/guidelines/")
    assert "/hr/guidelines/" not in page.url  # still not signed in


    # A page script that posts a made-up assertion instead of asking the key: refused, no error page.
    for forged in ("not json", "[]", '{"id": "x"}', '{"id": "AAAA", "rawId": "AAAA", "type": "public-key", '
                   '"response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"}}'):
        page.goto(f"{live_server.url}/accounts/2fa/authenticate/")
        with page.expect_navigation() as posted:
            page.evaluate("""forged => {
                const form = document.getElementById('webauthn_form')
                form.querySelector('input[name=credential]').value = forged
                form.submit()
            }""", forged)
        assert posted.value.status < 500, forged
        page.goto(f"{live_server.url}/hr/guidelines/")
        assert "/hr/guidelines/" not in page.url, forged


def test_an_auditor_sets_up_the_authenticator_app_on_a_phone_in_dutch(live_server, page, screenshots, arjen):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("button[name=language][value=nl]").click()
    page.get_by_label("E-mailadres").fill(arjen.email)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.get_by_label("Wachtwoord").fill(PASSWORD)  # allauth asks for the password once more
    page.get_by_role("button", name="Bevestigen").click()
    page.get_by_role("heading", name="Stel je authenticator-app in").wait_for()
    page.screenshot(path=screenshots / "mfa-1-setup-nl-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    secret = page.get_by_label("Of typ deze geheime sleutel in de app").input_value()
    page.get_by_label("Code uit de app").fill(totp_code(secret))
    page.get_by_role("button", name="Activeren").click()
    page.get_by_role("heading", name="Je herstelcodes").wait_for()
    page.screenshot(path=screenshots / "mfa-2-recovery-codes-nl-phone.png", full_page=True)
    codes = page.locator("ol.recovery-codes code").all_inner_texts()
    stored = Authenticator.objects.get(user=arjen, type=Authenticator.Type.RECOVERY_CODES)
    assert codes == stored.wrap().get_unused_codes() and len(codes) == 10
    page.get_by_role("link", name="Ik heb ze bewaard: verder").click()
    page.goto(f"{live_server.url}/reports/")
    assert page.url.endswith("/reports/")  # the auditor's pages are open now
    page.goto(f"{live_server.url}/accounts/2fa/")
    page.screenshot(path=screenshots / "mfa-3-overview-nl-phone.png", full_page=True)
    assert page.get_by_role("link", name="Uitzetten").count() == 0  # his only second factor
