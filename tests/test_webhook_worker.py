"""Webhooks through a real Celery worker on Redis and PostgreSQL, to a receiver on loopback that
checks every signature with the reference library: every event source, retries under one
webhook-id, a receiver that never recovers, and a delivery the broker never got, sent by the sweep."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from guidelines import publishing, services, tasks, webhooks
from guidelines.models import AuditEvent, WebhookDelivery, WebhookSubscriber
from guidelines.reports import jobs

from .factories import make_draft, make_guideline
from .webhook_receiver import Receiver
from .workers import REDIS_URL, publish_to_test_redis, start_worker, stop_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
Event = WebhookSubscriber.Event
Status = WebhookDelivery.Status


@pytest.fixture
def queue_prefix():
    return f"t{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def app_on_redis(queue_prefix, monkeypatch):
    """This process publishes to the test Redis with the worker's queue names."""
    app = tasks.deliver_webhook.app
    undo = publish_to_test_redis(app, monkeypatch, default_queue=f"{queue_prefix}celery",
                                 routes={"guidelines.tasks.deliver_webhook": {"queue": f"{queue_prefix}webhooks"}})
    yield app
    undo()


@pytest.fixture
def webhook_worker(tmp_path, queue_prefix, app_on_redis):
    started = []

    def start(**env):
        environment = {"CELERY_QUEUE_PREFIX": queue_prefix, "CELERY_VISIBILITY_TIMEOUT": "30",
                       "EMAIL_RETRY_BACKOFF_MAX": "2", "WEBHOOK_RETRY_BACKOFF": "1", "WEBHOOK_RETRY_BACKOFF_MAX": "2",
                       **{key: str(value) for key, value in env.items()}}
        worker = start_worker(REDIS_URL, [f"{queue_prefix}celery", f"{queue_prefix}webhooks"], tmp_path,
                              env=environment, name="webhooks")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            stop_worker(worker)


def worker_log(tmp_path):
    return "\n".join(path.read_text() for path in tmp_path.glob("*.log"))


def settled():
    return not WebhookDelivery.objects.filter(status=Status.PENDING).exists()


def test_every_event_source_reaches_the_receiver_signed_and_a_flaky_receiver_gets_the_same_id_again(
        webhook_worker, tmp_path, settings, hilde, bob, alice, otto, arjen, web_meta):
    settings.DEBUG, settings.MEDIA_ROOT = True, tmp_path / "media"
    with Receiver({"/flaky": [500, 503, 204]}) as receiver:
        everything, everything_secret = webhooks.add_subscriber(by=hilde, name="GRC", url=receiver.url("/grc"),
                                                                events=list(Event.values))
        flaky, flaky_secret = webhooks.add_subscriber(by=hilde, name="Flaky", url=receiver.url("/flaky"),
                                                      events=[Event.VERSION_PUBLISHED])
        webhook_worker()
        # An older guideline, published two months ago: Bob and Otto are overdue.
        long_ago = timezone.now() - timedelta(days=60)
        old_draft = make_draft(make_guideline(hilde, slug="old-rules"), author=hilde)
        publishing.approve_version(version=old_draft, by=bob.user, at=long_ago)
        old = publishing.publish_version(version=old_draft, by=hilde, material=True, at=long_ago)
        # Publishing now, and acknowledging.
        draft = make_draft(make_guideline(hilde), author=hilde)
        publishing.approve_version(version=draft, by=bob.user)
        version = publishing.publish_version(version=draft, by=hilde, material=True)
        ack, _created = services.acknowledge(employee=alice, version=version, language="en", meta=web_meta)
        services.acknowledge(employee=alice, version=old, language="en", meta=web_meta)
        # The daily beat task, run by the worker; and a finished auditor pack.
        tasks.announce_overdue_versions.delay(timezone.localdate().isoformat())
        report = jobs.start_audit_pack(user=arjen, guideline_slug="social-media")
        jobs.generate_now(report)

        assert wait_for(lambda: WebhookDelivery.objects.count() == 6 and settled(), timeout=90), worker_log(tmp_path)
    grc = [received.verify(everything_secret) for received in receiver.to("/grc")]
    assert sorted(payload["type"] for payload in grc) == sorted([
        "version.published", "acknowledgement.created", "acknowledgement.created", "version.overdue",
        "report.ready"])
    [overdue] = [payload["data"] for payload in grc if payload["type"] == "version.overdue"]
    assert overdue["version"]["id"] == old.pk and overdue["counts"]["overdue"] == 2
    [ready] = [payload["data"] for payload in grc if payload["type"] == "report.ready"]
    assert ready["report"]["verification_code"] == report.verification_code
    assert {received.headers["webhook-id"] for received in receiver.to("/grc")} == set(
        WebhookDelivery.objects.filter(subscriber=everything).values_list("message_id", flat=True))

    # The flaky receiver failed twice, then took it: three requests, one message id, each signed.
    attempts = receiver.to("/flaky")
    assert len(attempts) == 3 and len({received.headers["webhook-id"] for received in attempts}) == 1
    assert [received.verify(flaky_secret)["data"]["version"]["id"] for received in attempts] == [version.pk] * 3
    delivery = WebhookDelivery.objects.get(subscriber=flaky)
    assert delivery.message_id == attempts[0].headers["webhook-id"]
    assert (delivery.status, delivery.attempts, delivery.response_status) == (Status.DELIVERED, 3, 204)
    assert delivery.event.key == f"version.published:{version.pk}"
    assert WebhookDelivery.objects.get(event__key=f"acknowledgement.created:{ack.pk}").status == Status.DELIVERED
    flaky.refresh_from_db()
    assert flaky.is_active and flaky.failure_streak == 0


