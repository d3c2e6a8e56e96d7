"""Settings for the guidelines intranet module.

One file. Every deploy knob is an environment variable with a safe development default;
a malformed value stops start-up with a message that names the variable.
"""

import os
import re
import zoneinfo
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from cryptography.fernet import Fernet
from django.core.checks.security.base import _check_secret_key as _secret_key_is_strong
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def envbool(name, default):
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no), got {value!r}.")


def envint(name, default):
    value = os.environ.get(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}.") from None


def envchoice(name, default, choices):
    value = os.environ.get(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def envlist(name, default):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envdatabase(name, default):
    url = os.environ.get(name, default)
    try:
        config = dj_database_url.parse(url, conn_max_age=envint("DATABASE_CONN_MAX_AGE", "60"))
    except Exception as exc:  # dj-database-url raises several types for bad input
        raise ImproperlyConfigured(f"{name} is not a valid database URL ({exc}).") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE takes the write lock at BEGIN, so concurrent acknowledgements queue
        # instead of failing with "database is locked" half-way through a transaction.
        config["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
        config["CONN_MAX_AGE"] = 0
    elif envbool("DATABASE_PREPARED_STATEMENTS", "1"):
        # PostgreSQL binds the parameters itself, and the queries the employee pages make on every
        # request (guidelines/prepared.py) are prepared there, so they are not planned again each
        # time. Off behind a pooler in transaction mode that cannot keep prepared statements.
        config["OPTIONS"] = {"server_side_binding": True}
    return config


# DEBUG is off unless asked for: `make run`, bin/run-dev and the tests (tests/environment.py) set
# DEBUG=1. Without it the instance is production and refuses to start on an unsafe configuration.
DEBUG = envbool("DEBUG", "0")
DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY if DEBUG else "")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
if not DEBUG:
    # Django's own rule (the check --deploy warning security.W009), enforced at start-up, and never
    # the development key.
    if not _secret_key_is_strong(SECRET_KEY) or SECRET_KEY.startswith("dev-only"):
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a random value of 50+ characters (at least 5 different ones, not "
            "starting with 'django-insecure-' or 'dev-only') when DEBUG=0; e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(64))'."
        )
    if any("*" in host for host in ALLOWED_HOSTS):
        raise ImproperlyConfigured(
            f"ALLOWED_HOSTS must name the site's host names when DEBUG=0, not a wildcard; got {ALLOWED_HOSTS!r}."
        )
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = os.environ.get("SITE_URL", "http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    # History of the organisation (guidelines.models: EmployeeHistory and the like), PostgreSQL only.
    "pgtrigger",
    "pghistory",
    # The REST API (guidelines/api/) and its OpenAPI schema; the sidecar serves Swagger UI from our own
    # static files (no CDN).
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guidelines",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise: every response except a static file is `Cache-Control: no-store` when personal.
    "guidelines.middleware.PrivateCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Logs every 403 and 429 (with the user, who is known from here on).
    "guidelines.middleware.SecurityLogMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A session without a request for SESSION_IDLE_MINUTES is signed out (it can say so: after messages).
    "guidelines.middleware.IdleTimeoutMiddleware",
    "guidelines.middleware.EmployeeMiddleware",
    # HR, approvers, auditors and staff signed in with a password pass a second factor first.
    "guidelines.middleware.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Refuses an oversized upload before anything reads the body (CSRF reads it in process_view);
    # last, so that its 413 page still passes through the header middleware above.
    "guidelines.middleware.UploadLimitMiddleware",
]

ROOT_URLCONF = "intranet.urls"
WSGI_APPLICATION = "intranet.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": envdatabase("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "guidelines:home"

# django-allauth: e-mail + password, no public sign-up (accounts come from the HR import).
ACCOUNT_ADAPTER = "guidelines.accounts.IntranetAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
SOCIALACCOUNT_ADAPTER = "guidelines.accounts.IntranetSocialAccountAdapter"
# E-mail addresses come from HR only: intranet/urls.py answers 404 on allauth's e-mail management
# pages, and this form refuses to add one should anything still reach it.
ACCOUNT_FORMS = {"add_email": "guidelines.accounts.NoAddEmailForm"}
# A password reset for an address without an active account sends nothing (leavers get no mail).
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
# The one sign-in (the admin's too, see intranet/urls.py) is rate limited by allauth in the cache:
# per client address and per e-mail address. A per-process cache counts per process; production
# sets REDIS_URL so that every web process shares the counts.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "reauthenticate": "10/m/user",
    "signup": "20/m/ip",
}
# Signing in with the company's identity provider (OpenID Connect), configured by environment:
# OIDC_PROVIDERS lists provider ids in the order of their buttons; each id has its own variables
# OIDC_<ID>_ISSUER, _CLIENT_ID, _CLIENT_SECRET, _NAME (the button), _SCOPES, _EMAIL_CLAIM and
# _DOMAINS (allowed e-mail domains). README, "Signing in with Microsoft Entra ID or Keycloak".
OIDC_PROVIDER_ID = re.compile(r"^[a-z][a-z0-9]{0,29}$")


def envoidc(names):
    apps = []
    for provider_id in names:
        if not OIDC_PROVIDER_ID.match(provider_id):
            raise ImproperlyConfigured(
                f"OIDC_PROVIDERS: {provider_id!r} is not a provider id (lower-case letters and digits, "
                "starting with a letter, at most 30).")
        prefix = f"OIDC_{provider_id.upper()}_"
        values = {key: os.environ.get(prefix + key, "").strip() for key in
                  ("ISSUER", "CLIENT_ID", "CLIENT_SECRET", "NAME", "SCOPES", "EMAIL_CLAIM", "DOMAINS", "MFA_ACR")}
        for required in ("ISSUER", "CLIENT_ID", "CLIENT_SECRET"):
            if not values[required]:
                raise ImproperlyConfigured(f"{prefix}{required} must be set for the provider {provider_id!r}.")
        issuer = urlsplit(values["ISSUER"])
        loopback = issuer.hostname in ("127.0.0.1", "localhost", "::1")
        if issuer.scheme != "https" and not (issuer.scheme == "http" and (DEBUG or loopback)):
            raise ImproperlyConfigured(f"{prefix}ISSUER must be an https:// URL, got {values['ISSUER']!r}.")
        scopes = values["SCOPES"].split() or ["openid", "email", "profile"]
        if "openid" not in scopes:
            raise ImproperlyConfigured(f"{prefix}SCOPES must include openid, got {values['SCOPES']!r}.")
        apps.append({
            "provider_id": provider_id,
            "name": values["NAME"] or provider_id,
            "client_id": values["CLIENT_ID"],
            "secret": values["CLIENT_SECRET"],
            "settings": {
                "server_url": values["ISSUER"].rstrip("/"),
                "scope": scopes,
                "oauth_pkce_enabled": True,
                # Read by guidelines.accounts.IntranetSocialAccountAdapter.
                "email_claim": values["EMAIL_CLAIM"] or "email",
                "allowed_domains": [domain.lower().lstrip("@")
                                    for domain in values["DOMAINS"].replace(",", " ").split()],
                # Read by guidelines.accounts.provider_vouches_for_second_factor: the acr values that
                # mean a second factor, or the statement that the provider always asks for one.
                "mfa_acr": values["MFA_ACR"].replace(",", " ").split(),
                "mfa_enforced": envbool(prefix + "MFA_ENFORCED", "0"),
            },
        })
    return apps


def provider_origins(apps):
    """The origins of the providers' issuers: the sign-in form's POST is answered by a redirect there,
    which the browser allows only if the page's CSP form-action lists it."""
    return sorted({"{0.scheme}://{0.netloc}".format(urlsplit(app["settings"]["server_url"])) for app in apps})


OIDC_APPS = envoidc(envlist("OIDC_PROVIDERS", ""))
SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": OIDC_APPS}}
# The sign-in with a provider starts with a POST from the sign-in page (a GET link could be
# triggered by another site); the matching of a person to HR's record is the adapter's.
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
# A second factor (allauth.mfa: an authenticator app's codes, and recovery codes) for privileged
# roles signed in with a password: guidelines.middleware.SecondFactorMiddleware requires it.
MFA_ADAPTER = "guidelines.accounts.IntranetMFAAdapter"
# Security keys and passkeys (WebAuthn) as a second factor next to the app; not (yet) as a sign-in of
# their own. The browser allows them on https:// and on http://localhost, not on an IP address.
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_FORMS = {"activate_totp": "guidelines.forms.ActivateAuthenticatorForm",
             "add_webauthn": "guidelines.forms.AddSecurityKeyForm",
             "authenticate_webauthn": "guidelines.forms.SecurityKeySignInForm",
             "reauthenticate_webauthn": "guidelines.forms.SecurityKeyConfirmationForm"}
MFA_TOTP_ISSUER = os.environ.get("MFA_TOTP_ISSUER", "Guidelines intranet")
# Keys (Fernet, comma-separated, the first encrypts) for the authenticator apps' secrets and the
# recovery codes' seeds at rest (guidelines.accounts.IntranetMFAAdapter). Without them a key derived
# from SECRET_KEY is used; list the old key after a new one to rotate.
MFA_ENCRYPTION_KEYS = envlist("MFA_ENCRYPTION_KEYS", "")
for _key in MFA_ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured("MFA_ENCRYPTION_KEYS: each key is 32 url-safe base64-encoded bytes, as "
                                   "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key()"
                                   ".decode())'` prints.") from None
MFA_TOTP_TOLERANCE = 1  # the code of the previous or next 30 seconds too (clocks drift); each code works once
# Publishing, approving, importing employees and granting exemptions ask to confirm a sign-in older than
# this (guidelines.accounts.fresh_sign_in_required).
REAUTHENTICATION_MINUTES = envint("REAUTHENTICATION_MINUTES", "15")
if REAUTHENTICATION_MINUTES < 1:
    raise ImproperlyConfigured("REAUTHENTICATION_MINUTES must be 1 or more.")
# Sign-in with a password: on by default (the embedded default and the demo have no provider); off,
# the sign-in page offers only the providers and there is no password reset.
PASSWORD_LOGIN = envbool("PASSWORD_LOGIN", "1")
if not PASSWORD_LOGIN and not OIDC_APPS:
    raise ImproperlyConfigured("PASSWORD_LOGIN=0 needs at least one provider in OIDC_PROVIDERS.")

# Behind N reverse proxies, the client address is the N-th entry from the right of X-Forwarded-For
# (used by the rate limits and the security log); 0 (direct) uses the connection's address.
ALLAUTH_TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", "0")
if ALLAUTH_TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")

LANGUAGE_CODE = "nl"
LANGUAGES = [("nl", "Nederlands"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "guidelines" / "locale"]
FORMAT_MODULE_PATH = ["intranet.formats"]  # short dates per language (intranet/formats/nl/formats.py)
USE_I18N = True
USE_TZ = True
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Amsterdam")
if TIME_ZONE not in zoneinfo.available_timezones():
    raise ImproperlyConfigured(f"TIME_ZONE must be an IANA time zone such as Europe/Amsterdam, got {TIME_ZONE!r}.")

REMINDER_TIME = os.environ.get("REMINDER_TIME", "08:30")
if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", REMINDER_TIME):
    raise ImproperlyConfigured(f"REMINDER_TIME must be HH:MM (24-hour local time), got {REMINDER_TIME!r}.")


def envcadence(name, default):
    """'3,7,+7': remind on day 3 and day 7 after the due period starts, then every 7 days."""
    value = os.environ.get(name, default)
    match = re.fullmatch(r"\s*(\d+(?:\s*,\s*\d+)*)\s*(?:,\s*\+(\d+)\s*)?", value)
    days = [int(day) for day in match.group(1).split(",")] if match else []
    if not match or days != sorted(set(days)) or days[0] < 1 or (match.group(2) and int(match.group(2)) < 1):
        raise ImproperlyConfigured(
            f"{name} must be increasing days with an optional repeat, e.g. 3,7,+7; got {value!r}."
        )
    return days, int(match.group(2)) if match.group(2) else None


def envdates(name, default):
    try:
        return frozenset(date.fromisoformat(item) for item in envlist(name, default))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be ISO dates separated by commas, got {os.environ[name]!r}.") from None


# Reminders (see guidelines/notifications/): the cadence counts days from the start of the due period.
REMINDER_DAYS, REMINDER_REPEAT_DAYS = envcadence("REMINDER_CADENCE", "3,7,+7")
REMINDER_HOLIDAYS = envdates("REMINDER_HOLIDAYS", "")
REMINDER_ESCALATION_REPEAT_DAYS = envint("REMINDER_ESCALATION_REPEAT_DAYS", "7")
REMINDER_BATCH_SIZE = envint("REMINDER_BATCH_SIZE", "1000")
# SMTP retries: 1, 2, 4, … × the base, capped; every delay stays below the broker's visibility timeout.
EMAIL_RETRY_BACKOFF = envint("EMAIL_RETRY_BACKOFF", "30")
EMAIL_RETRY_BACKOFF_MAX = envint("EMAIL_RETRY_BACKOFF_MAX", "600")
EMAIL_MAX_RETRIES = envint("EMAIL_MAX_RETRIES", "6")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# E-mail: the classic EMAIL_* variables (a fixed interface) feed Django 6.1's MAILERS setting.
EMAIL_BACKEND_PATH = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
_smtp_options = {
    "host": os.environ.get("EMAIL_HOST", "localhost"),
    "port": envint("EMAIL_PORT", "25"),
    "username": os.environ.get("EMAIL_HOST_USER", ""),
    "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
    "use_tls": envbool("EMAIL_USE_TLS", "0"),
    "timeout": envint("EMAIL_TIMEOUT", "30"),
}
if EMAIL_BACKEND_PATH.endswith("filebased.EmailBackend"):
    _mail_options = {"file_path": os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))}
