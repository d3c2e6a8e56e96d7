"""A real OpenID Connect provider for tests, and a small browser to sign in at it.

The provider is tests/oidc/provider.mjs (npm package oidc-provider), run by Node.js on 127.0.0.1 with
the clients and accounts a test gives it. Typical use, one provider per test module::

    @pytest.fixture(scope="module")
    def identity_provider(live_server):
        client = {"client_id": "intranet", "client_secret": "s3cret",
                  "redirect_uris": [f"{live_server.url}/accounts/oidc/entra/login/callback/"],
                  "post_logout_redirect_uris": [f"{live_server.url}/"]}
        with oidc_provider([client], ACCOUNTS) as provider:
            yield provider  # provider.issuer == "http://127.0.0.1:<port>"

and, with Django's test client, ``callback_url = sign_in(authorize_url, "alice@example.com")``
(or ``sign_in_with_requests(session, ...)``). Only the standard library is imported.
"""

import html.parser
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROVIDER_DIR = REPO_ROOT / "tests" / "oidc"
PROVIDER_SCRIPT = PROVIDER_DIR / "provider.mjs"
PROVIDER_PACKAGE = PROVIDER_DIR / "node_modules" / "oidc-provider"
READY_TIMEOUT_SECONDS = 20
STOP_TIMEOUT_SECONDS = 10
# A sign-in is a handful of redirects; more than this means the provider and the caller loop.
MAX_BROWSER_STEPS = 20


class OIDCProviderError(RuntimeError):
    """The provider process could not be started, or a page of the provider was not what a sign-in expects."""


