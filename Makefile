# Two commands on a fresh machine: `make run` and `make test`. See README.md.
VENV := .venv
PY := $(VENV)/bin/python
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/guidelines
# With TEST_WORKERS pytest-xdist workers, worker gwN uses the Redis database N below this one (15, 14).
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# pytest-xdist workers: the suite waits on browsers, workers and PostgreSQL as much as it computes, and a
# worker each is what 2 cores (CI's too) run fastest. Each worker has its own test database (test_<name>_gwN).
TEST_WORKERS ?= 2
# `manage.py check --deploy` with production settings: DEBUG off, a fresh random key, a real host name.
DEPLOY_CHECK_ENV = DEBUG=0 SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))')" \
	ALLOWED_HOSTS=intranet.example.nl CSRF_TRUSTED_ORIGINS=https://intranet.example.nl \
	SITE_URL=https://intranet.example.nl REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=$(TEST_DATABASE_URL) \
	EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend EMAIL_HOST=smtp.example.nl

# The settings default to production (DEBUG=0); the development targets run with DEBUG=1.
run bench messages: export DEBUG ?= 1

.PHONY: run test bench messages lint clean system-run system-test

$(VENV)/.run-installed: requirements.txt
	@test -x $(PY) || "$$(bin/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# The OpenID Connect provider that the tests start (tests/oidc/provider.mjs) runs on Node.js.
tests/oidc/node_modules/.installed: tests/oidc/package.json tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund
	touch $@

system-run:
	bin/install-system-packages run

system-test:
	bin/install-system-packages test

run: system-run $(VENV)/.run-installed
	mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	bin/run-dev

test: system-test $(VENV)/.dev-installed tests/oidc/node_modules/.installed
	$(VENV)/bin/ruff check .
	env $(DEPLOY_CHECK_ENV) $(PY) manage.py check --deploy --fail-level WARNING
	bin/ensure-services
	DATABASE_URL=$(TEST_DATABASE_URL) DATABASE_CONN_MAX_AGE=0 TEST_REDIS_URL=$(TEST_REDIS_URL) CELERY_BROKER_URL=memory:// \
		$(VENV)/bin/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: system-test $(VENV)/.dev-installed
	bin/ensure-services
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) bench/run.py $(BENCH_ARGS)
	for script in bench/bench_*.py; do [ ! -e "$$script" ] || DATABASE_URL=$(TEST_DATABASE_URL) $(PY) "$$script" || exit 1; done

messages: $(VENV)/.dev-installed
	$(PY) manage.py makemessages -l nl -l en --no-obsolete -i .venv -i var -i bench -i tests -i staticfiles
	$(PY) manage.py compilemessages -i .venv

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache tests/oidc/node_modules
