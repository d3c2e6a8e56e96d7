"""Real Celery worker processes for the tests, on the test database."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from .parallel import redis_url

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = redis_url()  # one Redis database per xdist worker


def database_url():
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def start_worker(broker_url, queues, tmp_path, env=None, name="worker"):
    """A `celery worker --pool=solo` process consuming `queues`; returns once it is ready."""
    log_path = tmp_path / f"{name}.log"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "intranet.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "VAR_DIR": str(tmp_path),
        **(env or {}),
    }
    log = open(log_path, "w+")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "intranet", "worker", "--pool=solo", "-Q", ",".join(queues),
         "-n", f"{name}-{queues[0]}@%h", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    if wait_for(lambda: "ready." in log_path.read_text() or worker.poll() is not None) and worker.poll() is None:
        return worker
    worker.kill()
    pytest.fail(f"worker did not start:\n{log_path.read_text()}")


def stop_worker(worker):
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def publish_to_test_redis(app, monkeypatch, *, default_queue, routes):
    """Make this process publish `app`'s tasks to the test Redis, with the worker's queue names
    (`default_queue`, `routes`); returns the undo. Celery reads CELERY_BROKER_URL from the environment
    before its configuration, and keeps a connection and producer pool to drop on either side."""
    monkeypatch.setenv("CELERY_BROKER_URL", REDIS_URL)
    saved = {key: app.conf[key] for key in ("broker_url", "task_default_queue", "task_routes")}
    app.conf.update(broker_url=REDIS_URL, task_default_queue=default_queue, task_routes=routes)
    app._pool = None
    app.amqp._producer_pool = None

    def undo():
        app.conf.update(saved)
        app._pool = None
        app.amqp._producer_pool = None

    return undo
