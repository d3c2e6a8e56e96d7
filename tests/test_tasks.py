"""Tasks that must run on a real Celery worker: Redis (production shape) and the filesystem broker
(the embedded default of `make run`)."""

import os
import uuid

import pytest
from django.conf import settings
from kombu import Connection

from guidelines import services, tasks
from guidelines.models import AuditEvent

from .workers import REDIS_URL, start_worker, stop_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def acknowledged_three(alice, bob, otto, version_1, web_meta):
    for employee in (alice, bob, otto):
        services.acknowledge(employee=employee, version=version_1, language="en", meta=web_meta)


def _run_verification_through(broker_url, transport_options, tmp_path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = start_worker(broker_url, [queue], tmp_path)
    try:
        with Connection(broker_url, transport_options=transport_options) as broker:
            tasks.verify_evidence_chain.apply_async(queue=queue, connection=broker)
        assert wait_for(lambda: AuditEvent.objects.filter(action="chain_verified").exists()), (
            (tmp_path / "worker.log").read_text()
        )
    finally:
        stop_worker(worker)
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