elif EMAIL_BACKEND_PATH.endswith("smtp.EmailBackend"):
    _mail_options = _smtp_options
else:
    _mail_options = {}
MAILERS = {"default": {"BACKEND": EMAIL_BACKEND_PATH, "OPTIONS": _mail_options}}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Guidelines <guidelines@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Login rate limits need a real cache; a per-process one is enough for one dev machine.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Released versions' texts and the diffs between them never change (guidelines/content.py): every
# process keeps the ones it has read, with nothing to invalidate and no network round trip.
CACHES["content"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "guidelines-content",
                     "OPTIONS": {"MAX_ENTRIES": 500}}

# Celery. The embedded default needs no server: kombu's filesystem transport in var/.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if not re.match(r"^(filesystem|redis|rediss|memory)://", CELERY_BROKER_URL):
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL must start with filesystem://, redis:// or rediss://, got {CELERY_BROKER_URL!r}."
    )
CELERY_VISIBILITY_TIMEOUT = envint("CELERY_VISIBILITY_TIMEOUT", "3600")
if EMAIL_RETRY_BACKOFF_MAX >= CELERY_VISIBILITY_TIMEOUT:
    # A countdown beyond the visibility timeout makes Redis redeliver the task again and again.
    raise ImproperlyConfigured("EMAIL_RETRY_BACKOFF_MAX must be below CELERY_VISIBILITY_TIMEOUT.")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # How often a worker looks for messages a dead worker left unacknowledged: kombu sweeps every
    # interval × throttle seconds (100 s by default); keep that near a tenth of the timeout.
    "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 10)),
    "unacked_restore_throttle": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 100)),
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# E-mail has its own queue: a slow SMTP relay must not hold up planning or verification. A prefix
# lets several installations (or test runs) share one Redis.
CELERY_QUEUE_PREFIX = os.environ.get("CELERY_QUEUE_PREFIX", "")
CELERY_TASK_DEFAULT_QUEUE = f"{CELERY_QUEUE_PREFIX}celery"
CELERY_TASK_ROUTES = {
    "guidelines.tasks.send_*": {"queue": f"{CELERY_QUEUE_PREFIX}email"},
    # Webhooks too: a subscriber that answers slowly must not hold up e-mail or planning.
    "guidelines.tasks.deliver_webhook": {"queue": f"{CELERY_QUEUE_PREFIX}webhooks"},
}
_reminder_hour, _reminder_minute = (int(part) for part in REMINDER_TIME.split(":"))
CELERY_BEAT_SCHEDULE = {
    "plan-reminders-daily": {
        "task": "guidelines.tasks.plan_reminders",
        "schedule": crontab(hour=_reminder_hour, minute=_reminder_minute),
    },
    "verify-evidence-chain-nightly": {
        "task": "guidelines.tasks.verify_evidence_chain",
        "schedule": crontab(hour=2, minute=15),
    },
    "evidence-checkpoint-daily": {
        "task": "guidelines.tasks.make_checkpoint",
        "schedule": crontab(hour=2, minute=30),
    },
    # One version.overdue webhook event per current version with overdue employees, before the
    # working day starts (the reminders follow at REMINDER_TIME).
    "webhooks-overdue-daily": {
        "task": "guidelines.tasks.announce_overdue_versions",
        "schedule": crontab(hour=6, minute=0),
    },
    # Webhook deliveries whose task never reached a worker (the broker was down at the commit).
    "webhooks-requeue-stalled": {
        "task": "guidelines.tasks.requeue_stalled_webhooks",
        "schedule": crontab(minute="*/10"),
    },
}

