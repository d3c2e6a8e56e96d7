"""Loaded by pytest before Django's settings (`-p tests.environment` in pyproject.toml).

The settings default to production (DEBUG=0), which refuses to start without a real SECRET_KEY and
redirects every request to HTTPS. The test run is a development run: DEBUG=1 unless the caller
says otherwise. Subprocesses (Celery workers, manage.py) inherit it. pytest-django loads the
settings before any conftest.py, hence a plugin.
"""

import os

os.environ.setdefault("DEBUG", "1")
