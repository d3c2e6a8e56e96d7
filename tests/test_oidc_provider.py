"""The OIDC test provider itself (tests/oidc): a real oidc-provider process driven over HTTP."""

import base64
import hashlib
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .oidc_provider import (
    OIDCProvider,
    OIDCProviderError,
    ProviderBrowser,
    oidc_provider,
    sign_in,
    sign_in_with_requests,
    sign_out,
)

REDIRECT_URI = "http://127.0.0.1:8001/accounts/oidc/entra/login/callback/"
POST_LOGOUT_REDIRECT_URI = "http://127.0.0.1:8001/"
CLIENT = {
    "client_id": "intranet",
    "client_secret": "s3cret",
    "redirect_uris": [REDIRECT_URI, "http://testserver/accounts/oidc/entra/login/callback/"],
    "post_logout_redirect_uris": [POST_LOGOUT_REDIRECT_URI],
}
ACCOUNTS = {
    "alice@example.com": {
        "sub": "sub-alice",
        "email": "Alice@Example.com",
        "email_verified": True,
        "name": "Alice Example",
        "given_name": "Alice",
        "family_name": "Example",
        "amr": ["pwd", "mfa"],
        "acr": "urn:example:mfa",
    },
}


@pytest.fixture(scope="module")
def provider():
    with oidc_provider([CLIENT], ACCOUNTS) as running_provider:
        yield running_provider


@pytest.fixture(scope="module")
def discovery(provider):
    return ProviderBrowser().request(provider.discovery_url).json()


def base64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verified_jwt_claims(token, jwks):
    """The claims of an RS256 JWT whose signature checks out against one of the provider's keys."""
    encoded_header, encoded_payload, encoded_signature = token.split(".")
    header = json.loads(base64url_decode(encoded_header))
    assert header["alg"] == "RS256"
    (key,) = [key for key in jwks["keys"] if key["kid"] == header["kid"]]
    public_key = rsa.RSAPublicNumbers(
        int.from_bytes(base64url_decode(key["e"])), int.from_bytes(base64url_decode(key["n"]))
    ).public_key()
    public_key.verify(
        base64url_decode(encoded_signature),
        f"{encoded_header}.{encoded_payload}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return json.loads(base64url_decode(encoded_payload))


def authorize_url(discovery, state, nonce, code_verifier=None):
    params = {
        "response_type": "code",
        "client_id": CLIENT["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile",
        "state": state,
        "nonce": nonce,
    }
    if code_verifier:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=")
        params.update(code_challenge=challenge.decode(), code_challenge_method="S256")
    return f"{discovery['authorization_endpoint']}?{urllib.parse.urlencode(params)}"


def callback_params(callback_url):
    assert callback_url.startswith(REDIRECT_URI + "?")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback_url).query))


