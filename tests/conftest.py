"""The fixed cast: Alice (employee), Bob (her manager, approver), Hilde (HR), Arjen (auditor),
Otto (employee outside the audience of department-only guidelines), Nina (account without employee record)."""

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.utils import translation

from guidelines import services

from .factories import make_employee, make_guideline, make_user, publish, sign_in

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls there otherwise.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Django 6.1's PBKDF2 takes about a second per user; tests check behaviour, not hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def english():
    # Messages asserted in tests are the English source strings; Dutch has its own tests.
    with translation.override("en"):
        yield


@pytest.fixture
def bob(db):
    return make_employee("bob@example.com", "E0002", groups=["Approvers"])


@pytest.fixture
def alice(bob):
    return make_employee("alice@example.com", "E0001", manager=bob)


@pytest.fixture
def hilde(db):
    return make_user("hilde@example.com", first_name="Hilde", groups=["HR"], is_staff=True)


@pytest.fixture
def arjen(db):
    return make_user("arjen@example.com", first_name="Arjen", groups=["Auditors"])


@pytest.fixture
def otto(db):
    return make_employee("otto@example.com", "E0099", department="Finance")


@pytest.fixture
def nina(db):
    return make_user("nina@example.com", first_name="Nina")


@pytest.fixture
def guideline(hilde):
    return make_guideline(hilde)


@pytest.fixture
def version_1(guideline, hilde, bob):
    return publish(guideline, author=hilde, approver=bob.user)


@pytest.fixture
def web_meta():
    return services.RequestMeta(channel="web", auth_method="password", ip_address="10.1.2.3", user_agent="pytest")


@pytest.fixture
def client():
    from django.test import Client

    return Client(headers={"accept-language": "en"})


@pytest.fixture
def client_as(client):
    def login(person):
        return sign_in(client, person)

    return login


@pytest.fixture
def without_passwords(settings):
    """PASSWORD_LOGIN=0. The URLs depend on it and are built at start-up, so they are built again."""
    import importlib

    from django.urls import clear_url_caches

    import intranet.urls

    def rebuild(password_login):
        settings.PASSWORD_LOGIN = password_login
        clear_url_caches()
        importlib.reload(intranet.urls)

    rebuild(False)
    yield
    rebuild(True)


@pytest.fixture
def fresh_rate_limits():
    """Rate limits (allauth's sign-in limits, the report limits) count in the cache, which outlives a test."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def security_log(caplog):
    """events(name): the JSON lines of the `security` logger with that event, in order."""
    caplog.set_level(logging.INFO, logger="security")

    def events(name):
        entries = [json.loads(record.getMessage()) for record in caplog.records if record.name == "security"]
        return [entry for entry in entries if entry["event"] == name]

    return events


# Browser tests: Debian's Chromium driven by Playwright (never a downloaded browser). ---------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def screenshots():
    folder = Path(os.environ.get("SCREENSHOT_DIR", Path(django_settings.VAR_DIR) / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(live_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
        )
        context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()