# The daily checkpoint of the evidence chain (guidelines.checkpoints): an RFC 3161 time-stamping
# authority (its URL, optional basic-auth credentials, and the PEM file of the certificates its
# tokens must chain to) and/or a folder outside the database for a copy of each checkpoint.
TIMESTAMP_URL = os.environ.get("TIMESTAMP_URL", "").strip()
TIMESTAMP_USERNAME = os.environ.get("TIMESTAMP_USERNAME", "")
TIMESTAMP_PASSWORD = os.environ.get("TIMESTAMP_PASSWORD", "")
TIMESTAMP_CA_CERTS = os.environ.get("TIMESTAMP_CA_CERTS", "").strip()
TIMESTAMP_TIMEOUT = envint("TIMESTAMP_TIMEOUT", "10")
if TIMESTAMP_URL and not TIMESTAMP_CA_CERTS:
    raise ImproperlyConfigured("TIMESTAMP_URL needs TIMESTAMP_CA_CERTS: the certificates (PEM) its timestamps are "
                               "checked against; without them a timestamp proves nothing.")
if TIMESTAMP_CA_CERTS and not Path(TIMESTAMP_CA_CERTS).is_file():
    raise ImproperlyConfigured(f"TIMESTAMP_CA_CERTS: there is no file {TIMESTAMP_CA_CERTS!r}.")
