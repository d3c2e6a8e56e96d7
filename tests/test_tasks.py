"""Tasks that must run on a real Celery worker: Redis (production shape) and the filesystem broker
(the embedded default of `make run`)."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from kombu import Connection

from guidelines import services, tasks
from guidelines.models import AuditEvent

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _start_worker(broker_url, queue, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "intranet.settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker_url,
        "VAR_DIR": str(tmp_path),
    }
    log = open(tmp_path / "worker.log", "w+")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "intranet", "worker", "--pool=solo", "-Q", queue,
         "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "ready." in (tmp_path / "worker.log").read_text():
            return worker
        if worker.poll() is not None:
            break
        time.sleep(0.2)
    worker.kill()
    pytest.fail(f"worker did not start:\n{(tmp_path / 'worker.log').read_text()}")


def _database_url():
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def acknowledged_three(alice, bob, otto, version_1, web_meta):
    for employee in (alice, bob, otto):
        services.acknowledge(employee=employee, version=version_1, language="en", meta=web_meta)


def _run_verification_through(broker_url, transport_options, tmp_path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = _start_worker(broker_url, queue, tmp_path)
    try:
        with Connection(broker_url, transport_options=transport_options) as broker:
            tasks.verify_evidence_chain.apply_async(queue=queue, connection=broker)
        assert _wait_for(lambda: AuditEvent.objects.filter(action="chain_verified").exists()), (
            (tmp_path / "worker.log").read_text()
        )
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    return AuditEvent.objects.get(action="chain_verified")


def test_real_worker_on_redis_verifies_the_chain(acknowledged_three, tmp_path):
    event = _run_verification_through(REDIS_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS, tmp_path)
    assert (event.details["intact"], event.details["checked"]) == (True, 3)


def test_real_worker_on_the_embedded_filesystem_broker_verifies_the_chain(acknowledged_three, tmp_path):
    folders = {"data_folder_in": str(tmp_path / "broker" / "queue"),
               "data_folder_out": str(tmp_path / "broker" / "queue"),
               "processed_folder": str(tmp_path / "broker" / "processed"),
               "control_folder": str(tmp_path / "broker" / "control")}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    event = _run_verification_through("filesystem://", folders, tmp_path)
    assert (event.details["intact"], event.details["checked"]) == (True, 3)


def test_tasks_are_acknowledged_late_and_requeued_when_a_worker_dies():
    # Crash safety the reminder issue relies on: a task killed mid-way is redelivered.
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
