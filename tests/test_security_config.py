"""Security configuration: production refuses unsafe settings at start-up and passes
`check --deploy`; uploads are refused by size before their body is read; personal pages are never
cached."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from guidelines import services
from guidelines.middleware import UploadLimitMiddleware
from guidelines.models import ImportRun
from guidelines.reports import jobs

from .factories import sign_in

BASE_DIR = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


# --- start-up refuses an unsafe production configuration ----------------------------------------------


def production_env(tmp_path, **overrides):
    """A minimal production environment (nothing of the test run leaks in); None removes a variable."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "intranet.settings",
        "VAR_DIR": str(tmp_path),
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "intranet.example.nl",
        "CSRF_TRUSTED_ORIGINS": "https://intranet.example.nl",
        "SITE_URL": "https://intranet.example.nl",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.nl",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


SETTINGS_JSON = (
    "import json; from django.conf import settings; print(json.dumps({'DEBUG': settings.DEBUG, "
    "'SECRET_KEY_SET': bool(settings.SECRET_KEY), 'LOGGING': settings.LOGGING['loggers']['security'], "
    "'UPLOAD_LIMITS': settings.UPLOAD_LIMITS, 'PROXIES': settings.ALLAUTH_TRUSTED_PROXY_COUNT, "
    "'REPORT_RATE_LIMITS': settings.REPORT_RATE_LIMITS}))"
)


def load_settings(env):
    return subprocess.run([sys.executable, "-c", SETTINGS_JSON], cwd=BASE_DIR, env=env, capture_output=True,
                          text=True, timeout=120)


def test_without_debug_the_instance_is_production(tmp_path):
    result = load_settings(production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["DEBUG"] is False
    assert values["UPLOAD_LIMITS"] == {"guidelines:hr_import": 32 * MB, "guidelines:report_verify": 50 * MB,
                                       "guidelines:public_verify": 50 * MB}
    assert values["PROXIES"] == 0
    assert values["REPORT_RATE_LIMITS"] == {"generate": [10, 3600], "download": [60, 600]}


def test_a_development_run_says_debug_and_needs_no_key(tmp_path):
    result = load_settings(production_env(tmp_path, DEBUG="1", SECRET_KEY=None, ALLOWED_HOSTS=None))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["DEBUG"] is True


@pytest.mark.parametrize("overrides, variable", [
    ({"SECRET_KEY": None}, "SECRET_KEY"),  # DEBUG and SECRET_KEY unset: no development key in production
    ({"SECRET_KEY": None, "DEBUG": "0"}, "SECRET_KEY"),
    ({"SECRET_KEY": "a" * 50}, "SECRET_KEY"),  # long enough, one character
    ({"SECRET_KEY": "abcd" * 20}, "SECRET_KEY"),  # four different characters
    ({"SECRET_KEY": "django-insecure-" + secrets.token_urlsafe(48)}, "SECRET_KEY"),
    ({"SECRET_KEY": "dev-only-insecure-key-change-me-in-production-0123456789"}, "SECRET_KEY"),
    ({"SECRET_KEY": secrets.token_urlsafe(30)}, "SECRET_KEY"),  # 40 characters
    ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
    ({"ALLOWED_HOSTS": "intranet.example.nl, *"}, "ALLOWED_HOSTS"),
    ({"IMPORT_MAX_BYTES": "32MB"}, "IMPORT_MAX_BYTES"),
    ({"VERIFY_MAX_BYTES": "0"}, "VERIFY_MAX_BYTES"),
    ({"TRUSTED_PROXY_COUNT": "-1"}, "TRUSTED_PROXY_COUNT"),
    ({"SECURITY_LOG_FILE": "/nonexistent-folder/security.log"}, "SECURITY_LOG_FILE"),
    ({"REPORT_RATE_GENERATE": "10 per hour"}, "REPORT_RATE_GENERATE"),
    ({"REPORT_RATE_DOWNLOAD": "0/600"}, "REPORT_RATE_DOWNLOAD"),
    ({"SESSION_IDLE_MINUTES": "0"}, "SESSION_IDLE_MINUTES"),
    ({"SESSION_IDLE_MINUTES": "600"}, "SESSION_IDLE_MINUTES"),  # longer than the 8-hour sign-in
    ({"REAUTHENTICATION_MINUTES": "0"}, "REAUTHENTICATION_MINUTES"),
])
def test_production_refuses_to_start_on_an_unsafe_value_naming_it(tmp_path, overrides, variable):
    result = load_settings(production_env(tmp_path, **overrides))
    assert result.returncode != 0, f"{overrides} was accepted"
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line and variable in last_line, result.stderr


def test_deploy_check_is_clean_for_production_settings(tmp_path):
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=BASE_DIR, env=production_env(tmp_path), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "WARNINGS" not in result.stderr and "no issues" in result.stdout


def test_the_makefile_runs_the_deploy_check_in_the_ci_target():
    makefile = (BASE_DIR / "Makefile").read_text()
    test_target = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "manage.py check --deploy --fail-level WARNING" in test_target
    assert "DEBUG=0" in makefile and "token_urlsafe" in makefile


def test_security_log_file_gets_the_json_lines(tmp_path):
    log_file = tmp_path / "security.log"
    code = ("import django; django.setup(); from guidelines.security import security_event; "
            "security_event('probe', outcome='success', note='line one\\nline two')")
    result = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
                            env=production_env(tmp_path, SECURITY_LOG_FILE=str(log_file)))
    assert result.returncode == 0, result.stderr
    (line,) = log_file.read_text().splitlines()
    entry = json.loads(line)
    assert entry["event"] == "probe" and entry["details"] == {"note": "line one\nline two"}
    assert line in result.stderr  # and the same line on stderr