CHECKPOINT_DIR = os.environ.get("CHECKPOINT_DIR", "").strip()

# Generated reports (PDF) are kept in the default file storage; web and workers must share it.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Auditor packs with more employee rows than this are generated by a worker, with a progress page.
REPORT_BACKGROUND_ROWS = envint("REPORT_BACKGROUND_ROWS", "2000")
# Rows on one page of a report's table: fixed by the print layout (templates/reports/print.css), not
# configurable; page counts are known before rendering because of it (guidelines/reports/rendering.py).
REPORT_ROWS_PER_PAGE = 40
# Rows per table chunk (one worker task each): whole pages.
REPORT_CHUNK_ROWS = envint("REPORT_CHUNK_ROWS", "4000")
if REPORT_CHUNK_ROWS < REPORT_ROWS_PER_PAGE or REPORT_CHUNK_ROWS % REPORT_ROWS_PER_PAGE:
    raise ImproperlyConfigured(
        f"REPORT_CHUNK_ROWS must be a multiple of {REPORT_ROWS_PER_PAGE} (the rows on a table page).")

# Optional PAdES signing of every report: PEM files of the organisation's certificate and key.
REPORT_SIGNING_CERT = os.environ.get("REPORT_SIGNING_CERT", "")
REPORT_SIGNING_KEY = os.environ.get("REPORT_SIGNING_KEY", "")
REPORT_SIGNING_KEY_PASSPHRASE = os.environ.get("REPORT_SIGNING_KEY_PASSPHRASE", "")
if bool(REPORT_SIGNING_CERT) != bool(REPORT_SIGNING_KEY):
    raise ImproperlyConfigured("Set both REPORT_SIGNING_CERT and REPORT_SIGNING_KEY, or neither.")
