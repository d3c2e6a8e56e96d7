"""Benchmark: fan-out of 10,000 acknowledgement.created webhooks to a receiver on loopback, through a
real Celery worker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guidelines python bench/bench_webhooks.py [--events N]

Works on its own database (<name>_webhooks_bench), seeded once with N employees who acknowledged the
scale guideline. Each run adds a subscriber pointing at an HTTP server in this process (earlier runs'
subscribers are disabled), records one acknowledgement.created event per acknowledgement with its
delivery (webhook_events.record, what the commit of an acknowledgement runs) and queues the deliveries,
then starts a real Celery worker (prefork, 2 processes, queues "celery" and "webhooks") on Redis
(BENCH_REDIS_URL, default redis://127.0.0.1:6379/14) and waits until every delivery is marked
delivered. The receiver keeps every request and checks each signature with the reference library
(standardwebhooks). Prints one JSON object per line: deliveries per second and the worker's peak
resident memory.

The worker runs with DEBUG=1 and WEBHOOK_ALLOW_PRIVATE=1: production refuses http:// and loopback
addresses, which is what a receiver in this process is.
"""

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.run import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    bench_django,
    emit,
    log,
    process_peak_rss_mb,
    start_worker,
)

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PREFIX = f"bench-{uuid.uuid4().hex[:6]}-"
TIMEOUT = 900
TARGET_PER_S, TARGET_RSS_MB = 100, 300


def acknowledgements(count):
    """`count` acknowledgements of the scale guideline, seeded in a child process when missing."""
    import subprocess

    from guidelines.models import Acknowledgement

    if Acknowledgement.objects.count() < count:
        log(f"seeding {count} employees, 1 version, all acknowledged")
        subprocess.run([sys.executable, "manage.py", "seed_scale", f"--employees={count}", "--versions=1",
                        "--acknowledged=1"], cwd=BASE_DIR, check=True, env=os.environ)
    return list(Acknowledgement.objects.select_related("version__guideline").order_by("-pk")[:count])


def subscriber_for(url):
    """This run's subscriber. Made directly, as the HR page would, but without its address check: the
    receiver is http:// on loopback, which production settings refuse."""
    from django.contrib.auth import get_user_model

    from guidelines import webhooks
    from guidelines.accounts import second_factor_cipher
    from guidelines.models import WebhookSubscriber

    WebhookSubscriber.objects.filter(is_active=True).update(is_active=False)
    secret = webhooks.new_secret()
    creator = get_user_model().objects.filter(is_superuser=False).order_by("pk").first()
    subscriber = WebhookSubscriber.objects.create(
        name=f"bench {PREFIX}", url=url, events=[WebhookSubscriber.Event.ACKNOWLEDGEMENT_CREATED],
        secret_encrypted=second_factor_cipher().encrypt(secret.encode()).decode(), created_by=creator)
    return subscriber, secret


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="acknowledgement.created events (10,000)")
    arguments = parser.parse_args()
    os.environ["DATABASE_URL"] = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL).rstrip("/") + "_webhooks"
    os.environ["CELERY_BROKER_URL"], os.environ["CELERY_QUEUE_PREFIX"] = REDIS_URL, PREFIX
    with bench_django():
        from django.db import close_old_connections

        from guidelines import tasks, webhook_events
        from guidelines.models import WebhookDelivery
        from tests.webhook_receiver import Receiver

        acks = acknowledgements(arguments.events)
        with Receiver() as receiver, tempfile.TemporaryDirectory(prefix="bench-webhooks-") as folder:
            subscriber, secret = subscriber_for(receiver.url("/hooks"))
            log(f"recording and queueing {len(acks)} events")
            started = time.perf_counter()
            Event = webhook_events.Event
            for ack in acks:
                for delivery_pk in webhook_events.record(
                        Event.ACKNOWLEDGEMENT_CREATED, f"{Event.ACKNOWLEDGEMENT_CREATED}:{ack.pk}:{PREFIX}",
                        webhook_events.acknowledgement_created(ack, ack.version), ack.acknowledged_at):
                    tasks.deliver_webhook.delay(delivery_pk)
            queued_seconds = time.perf_counter() - started
            log(f"queued in {queued_seconds:.1f} s; starting the worker")
            log_path = Path(folder) / "worker.log"
            worker = start_worker([f"{PREFIX}celery", f"{PREFIX}webhooks"], log_path,
                                  env={"DEBUG": "1", "WEBHOOK_ALLOW_PRIVATE": "1", "LOG_LEVEL": "WARNING"})
            try:
                started = time.perf_counter()
                delivered = WebhookDelivery.objects.filter(subscriber=subscriber, status="delivered")
                while (done := delivered.count()) < len(acks):
                    if time.perf_counter() - started > TIMEOUT:
                        raise SystemExit(f"only {done} of {len(acks)} delivered after {TIMEOUT} s:\n"
                                         f"{log_path.read_text()[-3000:]}")
                    time.sleep(0.25)
                    close_old_connections()
                seconds = time.perf_counter() - started
                main_rss, child_rss = process_peak_rss_mb(worker.pid)
            finally:
                worker.terminate()
                worker.wait(timeout=60)
        verified = sum(1 for received in receiver.received if received.verify(secret))
        worker_peak = max([main_rss, *child_rss])
        per_second = len(acks) / seconds
        emit({
            "name": "webhook_fan_out",
            "events": len(acks),
            "requests_received": receiver.count,
            "signatures_verified": verified,
            "queue_seconds": round(queued_seconds, 1),
            "delivery_seconds": round(seconds, 1),
            "deliveries_per_s": round(per_second),
            "worker_peak_rss_mb": {"main": main_rss, "children": child_rss},
            "target": f">= {TARGET_PER_S} deliveries/s, worker <= {TARGET_RSS_MB} MB",
            "meets_target": per_second >= TARGET_PER_S and worker_peak <= TARGET_RSS_MB,
        })


if __name__ == "__main__":
    main()