# --- uploads are refused by their announced size, before the body is read ------------------------------


class UnreadableBody:
    """wsgi.input that fails the test if anything reads the body."""

    def read(self, *args):
        raise AssertionError("the request body was read")

    readline = read


def post_claiming(client, url, length, **extra):
    return client.post(url, data="", content_type="multipart/form-data; boundary=xyz",
                       CONTENT_LENGTH=str(length), **{"wsgi.input": UnreadableBody()}, **extra)


def test_upload_limits_default_to_32_and_50_mb_and_files_stream_to_disk(settings):
    assert settings.IMPORT_MAX_BYTES == 32 * MB and settings.VERIFY_MAX_BYTES == 50 * MB
    assert settings.UPLOAD_LIMITS == {"guidelines:hr_import": 32 * MB, "guidelines:report_verify": 50 * MB,
                                       "guidelines:public_verify": 50 * MB}
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE == settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 2_621_440


def test_an_oversized_import_is_refused_with_413_before_the_body_is_read(client_as, hilde):
    response = post_claiming(client_as(hilde), reverse("guidelines:hr_import"), 32 * MB + 1)
    assert response.status_code == 413
    page = response.content.decode()
    assert "at most 32.0\xa0MB" in page and "Nothing was uploaded" in page
    assert response["Cache-Control"] == "no-store, private"
    assert not ImportRun.objects.exists()


def test_an_oversized_pdf_to_verify_is_refused_with_413(client_as, arjen):
    response = post_claiming(client_as(arjen), reverse("guidelines:report_verify"), 200 * MB)
    assert response.status_code == 413 and "at most 50.0\xa0MB" in response.content.decode()


def test_a_chunked_upload_without_length_gets_411(client_as, hilde):
    response = post_claiming(client_as(hilde), reverse("guidelines:hr_import"), "", HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411


@pytest.mark.parametrize("method, path, length, status", [
    ("post", "/hr/employees/import/", 1000, 200),  # exactly the limit
    ("post", "/hr/employees/import/", 1001, 413),
    ("post", "/reports/verify/", 2001, 413),
    ("post", "/reports/verify/", 2000, 200),
    ("post", "/hr/employees/import/", "-5", 400),
    ("post", "/hr/employees/import/", "many", 400),
    ("post", "/hr/employees/import/", None, 200),  # no body at all: the view says what is missing
    ("get", "/hr/employees/import/", 10**9, 200),  # the limit is for bodies that will be read
    ("post", "/hr/guidelines/new/", 10**9, 200),  # other pages: Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    ("post", "/no/such/page/", 10**9, 200),
])
def test_the_upload_limit_boundaries(settings, method, path, length, status):
    settings.UPLOAD_LIMITS = {"guidelines:hr_import": 1000, "guidelines:report_verify": 2000}
    middleware = UploadLimitMiddleware(lambda request: HttpResponse("passed on"))
    request = getattr(RequestFactory(), method)(path)
    request.META.pop("CONTENT_LENGTH", None)
    if length is not None:
        request.META["CONTENT_LENGTH"] = str(length)
    request.user = AnonymousUser()
    response = middleware(request)
    assert response.status_code == status, response.content[:500]


# --- personal data is never cached ---------------------------------------------------------------------


@pytest.fixture
def evidence(alice, arjen, version_1, web_meta, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    ack, _ = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    report = jobs.certificate(acknowledgement=ack, user=arjen, language="en")
    return {"ack": ack, "report": report, "slug": version_1.guideline.slug}


def assert_private(response, url):
    cache_control = {part.strip() for part in response.get("Cache-Control", "").split(",")}
    assert {"no-store", "private"} <= cache_control, (url, response.status_code, response.get("Cache-Control"))


def test_personal_pages_and_downloads_are_never_stored(client_as, client, evidence, alice, arjen):
    employee = client_as(alice)
    for url in (reverse("guidelines:home"), reverse("guidelines:history"),
                reverse("guidelines:receipt", args=[evidence["ack"].pk]),
                reverse("guidelines:report_certificate", args=[evidence["ack"].pk])):
        response = employee.get(url)
        assert response.status_code == 200, url
        assert_private(response, url)
    employee.logout()

    auditor = client_as(arjen)
    for url in (reverse("guidelines:dashboard_overview"),
                reverse("guidelines:dashboard_guideline", args=[evidence["slug"]]),
                reverse("guidelines:dashboard_export", args=[evidence["slug"]]),
                reverse("guidelines:report_download", args=[evidence["report"].verification_code]),
                reverse("guidelines:team"),  # a 403 page is personal too
                "/guidelines/no-such-guideline/"):  # and a 404 page
        response = auditor.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
        assert_private(response, url)


def test_sign_in_and_account_pages_are_never_stored_even_anonymously(client, hilde):
    for url in (reverse("account_login"), reverse("account_reset_password"), reverse("admin:login")):
        assert_private(client.get(url), url)
    sign_in(client, hilde)
    assert_private(client.get(reverse("admin:index")), "admin")


def test_anonymous_public_responses_keep_their_caching(client, db):
    assert "no-store" not in client.get("/healthz/").get("Cache-Control", "")