for _name in ("REPORT_SIGNING_CERT", "REPORT_SIGNING_KEY"):
    if globals()[_name] and not Path(globals()[_name]).is_file():
        raise ImproperlyConfigured(f"{_name} must name a readable PEM file, got {globals()[_name]!r}.")

# Evidence and process knobs (documented in README).
GUIDELINES_FOUR_EYES = envbool("GUIDELINES_FOUR_EYES", "1")
EVIDENCE_IP_ADDRESS = envchoice("EVIDENCE_IP_ADDRESS", "full", ["full", "truncated", "none"])
EVIDENCE_USER_AGENT = envbool("EVIDENCE_USER_AGENT", "1")

# Security. Production sets DEBUG=0 and serves HTTPS; `manage.py check --deploy` stays clean.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", str(8 * 3600))
SESSION_IDLE_MINUTES = envint("SESSION_IDLE_MINUTES", "30")
if SESSION_IDLE_MINUTES < 1 or SESSION_IDLE_MINUTES * 60 > SESSION_COOKIE_AGE:
    raise ImproperlyConfigured("SESSION_IDLE_MINUTES must be at least 1 and within SESSION_COOKIE_AGE.")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "style-src": ["'self'"],
    "script-src": ["'self'"],
    "form-action": ["'self'", *provider_origins(OIDC_APPS)],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'self'"],
}
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "1")
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "31536000")
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "1")
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "1")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Uploads: the request body is refused with 413 before it is read when Content-Length exceeds the
# limit of the page (guidelines.middleware.UploadLimitMiddleware). Above 2.5 MB an uploaded file
# streams to a temporary file instead of memory; other form data may not exceed 2.5 MB (Django's
# defaults, explicit here).
IMPORT_MAX_BYTES = envint("IMPORT_MAX_BYTES", str(32 * 1024 * 1024))
VERIFY_MAX_BYTES = envint("VERIFY_MAX_BYTES", str(50 * 1024 * 1024))
for _name in ("IMPORT_MAX_BYTES", "VERIFY_MAX_BYTES"):
    if globals()[_name] < 1024:
        raise ImproperlyConfigured(f"{_name} must be a number of bytes of at least 1024, got {globals()[_name]}.")
