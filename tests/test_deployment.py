"""The container deployment (Dockerfile, docker-compose.yml, .dockerignore) against the settings.

Docker itself is not run here: the files are parsed, and what they would make the containers do
(import the settings, run `check --deploy`, collect static files, answer the health check) is run
in fresh subprocesses with exactly the environment the files give. No test uses the database.
"""

import fnmatch
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parent.parent
SETTINGS_SOURCE = (BASE_DIR / "intranet" / "settings.py").read_text()
COMPOSE = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("migrate", "web", "worker", "beat")

# Names settings.py reads: os.environ.get("X"), os.environ["X"], os.getenv("X") and its env*("X", ...) helpers.
READ_BY_SETTINGS = set(
    re.findall(r"""(?:os\.environ\.get\(|os\.environ\[|os\.getenv\(|\benv\w*\()\s*["']([A-Z][A-Z0-9_]*)["']""",
               SETTINGS_SOURCE)
)
INTERFACE_NAMES = (
    "SECRET_KEY DEBUG ALLOWED_HOSTS DATABASE_URL CELERY_BROKER_URL EMAIL_BACKEND EMAIL_FILE_PATH EMAIL_HOST "
    "EMAIL_PORT EMAIL_HOST_USER EMAIL_HOST_PASSWORD EMAIL_USE_TLS DEFAULT_FROM_EMAIL TIME_ZONE REMINDER_TIME"
).split()


# --- helpers -------------------------------------------------------------------------------------------


def service_environment(name):
    environment = SERVICES[name].get("environment") or {}
    if isinstance(environment, list):  # the "KEY=value" list form
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def production_environment(**overrides):
    """The compose web environment as the container sees it, with a real random SECRET_KEY.

    Starts from an empty environment, so nothing of the test run (its DATABASE_URL, say) leaks in.
    """
    compose_env = service_environment("web")
    assert compose_env["SECRET_KEY"].startswith("${SECRET_KEY:?"), "SECRET_KEY must come from the host, required"
    compose_env["SECRET_KEY"] = secrets.token_hex(32)  # 64 characters
    unresolved = {key: value for key, value in compose_env.items() if "$" in value}
    assert not unresolved, f"values that need compose interpolation: {unresolved}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "intranet.settings",
        **compose_env,
    }
    env.update(overrides)
    return env


def run_python(code, env, timeout=120):
    return subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def run_manage(args, env, cwd=BASE_DIR, timeout=180):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def dockerfile_instructions():
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for line in (BASE_DIR / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):  # comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, arguments = current.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    assert not current, "Dockerfile ends inside a continued line"
    return instructions


def dockerfile(keyword):
    return [arguments for instruction, arguments in dockerfile_instructions() if instruction == keyword]