class OIDCProvider:
    """One provider process. ``start()`` returns once it listens; ``stop()`` ends it (SIGTERM)."""

    def __init__(self):
        self._process = None
        self._issuer = None
        self._output_dir = None
        self._stderr_of_stopped_process = ""

    @property
    def process(self):
        return self._process

    @property
    def issuer(self):
        """``http://127.0.0.1:<port>``: the issuer, and the base of every endpoint of the provider."""
        return self._issuer

    @property
    def port(self):
        return urllib.parse.urlsplit(self._issuer).port if self._issuer else None

    @property
    def discovery_url(self):
        return f"{self._issuer}/.well-known/openid-configuration"

    def start(self, clients, accounts, port=0):
        """Start the provider with oidc-provider client metadata (``client_id``, ``client_secret``,
        ``redirect_uris``, ``post_logout_redirect_uris``...) and accounts keyed by login e-mail
        (each with ``sub``, the claims, and the ``amr``/``acr`` its sign-in reports)."""
        if self._process is not None and self._process.poll() is None:
            raise OIDCProviderError("The OIDC test provider is already running.")
        node = shutil.which("node")
        if node is None:
            raise OIDCProviderError("Node.js (`node`) is not on PATH; the OIDC test provider needs it.")
        if not PROVIDER_PACKAGE.is_dir():
            raise OIDCProviderError(
                f"{PROVIDER_PACKAGE.relative_to(REPO_ROOT)} is missing: run `make test`, which installs it "
                "(or `npm ci --prefix tests/oidc`)."
            )
        # Output goes to files, not pipes: nobody reads a pipe during the tests, and a full one blocks Node.
        self._output_dir = tempfile.TemporaryDirectory(prefix="oidc-provider-")
        stdout_path, stderr_path = self._output_path("stdout"), self._output_path("stderr")
        config = {"port": port, "clients": clients, "accounts": accounts}
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            self._process = subprocess.Popen(
                [node, str(PROVIDER_SCRIPT)],
                cwd=REPO_ROOT,
                env={**os.environ, "OIDC_TEST_CONFIG": json.dumps(config)},
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        try:
            self._issuer = self._wait_until_ready(stdout_path)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Stop the provider; its port refuses connections afterwards. Safe to call more than once."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._output_dir is not None:
            self._stderr_of_stopped_process = self.stderr_text()
            self._output_dir.cleanup()
            self._output_dir = None

    def stderr_text(self):
        """What the provider logged (its errors, oidc-provider's warnings): useful in a failing test."""
        if self._output_dir is None:
            return self._stderr_of_stopped_process
        return self._output_path("stderr").read_text(errors="replace")

    def _output_path(self, name):
        return Path(self._output_dir.name) / name

    def _wait_until_ready(self, stdout_path):
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            for line in stdout_path.read_text(errors="replace").splitlines():
                announcement = _json_object(line)
                if announcement.get("ready"):
                    return announcement["issuer"]
            if self._process.poll() is not None:
                raise OIDCProviderError(
                    f"The OIDC test provider exited with code {self._process.returncode} before it was ready. "
                    f"Its stderr:\n{self.stderr_text()}"
                )
            time.sleep(0.05)
        raise OIDCProviderError(
            f"The OIDC test provider was not ready within {READY_TIMEOUT_SECONDS} s. Its stderr:\n{self.stderr_text()}"
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def _json_object(line):
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@contextmanager
def oidc_provider(clients, accounts):
    """A running provider for the ``with`` block; use it inside a module- or session-scoped fixture."""
    provider = OIDCProvider().start(clients, accounts)
    try:
        yield provider
    finally:
        provider.stop()


@dataclass
class Response:
    status: int
    url: str
    headers: dict
    body: bytes

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body)

    @property
    def location(self):
        """The absolute redirect target, or None when this is not a redirect."""
        if 300 <= self.status < 400 and "location" in self.headers:
            return urllib.parse.urljoin(self.url, self.headers["location"])
        return None


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # hand the 3xx response to the caller, who decides whether to follow it


class ProviderBrowser:
    """A cookie-keeping HTTP client that, unlike urllib, hands back redirects instead of following them.

    The provider's session cookie lives here, so one browser signed in once is still signed in for
    the next authorization request or for a sign-out."""

    def __init__(self):
        self.cookies = CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _KeepRedirects())

    def request(self, url, form=None, headers=None, timeout=10):
        """GET ``url``, or POST ``form`` (a dict) to it form-encoded. HTTP errors are returned, not raised."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return Response(response.status, url, _lowercase_keys(response.headers), response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Response(error.code, url, _lowercase_keys(error.headers), error.read())


def _lowercase_keys(headers):
    return {name.lower(): value for name, value in headers.items()}


def _origin(url):
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc


class _FormParser(html.parser.HTMLParser):
    """The first form of a page: its action and its fields' names and values."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}
        self._in_first_form = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attributes.get("action") or ""
            self._in_first_form = True
        elif tag == "input" and self._in_first_form and attributes.get("name"):
            self.fields[attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_first_form = False


def _first_form(response):
    parser = _FormParser()
    parser.feed(response.text)
    if parser.action is None:
        return None, {}
    return urllib.parse.urljoin(response.url, parser.action), parser.fields


def _browse_until_leaving_provider(fetch, url, login=None):
    """Follow the provider's redirects and forms, signing in with ``login`` when its login form
    shows, until a redirect leaves the provider's origin; return that redirect's URL unrequested.
    ``fetch(url, form)`` GETs, or POSTs the form, keeping cookies and not following redirects."""
    provider_origin = _origin(url)
    form = None
    login_submitted = False
    for _step in range(MAX_BROWSER_STEPS):
        response = fetch(url, form)
        if response.location:
            if _origin(response.location) != provider_origin:
                return response.location
            url, form = response.location, None
            continue
        action, fields = _first_form(response) if response.status == 200 else (None, {})
        if action is None or ("login" in fields and (login is None or login_submitted)):
            raise OIDCProviderError(f"The OIDC provider answered {response.status} at {url}:\n{response.text}")
        if "login" in fields:
            fields["login"] = login
            login_submitted = True
        # Any other form is one the provider posts by itself with JavaScript (the sign-out form).
        url, form = action, fields
    raise OIDCProviderError(f"Gave up after {MAX_BROWSER_STEPS} requests at the OIDC provider, last {url}")


def sign_in(authorize_url, login, browser=None):
    """Sign in at the provider as ``login`` and return the redirect back to the relying party.

    ``authorize_url`` is where the relying party sent the browser (the provider's /auth with its
    query). The returned URL is the client's redirect_uri with ``code``, ``state`` and ``iss``; it is
    not requested, so a Django test client can take it from here. An unknown login raises
    OIDCProviderError with the provider's "Unknown user" page. Pass a ``browser`` to keep the
    provider's session, e.g. to sign out later or to see a second sign-in skip the login form."""
    return _browse_until_leaving_provider((browser or ProviderBrowser()).request, authorize_url, login)


def sign_in_with_requests(session, authorize_url, login):
    """``sign_in`` through a ``requests.Session``, whose cookies then hold the provider's session."""

    def fetch(url, form):
        reply = session.request("GET" if form is None else "POST", url, data=form, allow_redirects=False, timeout=10)
        return Response(reply.status_code, url, _lowercase_keys(reply.headers), reply.content)

    return _browse_until_leaving_provider(fetch, authorize_url, login)


def sign_out(end_session_url, browser):
    """Follow an RP-initiated logout (the provider's /session/end with ``id_token_hint``,
    ``post_logout_redirect_uri`` and ``state``) in ``browser`` and return the redirect back to the
    relying party, unrequested. The provider asks no confirmation: its page posts itself."""
    return _browse_until_leaving_provider(browser.request, end_session_url)