UPLOAD_LIMITS = {"guidelines:hr_import": IMPORT_MAX_BYTES, "guidelines:report_verify": VERIFY_MAX_BYTES,
                 "guidelines:public_verify": VERIFY_MAX_BYTES}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Reports, per user: (requests, window in seconds), from "N/SECONDS". "generate": auditor packs made
# (each verifies the whole evidence chain and renders every employee row). "download": certificates
# (made on the first request, served from then on) and downloads of finished reports.
def envrate(name, default):
    value = os.environ.get(name, default)
    limit, _, window = value.partition("/")
    if not (limit.strip().isdigit() and window.strip().isdigit() and int(limit) > 0 and int(window) > 0):
        raise ImproperlyConfigured(f"{name} must be REQUESTS/SECONDS such as 10/3600, got {value!r}.")
    return int(limit), int(window)


# Questions, follow-ups, objections and exception requests an employee may send (questions.py), per
# window in seconds: each e-mails the guideline's owner, so nobody can flood the owner's inbox.
QUESTION_RATE = envrate("QUESTION_RATE", "5/3600")
# The public verification page (no account), per client address.
PUBLIC_VERIFY_RATE = envrate("PUBLIC_VERIFY_RATE", "30/3600")
# The API (guidelines/api/): requests per token, and auditor packs requested per token.
API_RATE = envrate("API_RATE", "600/60")
API_REPORT_RATE = envrate("API_REPORT_RATE", "10/3600")
# SCIM provisioning (guidelines/scim/): requests per token, a bucket of its own. Entra ID's first cycle
# sends a few requests per employee; it waits and retries on 429.
SCIM_RATE = envrate("SCIM_RATE", "1200/60")
# The longest an API token may live; an administrator picks its expiry within this.
API_TOKEN_MAX_DAYS = envint("API_TOKEN_MAX_DAYS", "365")