def collectstatic_build_environment():
    """The NAME=value pairs that the Dockerfile puts in front of `python manage.py collectstatic`."""
    (run,) = [arguments for arguments in dockerfile("RUN") if "collectstatic" in arguments]
    words = shlex.split(run.split("python manage.py collectstatic")[0])
    return dict(word.split("=", 1) for word in words if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", word))


def database_url(name):
    return urllib.parse.urlsplit(service_environment(name)["DATABASE_URL"])


def migrate_steps():
    """The migrate service's command as a list of commands, one per `&&`-joined step (or the one command)."""
    command = SERVICES["migrate"]["command"]
    if command[:2] == ["sh", "-c"]:
        assert len(command) == 3, command
        return [shlex.split(step.strip().removeprefix("exec ")) for step in command[2].split("&&")]
    return [command]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The e-mail values are read from the default mailer that Django builds, so they hold whether settings.py
# uses the EMAIL_* settings or Django 6.1's MAILERS (creating the backend opens no connection).
SETTINGS_AS_JSON = """
import json
from django.conf import settings
from django.core.mail import mailers
db = settings.DATABASES["default"]
mailer = mailers.default
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "DATABASE_ENGINE": db["ENGINE"], "DATABASE_HOST": db["HOST"], "DATABASE_PORT": db["PORT"],
    "DATABASE_NAME": db["NAME"], "DATABASE_USER": db["USER"],
    "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    "CACHE_BACKEND": settings.CACHES["default"]["BACKEND"],
    "CACHE_LOCATION": settings.CACHES["default"].get("LOCATION"),
    "EMAIL_BACKEND": f"{type(mailer).__module__}.{type(mailer).__name__}",
    "EMAIL_HOST": getattr(mailer, "host", None), "EMAIL_PORT": getattr(mailer, "port", None),
    "EMAIL_USE_TLS": getattr(mailer, "use_tls", None),
    "DEFAULT_FROM_EMAIL": settings.DEFAULT_FROM_EMAIL,
    "TIME_ZONE": settings.TIME_ZONE, "REMINDER_TIME": settings.REMINDER_TIME,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "SECURE_SSL_REDIRECT": settings.SECURE_SSL_REDIRECT,
    "STATICFILES_BACKEND": settings.STORAGES["staticfiles"]["BACKEND"],
}))
"""


# --- the environment interface ---------------------------------------------------------------------------


def test_every_variable_the_app_services_get_from_compose_is_read_by_settings():
    for name in APP_SERVICES:
        unread = set(service_environment(name)) - READ_BY_SETTINGS
        assert not unread, f"{name} sets variables that intranet/settings.py never reads: {sorted(unread)}"
    unread = set(COMPOSE["x-app-environment"]) - READ_BY_SETTINGS
    assert not unread, f"x-app-environment names variables settings.py never reads: {sorted(unread)}"


def test_settings_read_every_documented_interface_variable():
    missing = [name for name in INTERFACE_NAMES if name not in READ_BY_SETTINGS]
    assert not missing, f"intranet/settings.py does not read {missing}"


def test_settings_from_the_compose_environment_point_at_the_compose_services():
    result = run_python(SETTINGS_AS_JSON, production_environment())
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])

    assert values["DEBUG"] is False
    assert values["DATABASE_ENGINE"] == "django.db.backends.postgresql"
    assert values["DATABASE_HOST"] == "postgres"
    # web (like worker and beat) logs in as the application role, not as the owner of the tables.
    assert (values["DATABASE_PORT"], values["DATABASE_NAME"], values["DATABASE_USER"]) == (5432, "guidelines",
                                                                                            "guidelines_app")
    assert values["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert values["CACHE_BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert values["CACHE_LOCATION"] == "redis://redis:6379/1"
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (values["EMAIL_HOST"], values["EMAIL_PORT"], values["EMAIL_USE_TLS"]) == ("mailcatcher", 1025, False)
    assert values["DEFAULT_FROM_EMAIL"] == service_environment("web")["DEFAULT_FROM_EMAIL"]
    assert (values["TIME_ZONE"], values["REMINDER_TIME"]) == ("Europe/Amsterdam", "08:30")
    assert "localhost" in values["ALLOWED_HOSTS"]
    assert values["SECURE_SSL_REDIRECT"] is False  # plain HTTP on localhost; production sets 1
    assert values["STATICFILES_BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"


def test_deploy_check_passes_for_the_production_environment():
    # The compose environment as production runs it: the one knob compose turns off for plain HTTP on
    # localhost (SECURE_SSL_REDIRECT, see the comment there) is back at its production value.
    env = production_environment(SECURE_SSL_REDIRECT="1")
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, f"check --deploy:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize(
    "name, value",
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "notaurl://x"),
        ("CELERY_BROKER_URL", "amqp://x"),
        ("REMINDER_TIME", "25:00"),
        ("TIME_ZONE", "Mars/Base"),
        ("EMAIL_PORT", "abc"),
        ("MFA_ENCRYPTION_KEYS", "not-a-fernet-key"),
    ],
)
def test_malformed_value_stops_start_up_naming_the_variable(name, value):
    result = run_python("from django.conf import settings; settings.DEBUG", production_environment(**{name: value}))
    assert result.returncode != 0, f"{name}={value!r} was accepted"
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr.strip().splitlines()[-1], result.stderr


