"""Running the suite on several pytest-xdist workers.

Each worker has what it needs of its own: pytest-django gives it a test database (test_<name>_gw0, …);
a Redis database comes from here. Ports are the system's free ones (live server, OIDC provider, SMTP,
time-stamping authority) and files go to each test's tmp_path, which xdist keeps apart per worker.
"""

import os
import urllib.parse

import pytest


def worker_index():
    """0, 1, … on pytest-xdist's workers gw0, gw1, …; None when the tests run in one process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # set by pytest-xdist before it loads any plugin
    return int(worker.removeprefix("gw")) if worker else None


def redis_url():
    """TEST_REDIS_URL on worker gw0 (and without xdist); worker gwN uses the database N below it, so
    that workers never see each other's queues or kombu's bookkeeping of unacknowledged messages
    (redis://…/15: gw0 uses 15, gw1 14)."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    index = worker_index()
    if not index:
        return url
    parts = urllib.parse.urlsplit(url)
    database = int(parts.path.strip("/") or 0) - index
    if database < 0:
        raise pytest.UsageError(f"TEST_REDIS_URL={url} leaves no Redis database for worker gw{index}: "
                                "give a database number at least as high as the number of workers minus one.")
    return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))