# Signed webhooks (guidelines/webhooks.py). A delivery that fails is retried WEBHOOK_MAX_RETRIES
# times, WEBHOOK_RETRY_BACKOFF seconds doubling up to WEBHOOK_RETRY_BACKOFF_MAX; a subscriber whose
# last WEBHOOK_DISABLE_AFTER deliveries all failed for good is disabled. WEBHOOK_ALLOW_PRIVATE lets
# subscribers sit on private, loopback or link-local addresses: off in production, so an HR account
# cannot make the workers call into the internal network (SSRF); on with DEBUG (tests, `make run`).
WEBHOOK_TIMEOUT = envint("WEBHOOK_TIMEOUT", "5")
WEBHOOK_MAX_RETRIES = envint("WEBHOOK_MAX_RETRIES", "8")
WEBHOOK_RETRY_BACKOFF = envint("WEBHOOK_RETRY_BACKOFF", "30")
# By default half the visibility timeout, at most 30 minutes (a longer countdown would be redelivered early).
WEBHOOK_RETRY_BACKOFF_MAX = envint("WEBHOOK_RETRY_BACKOFF_MAX", str(min(1800, CELERY_VISIBILITY_TIMEOUT // 2)))
WEBHOOK_DISABLE_AFTER = envint("WEBHOOK_DISABLE_AFTER", "5")
# A pending delivery without an attempt for WEBHOOK_RETRY_BACKOFF_MAX + WEBHOOK_TIMEOUT + this many
# seconds is queued again by the sweep: its task was lost.
WEBHOOK_STALLED_AFTER = envint("WEBHOOK_STALLED_AFTER", "600")
WEBHOOK_ALLOW_PRIVATE = envbool("WEBHOOK_ALLOW_PRIVATE", "1" if DEBUG else "0")
if WEBHOOK_RETRY_BACKOFF_MAX >= CELERY_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured("WEBHOOK_RETRY_BACKOFF_MAX must be below CELERY_VISIBILITY_TIMEOUT.")
REST_FRAMEWORK = {
    # Tokens only: no session, so no CSRF question and no page's second factor to skip.
    "DEFAULT_AUTHENTICATION_CLASSES": ["guidelines.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["guidelines.api.authentication.TokenScope"],
    # JSON only: the browsable API would need a session and inline scripts.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "guidelines.api.errors.handle",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Guideline acknowledgements API",
    "DESCRIPTION": "Read guidelines, versions, status and evidence; request auditor packs. Every request "
                   "carries `Authorization: Bearer <token>`; a token's scopes and its account's roles limit "
                   "what it sees, as on the pages.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
REPORT_RATE_LIMITS = {"generate": envrate("REPORT_RATE_GENERATE", "10/3600"),
                      "download": envrate("REPORT_RATE_DOWNLOAD", "60/600")}

# Logging. The `security` logger (guidelines/security.py) writes one JSON object per line to its own
# handlers: stderr and, with SECURITY_LOG_FILE, that file (reopened when logrotate moves it).
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
SECURITY_LOG_FILE = os.environ.get("SECURITY_LOG_FILE", "")
_security_handlers = {"security_stderr": {"class": "logging.StreamHandler", "formatter": "message"}}
if SECURITY_LOG_FILE:
    if not Path(SECURITY_LOG_FILE).parent.is_dir():
        raise ImproperlyConfigured(f"SECURITY_LOG_FILE must be in an existing folder, got {SECURITY_LOG_FILE!r}.")
    _security_handlers["security_file"] = {
        "class": "logging.handlers.WatchedFileHandler", "filename": SECURITY_LOG_FILE, "formatter": "message",
        "encoding": "utf-8",
    }
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"message": {"format": "%(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}, **_security_handlers},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "security": {"handlers": list(_security_handlers), "level": "INFO", "propagate": False},
    },
}