def test_production_settings_refuse_a_missing_or_development_secret_key():
    for secret_key in ("", "dev-only-" + "x" * 60, "too-short"):
        result = run_python("from django.conf import settings; settings.DEBUG",
                            production_environment(SECRET_KEY=secret_key))
        assert result.returncode != 0, f"SECRET_KEY={secret_key!r} was accepted"
        assert "SECRET_KEY" in result.stderr


# --- docker-compose.yml ----------------------------------------------------------------------------------


def test_compose_runs_exactly_one_beat():
    beat = SERVICES["beat"]
    assert int(beat.get("deploy", {}).get("replicas", 1)) == 1
    assert int(beat.get("scale", 1)) == 1
    command = beat["command"]
    command = command if isinstance(command, list) else shlex.split(command)
    assert command[:4] == ["celery", "-A", "intranet", "beat"]
    assert command[command.index("--schedule") + 1].startswith("/tmp/")
    assert sum("beat" in (SERVICES[name].get("command") or []) for name in SERVICES) == 1


def test_web_worker_beat_and_migrate_share_one_image_and_one_environment():
    shared = COMPOSE["x-app-environment"]
    first = SERVICES["web"]
    assert first.get("build") and first.get("image")
    for name in APP_SERVICES:
        service = SERVICES[name]
        assert service.get("build") == first["build"], name
        assert service.get("image") == first["image"], name
        if name == "migrate":  # the same, but for the database credentials
            assert {**service["environment"], "DATABASE_URL": shared["DATABASE_URL"]} == shared
        else:
            assert service["environment"] == shared, name
    assert "command" not in first  # web runs the image's CMD: gunicorn
    worker = SERVICES["worker"]["command"]
    assert worker == ["celery", "-A", "intranet", "worker", "--loglevel=INFO", "--concurrency=2", "-Q",
                      "celery,email,webhooks"]
    assert migrate_steps()[0] == ["python", "manage.py", "migrate", "--noinput"]
    assert SERVICES["migrate"]["restart"] == "no"