def redeem_code(discovery, code, client_secret=CLIENT["client_secret"], code_verifier=None):
    """The token request with client_secret_post."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT["client_id"],
        "client_secret": client_secret,
    }
    if code_verifier:
        form["code_verifier"] = code_verifier
    return ProviderBrowser().request(discovery["token_endpoint"], form)


def test_discovery_document_lists_the_endpoints(provider, discovery):
    assert discovery["issuer"] == provider.issuer == f"http://127.0.0.1:{provider.port}"
    for endpoint in ("authorization", "token", "userinfo", "end_session"):
        assert discovery[f"{endpoint}_endpoint"].startswith(provider.issuer + "/")
    assert discovery["jwks_uri"].startswith(provider.issuer + "/")
    assert {"client_secret_post", "client_secret_basic"} <= set(discovery["token_endpoint_auth_methods_supported"])
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "email", "profile"} <= set(discovery["scopes_supported"])
    assert ProviderBrowser().request(f"{provider.issuer}/test/health").text == "ok"


def test_code_flow_with_pkce_and_client_secret_post_reports_mfa(provider, discovery):
    state, nonce, code_verifier = secrets.token_urlsafe(), secrets.token_urlsafe(), secrets.token_urlsafe(48)

    callback = callback_params(sign_in(authorize_url(discovery, state, nonce, code_verifier), "alice@example.com"))
    assert callback["state"] == state
    assert callback["iss"] == provider.issuer

    response = redeem_code(discovery, callback["code"], code_verifier=code_verifier)
    assert response.status == 200, response.text
    tokens = response.json()
    jwks = ProviderBrowser().request(discovery["jwks_uri"]).json()
    id_token = verified_jwt_claims(tokens["id_token"], jwks)
    assert id_token["iss"] == provider.issuer
    assert id_token["aud"] == "intranet"
    assert id_token["nonce"] == nonce
    assert id_token["sub"] == "sub-alice"
    assert id_token["email"] == "Alice@Example.com"
    assert id_token["email_verified"] is True
    assert (id_token["name"], id_token["given_name"], id_token["family_name"]) == ("Alice Example", "Alice", "Example")
    assert id_token["amr"] == ["pwd", "mfa"]
    assert id_token["acr"] == "urn:example:mfa"

    userinfo = ProviderBrowser().request(
        discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status == 200, userinfo.text
    assert userinfo.json() == {
        "sub": "sub-alice",
        "email": "Alice@Example.com",
        "email_verified": True,
        "name": "Alice Example",
        "given_name": "Alice",
        "family_name": "Example",
    }


def test_code_flow_without_pkce_and_client_secret_basic(discovery):
    state, nonce = secrets.token_urlsafe(), secrets.token_urlsafe()

    # The login is matched case-insensitively.
    callback = callback_params(sign_in(authorize_url(discovery, state, nonce), "ALICE@example.com"))

    basic = base64.b64encode(f"{CLIENT['client_id']}:{CLIENT['client_secret']}".encode()).decode()
    response = ProviderBrowser().request(
        discovery["token_endpoint"],
        {"grant_type": "authorization_code", "code": callback["code"], "redirect_uri": REDIRECT_URI},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status == 200, response.text
    id_token = json.loads(base64url_decode(response.json()["id_token"].split(".")[1]))
    assert (id_token["sub"], id_token["nonce"], id_token["amr"]) == ("sub-alice", nonce, ["pwd", "mfa"])


def test_unknown_login_shows_the_form_again_and_issues_no_code(discovery):
    browser = ProviderBrowser()
    response = browser.request(authorize_url(discovery, "some-state", "some-nonce"))
    while response.location:
        response = browser.request(response.location)
    assert response.status == 200
    assert 'name="login"' in response.text and "Sign in</button>" in response.text and "E-mail" in response.text
    interaction_path = urllib.parse.urlsplit(response.url).path
    assert f'action="{interaction_path}/login"' in response.text

    refused = browser.request(f"{response.url}/login", {"login": "mallory@example.com"})

    assert refused.status == 400
    assert refused.location is None
    assert "Unknown user" in refused.text and 'name="login"' in refused.text
    with pytest.raises(OIDCProviderError, match="Unknown user"):
        sign_in(authorize_url(discovery, "some-state", "some-nonce"), "mallory@example.com")


def test_token_endpoint_refuses_a_wrong_client_secret(discovery):
    callback = callback_params(sign_in(authorize_url(discovery, "state", "nonce"), "alice@example.com"))

    response = redeem_code(discovery, callback["code"], client_secret="wrong")

    assert response.status == 401
    assert response.json()["error"] == "invalid_client"


def test_token_endpoint_refuses_a_wrong_pkce_verifier(discovery):
    code_verifier = secrets.token_urlsafe(48)
    callback = callback_params(sign_in(authorize_url(discovery, "state", "nonce", code_verifier), "alice@example.com"))

    response = redeem_code(discovery, callback["code"], code_verifier=secrets.token_urlsafe(48))

    assert response.status == 400
    assert response.json()["error"] == "invalid_grant"


def test_rp_initiated_logout_returns_without_confirmation_and_ends_the_session(discovery):
    browser = ProviderBrowser()
    callback = callback_params(sign_in(authorize_url(discovery, "state", "nonce"), "alice@example.com", browser))
    id_token = redeem_code(discovery, callback["code"]).json()["id_token"]
    # Signed in at the provider: the next authorization request needs no login.
    assert callback_params(sign_in(authorize_url(discovery, "again", "nonce"), login=None, browser=browser))

    logout_query = urllib.parse.urlencode(
        {"id_token_hint": id_token, "post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI, "state": "bye"}
    )
    back_at_client = sign_out(f"{discovery['end_session_endpoint']}?{logout_query}", browser)

    assert back_at_client == f"{POST_LOGOUT_REDIRECT_URI}?state=bye"
    with pytest.raises(OIDCProviderError, match='name="login"'):
        sign_in(authorize_url(discovery, "after-logout", "nonce"), login=None, browser=browser)


def test_stopped_provider_refuses_connections():
    provider = OIDCProvider().start([CLIENT], ACCOUNTS)
    assert ProviderBrowser().request(provider.discovery_url).status == 200

    provider.stop()

    assert provider.process.returncode == 0, provider.stderr_text()
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(provider.discovery_url, timeout=5)
    assert isinstance(refused.value.reason, ConnectionRefusedError)


def test_start_failure_reports_the_provider_stderr(provider):
    with pytest.raises(OIDCProviderError, match="(?s)exited with code 1 before it was ready.*EADDRINUSE"):
        OIDCProvider().start([CLIENT], ACCOUNTS, port=provider.port)


def test_sign_in_with_a_requests_session(discovery):
    requests = pytest.importorskip("requests", reason="requests comes with allauth's OpenID Connect client")
    with requests.Session() as session:
        callback = callback_params(
            sign_in_with_requests(session, authorize_url(discovery, "state", "nonce"), "alice@example.com")
        )
        # The session cookie is in the requests session: a second sign-in skips the login form.
        assert sign_in_with_requests(session, authorize_url(discovery, "again", "nonce"), login=None)

    assert callback["state"] == "state"
    assert redeem_code(discovery, callback["code"]).status == 200


def test_a_misconfigured_client_fails_the_start():
    with pytest.raises(OIDCProviderError, match="client intranet: invalid_redirect_uri"):
        OIDCProvider().start([{**CLIENT, "redirect_uris": ["not a URL"]}], ACCOUNTS)