def test_a_receiver_that_always_fails_gets_its_subscriber_disabled_and_hr_sees_why(
        webhook_worker, tmp_path, settings, hilde, alice, otto, version_1, web_meta, client_as):
    settings.DEBUG = True
    with Receiver({"/down": [503]}) as receiver:
        subscriber, secret = webhooks.add_subscriber(by=hilde, name="Broken GRC", url=receiver.url("/down"),
                                                     events=[Event.ACKNOWLEDGEMENT_CREATED])
        webhook_worker(WEBHOOK_MAX_RETRIES=2, WEBHOOK_DISABLE_AFTER=2)
        services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
        services.acknowledge(employee=otto, version=version_1, language="en", meta=web_meta)
        assert wait_for(lambda: WebhookDelivery.objects.filter(status=Status.FAILED).count() == 2, timeout=60), (
            worker_log(tmp_path))
    assert len(receiver.received) == 6  # each delivery: the first attempt and two retries
    assert all(received.verify(secret) for received in receiver.received)
    subscriber.refresh_from_db()
    assert not subscriber.is_active and subscriber.disabled_by is None and subscriber.failure_streak == 2
    assert subscriber.disabled_reason == "HTTP 503 Service Unavailable"
    assert AuditEvent.objects.get(action=AuditEvent.Action.WEBHOOK_DISABLED).actor is None

    page = client_as(hilde).get(reverse("guidelines:hr_webhook", args=[subscriber.pk])).content.decode()
    assert "Disabled automatically" in page and "the last 2 deliveries failed" in page
    assert "HTTP 503 Service Unavailable" in page


def test_a_delivery_the_broker_never_got_is_sent_by_the_sweep(
        webhook_worker, tmp_path, settings, hilde, alice, version_1, web_meta, app_on_redis, caplog, monkeypatch):
    settings.DEBUG = True
    with Receiver() as receiver:
        subscriber, secret = webhooks.add_subscriber(by=hilde, name="GRC", url=receiver.url("/grc"),
                                                     events=[Event.ACKNOWLEDGEMENT_CREATED])
        # The broker does not answer when the acknowledgement commits (Celery reads the environment first).
        with monkeypatch.context() as outage:
            outage.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
            outage.setitem(app_on_redis.conf, "broker_url", "redis://127.0.0.1:1/0")
            app_on_redis._pool = app_on_redis.amqp._producer_pool = None
            ack, created = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
        app_on_redis._pool = app_on_redis.amqp._producer_pool = None
        assert created and "the sweep queues it again" in caplog.text
        delivery = WebhookDelivery.objects.get(subscriber=subscriber)
        assert delivery.status == Status.PENDING and delivery.event.key == f"acknowledgement.created:{ack.pk}"

        webhook_worker()
        WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(hours=1))
        tasks.requeue_stalled_webhooks.delay()  # beat's sweep, an hour later
        assert wait_for(settled, timeout=60), worker_log(tmp_path)
    [received] = receiver.received
    assert received.verify(secret)["data"]["acknowledgement"]["seal"] == ack.seal
    delivery.refresh_from_db()
    assert received.headers["webhook-id"] == delivery.message_id
    assert (delivery.status, delivery.attempts) == (Status.DELIVERED, 1)