def test_only_migrate_connects_as_the_owner_and_then_grants_the_application_role():
    """web, worker and beat log in as a role that owns nothing (so cannot disable the evidence triggers);
    migrate logs in as the owner, migrates, and then runs grant_app_role for exactly that role."""
    postgres = service_environment("postgres")
    owner = database_url("migrate")
    assert (owner.username, owner.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
    app = database_url("web")
    assert app.username and app.username != owner.username
    for name in ("web", "worker", "beat"):
        url = database_url(name)
        assert url.username == app.username, f"{name} must log in as the application role"
        assert url.password == app.password, name
        assert (url.hostname, url.port, url.path) == (owner.hostname, owner.port, owner.path), name

    # The command runs the steps in order and stops at the first failure (sh -c 'a && exec b'), so the
    # services that wait for migrate never start on a half-granted database.
    command = SERVICES["migrate"]["command"]
    assert command[:2] == ["sh", "-c"] and " && exec " in command[2] and ";" not in command[2]
    assert migrate_steps() == [["python", "manage.py", "migrate", "--noinput"],
                               ["python", "manage.py", "grant_app_role", app.username]]
    assert (BASE_DIR / "guidelines" / "management" / "commands" / "grant_app_role.py").exists()

    # PostgreSQL creates the role on its first start, with the password web, worker and beat use.
    assert (postgres["GUIDELINES_APP_USER"], postgres["GUIDELINES_APP_PASSWORD"]) == (app.username, app.password)
    mounts = [volume.split(":") for volume in SERVICES["postgres"]["volumes"] if volume.startswith("./")]
    scripts = [(source, target) for source, target, *mode in mounts
               if target.startswith("/docker-entrypoint-initdb.d/") and mode == ["ro"]]
    assert len(scripts) == 1, mounts
    source, target = scripts[0]
    assert target.endswith(".sh") and Path(source).name == Path(target).name
    script = (BASE_DIR / source).read_text()
    assert script.startswith("#!/bin/bash\n")
    for needed in ("GUIDELINES_APP_USER", "GUIDELINES_APP_PASSWORD", "CREATE ROLE", "NOSUPERUSER", "ON_ERROR_STOP=1"):
        assert needed in script, needed
    # tests/test_db_privileges.py runs this script against a real PostgreSQL.


def test_services_wait_for_migrations_and_for_healthy_postgres_and_redis():
    for name in ("postgres", "redis"):
        healthcheck = SERVICES[name].get("healthcheck")
        assert healthcheck and healthcheck.get("test") and not healthcheck.get("disable"), name
    assert "pg_isready" in SERVICES["postgres"]["healthcheck"]["test"]
    assert "ping" in SERVICES["redis"]["healthcheck"]["test"]

    expected = {
        "migrate": {"postgres": "service_healthy"},
        "web": {"migrate": "service_completed_successfully", "postgres": "service_healthy",
                "redis": "service_healthy"},
        "worker": {"migrate": "service_completed_successfully", "postgres": "service_healthy",
                   "redis": "service_healthy"},
        "beat": {"migrate": "service_completed_successfully", "redis": "service_healthy"},
    }
    for name, conditions in expected.items():
        depends_on = SERVICES[name]["depends_on"]
        assert isinstance(depends_on, dict), f"{name}: depends_on needs the long form to carry conditions"
        for dependency, condition in conditions.items():
            assert depends_on[dependency]["condition"] == condition, (name, dependency)


def test_compose_backing_services_are_configured_as_the_settings_expect():
    assert SERVICES["postgres"]["image"] == "postgres:16"
    postgres_env = service_environment("postgres")
    assert (postgres_env["POSTGRES_USER"], postgres_env["POSTGRES_PASSWORD"], postgres_env["POSTGRES_DB"]) == (
        "guidelines", "guidelines", "guidelines")
    volume, target = SERVICES["postgres"]["volumes"][0].split(":")
    assert volume in COMPOSE["volumes"] and target == "/var/lib/postgresql/data"

    assert SERVICES["redis"]["image"] == "redis:7"
    redis_command = " ".join(SERVICES["redis"]["command"])
    assert "--maxmemory-policy noeviction" in redis_command

    assert SERVICES["mailcatcher"]["image"].startswith("axllent/mailpit")
    assert any(str(port).endswith("8025:8025") for port in SERVICES["mailcatcher"]["ports"])
    assert any(str(port).endswith("8000:8000") for port in SERVICES["web"]["ports"])


# --- Dockerfile and .dockerignore ------------------------------------------------------------------------


def test_dockerfile_builds_a_slim_non_root_gunicorn_image():
    (base,) = dockerfile("FROM")
    assert base == "python:3.13-slim-bookworm"

    (apt,) = [arguments for arguments in dockerfile("RUN") if "apt-get install" in arguments]
    assert "--no-install-recommends" in apt and "rm -rf /var/lib/apt/lists/*" in apt
    for package in ("libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core",
                    "fonts-liberation2"):
        assert package in apt.split()
    assert any(arguments == "pip install -r requirements.txt" for arguments in dockerfile("RUN"))

    instructions = [instruction for instruction, _ in dockerfile_instructions()]
    users = dockerfile("USER")
    assert users and users[-1] not in ("root", "0")
    assert instructions.index("USER") < instructions.index("CMD")
    assert dockerfile("EXPOSE") == ["8000"]

    (cmd,) = dockerfile("CMD")
    cmd = json.loads(cmd)  # exec form: gunicorn is PID 1 and gets the stop signal
    assert cmd[:2] == ["gunicorn", "intranet.wsgi:application"]
    assert cmd[cmd.index("--bind") + 1] == "0.0.0.0:8000"
    assert cmd[cmd.index("--access-logfile") + 1] == "-"
    assert "--workers" in cmd or "WEB_CONCURRENCY=" in " ".join(dockerfile("ENV"))


def test_dockerfile_build_environment_imports_production_settings():
    build_env = collectstatic_build_environment()
    assert build_env["DEBUG"] == "0"
    assert build_env["DATABASE_URL"] == "sqlite:////tmp/build.sqlite3"
    assert len(build_env["SECRET_KEY"]) >= 50 and not build_env["SECRET_KEY"].startswith("dev-only")

    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "DJANGO_SETTINGS_MODULE": "intranet.settings", **build_env}
    result = run_python(SETTINGS_AS_JSON, env)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["DEBUG"] is False
    assert values["DATABASE_ENGINE"] == "django.db.backends.sqlite3"
    assert values["STATICFILES_BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"


def test_collectstatic_succeeds_in_the_docker_build_context(tmp_path):
    """What the image's collectstatic step does, in a copy of the build context that .dockerignore leaves."""
    patterns = [
        line.strip().rstrip("/")
        for line in (BASE_DIR / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(relative):
        for pattern in patterns:
            if fnmatch.fnmatch(relative, pattern) or relative.startswith(pattern + "/"):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatch(relative.rsplit("/", 1)[-1], pattern[3:]):
                return True
        return False

    context = tmp_path / "app"

    def ignore(directory, names):
        relative_dir = Path(directory).relative_to(BASE_DIR).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        return [name for name in names if ignored(prefix + name)]

    shutil.copytree(BASE_DIR, context, ignore=ignore, symlinks=True)
    assert not (context / ".venv").exists() and not (context / "var").exists() and not (context / ".git").exists()

    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "DJANGO_SETTINGS_MODULE": "intranet.settings",
           **collectstatic_build_environment()}
    result = run_manage(["collectstatic", "--noinput"], env, cwd=context)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert (context / "staticfiles" / "staticfiles.json").exists()  # the manifest DEBUG=0 serves from


def test_dockerignore_keeps_local_state_out_of_the_image():
    patterns = {line.strip() for line in (BASE_DIR / ".dockerignore").read_text().splitlines()}
    for required in (".venv", "var", ".git", "staticfiles", "bench/results", ".pytest_cache", ".env"):
        assert required in patterns, required
    assert "__pycache__" in patterns or "**/__pycache__" in patterns


def test_image_healthcheck_passes_against_the_image_command_in_production_mode(tmp_path):
    """Runs the Dockerfile's CMD (on a free port instead of 8000) and then its HEALTHCHECK command.

    SECURE_SSL_REDIRECT=1 as in production, and a database host that does not resolve: /healthz/
    must answer 200 without a login, without the database, and without redirecting to HTTPS.
    """
    (healthcheck,) = dockerfile("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    command = json.loads(command)
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/healthz/" in command[2]

    (cmd,) = dockerfile("CMD")
    cmd = json.loads(cmd)
    port = free_port()
    cmd[cmd.index("--bind") + 1] = f"127.0.0.1:{port}"
    if "--worker-tmp-dir" in cmd:
        cmd[cmd.index("--worker-tmp-dir") + 1] = str(tmp_path)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    env = production_environment(SECURE_SSL_REDIRECT="1", WEB_CONCURRENCY="1", HOME=str(tmp_path))
    server = subprocess.Popen([str(gunicorn), *cmd[1:]], cwd=BASE_DIR, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        probe = command[2].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            result = run_python(probe, env, timeout=30)
            if result.returncode == 0 or time.monotonic() > deadline or server.poll() is not None:
                break
            time.sleep(0.5)
        assert result.returncode == 0, result.stderr

        # And it fails when the app refuses the request (a Host that is not allowed gives 400).
        refused = run_python(probe, {**env, "ALLOWED_HOSTS": "intranet.example.com"}, timeout=30)
        assert refused.returncode != 0
    finally:
        server.terminate()
        try:
            output, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
    assert '"GET /healthz/ HTTP/1.1" 200' in output  # access log on stdout
