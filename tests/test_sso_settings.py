"""OpenID Connect providers come from the environment (settings.envoidc); a wrong value stops the start."""

import json
import subprocess
import sys

import pytest

from .test_security_config import BASE_DIR, production_env

ENTRA = {
    "OIDC_PROVIDERS": "entra",
    "OIDC_ENTRA_ISSUER": "https://login.microsoftonline.com/9f0e2c1a-0000-4000-8000-000000000000/v2.0",
    "OIDC_ENTRA_CLIENT_ID": "1b2c3d4e-client",
    "OIDC_ENTRA_CLIENT_SECRET": "from-the-vault",
    "OIDC_ENTRA_NAME": "Microsoft",
    "OIDC_ENTRA_DOMAINS": "Bank.nl, @dochter.nl",
    "OIDC_ENTRA_MFA_ENFORCED": "1",
}
KEYCLOAK = {
    "OIDC_PROVIDERS": "entra,keycloak",
    "OIDC_KEYCLOAK_ISSUER": "https://sso.example.nl/realms/contractors",
    "OIDC_KEYCLOAK_CLIENT_ID": "intranet",
    "OIDC_KEYCLOAK_CLIENT_SECRET": "another-secret",
    "OIDC_KEYCLOAK_SCOPES": "openid email",
    "OIDC_KEYCLOAK_EMAIL_CLAIM": "preferred_username",
    "OIDC_KEYCLOAK_MFA_ACR": "gold, 2",
}
READ = ("import json; from django.conf import settings; print(json.dumps({'apps': settings.OIDC_APPS, "
        "'password_login': settings.PASSWORD_LOGIN}))")


def load(tmp_path, **overrides):
    return subprocess.run([sys.executable, "-c", READ], cwd=BASE_DIR, env=production_env(tmp_path, **overrides),
                          capture_output=True, text=True, timeout=120)


def values(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_providers_the_sign_in_is_by_password_only(tmp_path):
    assert values(load(tmp_path)) == {"apps": [], "password_login": True}


def test_two_providers_from_the_environment(tmp_path):
    loaded = values(load(tmp_path, **{**ENTRA, **KEYCLOAK}, PASSWORD_LOGIN="0"))
    assert loaded["password_login"] is False
    entra, keycloak = loaded["apps"]
    assert (entra["provider_id"], entra["name"], entra["client_id"], entra["secret"]) == (
        "entra", "Microsoft", "1b2c3d4e-client", "from-the-vault")
    assert entra["settings"] == {
        "server_url": ENTRA["OIDC_ENTRA_ISSUER"], "scope": ["openid", "email", "profile"],
        "oauth_pkce_enabled": True, "email_claim": "email", "allowed_domains": ["bank.nl", "dochter.nl"],
        "mfa_acr": [], "mfa_enforced": True}
    assert keycloak["name"] == "keycloak"  # no NAME: the id
    assert (keycloak["settings"]["mfa_acr"], keycloak["settings"]["mfa_enforced"]) == (["gold", "2"], False)
    assert keycloak["settings"]["scope"] == ["openid", "email"]
    assert keycloak["settings"]["email_claim"] == "preferred_username"
    assert keycloak["settings"]["allowed_domains"] == []


@pytest.mark.parametrize("overrides, variable", [
    ({**ENTRA, "OIDC_ENTRA_CLIENT_SECRET": ""}, "OIDC_ENTRA_CLIENT_SECRET"),
    ({**ENTRA, "OIDC_ENTRA_ISSUER": None}, "OIDC_ENTRA_ISSUER"),
    ({**ENTRA, "OIDC_ENTRA_ISSUER": "http://login.example.nl/tenant"}, "OIDC_ENTRA_ISSUER"),  # not https
    ({**ENTRA, "OIDC_ENTRA_SCOPES": "email profile"}, "OIDC_ENTRA_SCOPES"),
    ({**ENTRA, "OIDC_PROVIDERS": "Entra ID"}, "OIDC_PROVIDERS"),
    ({"PASSWORD_LOGIN": "0"}, "PASSWORD_LOGIN"),  # no way in at all
    ({**ENTRA, "PASSWORD_LOGIN": "maybe"}, "PASSWORD_LOGIN"),
    ({**ENTRA, "OIDC_ENTRA_MFA_ENFORCED": "perhaps"}, "OIDC_ENTRA_MFA_ENFORCED"),
])
def test_a_wrong_provider_configuration_stops_the_start_naming_the_variable(tmp_path, overrides, variable):
    result = load(tmp_path, **overrides)
    assert result.returncode != 0, f"{overrides} was accepted"
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line and variable in last_line, result.stderr


def test_a_provider_on_loopback_may_use_http(tmp_path):
    loaded = values(load(tmp_path, **{**ENTRA, "OIDC_ENTRA_ISSUER": "http://127.0.0.1:9000"}))
    assert loaded["apps"][0]["settings"]["server_url"] == "http://127.0.0.1:9000"
