"""Reminders on a real Celery worker, real Redis and real PostgreSQL, with an SMTP server on loopback
that refuses or slows down on demand: duplicates, crashes, retries and rolled-back publications."""

import os
import signal
import uuid
from collections import Counter
from datetime import datetime, time, timedelta
from email.header import decode_header, make_header

import pytest
from django.db import transaction
from django.utils import timezone

from guidelines import notifications, publishing, tasks
from guidelines.models import AuditEvent, Employee, NotificationLog

from .factories import make_draft, make_employee, make_guideline
from .smtp_server import SMTPServer
from .workers import REDIS_URL, publish_to_test_redis, start_worker, stop_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
Status = NotificationLog.Status


def next_working_day():
    day = timezone.localdate() + timedelta(days=1)
    while not notifications.is_working_day(day):
        day += timedelta(days=1)
    return day


def publish_days_before(guideline, day, days, *, hilde, bob):
    """Published `days` days before `day` (at most three days ago), so the cadence's day 3 is `day`."""
    at = timezone.make_aware(datetime.combine(day - timedelta(days=days), time(8)))
    version = make_draft(guideline, author=hilde)
    publishing.approve_version(version=version, by=bob.user, at=at)
    return publishing.publish_version(version=version, by=hilde, material=True, at=at)


@pytest.fixture
def queue_prefix():
    return f"t{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def app_on_redis(queue_prefix, monkeypatch):
    """This process publishes to the test Redis with the worker's queue names."""
    app = tasks.plan_reminders.app
    undo = publish_to_test_redis(app, monkeypatch, default_queue=f"{queue_prefix}celery",
                                 routes={"guidelines.tasks.send_*": {"queue": f"{queue_prefix}email"}})
    yield app
    undo()


@pytest.fixture
def worker_factory(tmp_path, queue_prefix, app_on_redis):
    started = []

    def start(smtp, name="worker", **env):
        environment = {"CELERY_QUEUE_PREFIX": queue_prefix, "CELERY_VISIBILITY_TIMEOUT": "10",
                       "EMAIL_RETRY_BACKOFF": "1", "EMAIL_RETRY_BACKOFF_MAX": "2", **smtp.env(),
                       **{key: str(value) for key, value in env.items()}}
        worker = start_worker(REDIS_URL, [f"{queue_prefix}celery", f"{queue_prefix}email"], tmp_path,
                              env=environment, name=name)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            stop_worker(worker)


@pytest.fixture
def day():
    return next_working_day()


@pytest.fixture
def staff(alice, bob, otto):
    return [alice, bob, otto]


@pytest.fixture
def pending(staff, hilde, bob, day):
    """Three employees due their day-3 reminder on `day`."""
    guideline = make_guideline(hilde, due_days=14)
    return publish_days_before(guideline, day, 3, hilde=hilde, bob=bob)


def sent_count():
    return NotificationLog.objects.filter(status=Status.SENT).count()


def logs(tmp_path):
    return "\n".join(path.read_text() for path in tmp_path.glob("*.log"))


def test_the_same_task_delivered_twice_sends_one_email_each(pending, day, worker_factory, tmp_path):
    ids = list(Employee.objects.values_list("pk", flat=True))
    with SMTPServer() as smtp:
        worker_factory(smtp)
        task_id = str(uuid.uuid4())
        tasks.send_reminders.apply_async((ids, day.isoformat()), task_id=task_id)
        tasks.send_reminders.apply_async((ids, day.isoformat()), task_id=task_id)  # a redelivered copy
        tasks.send_reminders.apply_async((ids, day.isoformat()))  # a duplicate with its own id
        assert wait_for(lambda: sent_count() == 3), logs(tmp_path)
        # Wait until the worker has run all three messages before counting.
        assert wait_for(lambda: logs(tmp_path).count("succeeded") >= 3), logs(tmp_path)
    assert Counter(smtp.handler.recipients()) == Counter(
        {"alice@example.com": 1, "bob@example.com": 1, "otto@example.com": 1})


def test_two_beat_cycles_for_the_same_day_send_one_email_each(pending, day, worker_factory, tmp_path):
    with SMTPServer() as smtp:
        worker_factory(smtp)
        tasks.plan_reminders.delay(day.isoformat())
        tasks.plan_reminders.delay(day.isoformat())  # a second beat instance
        assert wait_for(lambda: AuditEvent.objects.filter(action="reminders_planned").count() == 2), logs(tmp_path)
        # Two plans, one batch each: wait until both plans and both batches have run.
        assert wait_for(lambda: logs(tmp_path).count("succeeded") >= 4), logs(tmp_path)
    assert sorted(smtp.handler.recipients()) == ["alice@example.com", "bob@example.com", "otto@example.com"]
    assert NotificationLog.objects.filter(day=day).count() == 3


def test_a_worker_killed_mid_batch_is_redelivered_and_everyone_is_reminded_once_in_the_log(
    staff, hilde, bob, day, worker_factory, tmp_path, capsys,
):
    for n in range(37):
        make_employee(f"employee{n}@example.com", f"K{n:04}")
    guideline = make_guideline(hilde, due_days=14)
    publish_days_before(guideline, day, 3, hilde=hilde, bob=bob)
    with SMTPServer(delay=0.15) as smtp:
        worker = worker_factory(smtp, REMINDER_BATCH_SIZE=10)
        tasks.plan_reminders.delay(day.isoformat())
        assert wait_for(lambda: len(smtp.messages) >= 15, timeout=60), logs(tmp_path)
        os.kill(worker.pid, signal.SIGKILL)  # in the middle of the second batch
        worker.wait()
        killed_at = len(smtp.messages)
        worker_factory(smtp, name="restarted", REMINDER_BATCH_SIZE=10)
        assert wait_for(lambda: sent_count() == 40, timeout=90), logs(tmp_path)
    received = Counter(smtp.handler.recipients())
    duplicates = sum(received.values()) - len(received)
    with capsys.disabled():
        print(f"\n[kill test] killed after {killed_at} e-mails; {sum(received.values())} delivered to "
              f"{len(received)} employees: {duplicates} duplicate(s)")
    assert len(received) == 40  # nobody missed
    log_rows = Counter(NotificationLog.objects.filter(day=day).values_list("recipient", flat=True))
    assert len(log_rows) == 40 and set(log_rows.values()) == {1}  # one row per employee and day
    # Duplicates are bounded by the batch the worker was killed in.
    assert duplicates <= 10


def test_an_smtp_server_that_refuses_then_accepts_delivers_once_after_retry(pending, day, worker_factory, tmp_path):
    with SMTPServer(refuse_first=2) as smtp:
        worker_factory(smtp)
        tasks.plan_reminders.delay(day.isoformat())
        assert wait_for(lambda: sent_count() == 3, timeout=60), logs(tmp_path)
    assert smtp.handler.refused == 2
    assert sorted(smtp.handler.recipients()) == ["alice@example.com", "bob@example.com", "otto@example.com"]
    assert "Retry in" in logs(tmp_path)
    assert {log.attempts for log in NotificationLog.objects.all()} == {3}  # two refusals, then delivered


def test_an_smtp_server_that_keeps_refusing_ends_in_failed_rows_for_hr(pending, day, worker_factory, tmp_path):
    with SMTPServer(refuse_always=True) as smtp:
        worker_factory(smtp, EMAIL_MAX_RETRIES=2)
        tasks.plan_reminders.delay(day.isoformat())
        assert wait_for(lambda: NotificationLog.objects.filter(status=Status.FAILED).count() == 3, timeout=60), (
            logs(tmp_path))
    assert smtp.messages == [] and smtp.handler.refused == 3
    assert all("451" in log.last_error for log in NotificationLog.objects.all())


class Rollback(Exception):
    pass


def test_a_rolled_back_publication_announces_nothing(staff, hilde, bob, worker_factory, tmp_path):
    guideline = make_guideline(hilde)
    rolled_back = make_draft(guideline, author=hilde)
    publishing.approve_version(version=rolled_back, by=bob.user)
    with SMTPServer() as smtp:
        worker_factory(smtp)
        with pytest.raises(Rollback), transaction.atomic():
            publishing.publish_version(version=rolled_back, by=hilde, material=True)
            raise Rollback
        other = make_guideline(hilde, slug="clean-desk")
        committed = make_draft(other, author=hilde)
        publishing.approve_version(version=committed, by=bob.user)
        publishing.publish_version(version=committed, by=hilde, material=True)
        assert wait_for(lambda: sent_count() == 3, timeout=60), logs(tmp_path)
        assert wait_for(lambda: logs(tmp_path).count("succeeded") >= 2), logs(tmp_path)
    planned = AuditEvent.objects.filter(action="announcement_planned")
    assert [event.version_id for event in planned] == [committed.pk]
    assert logs(tmp_path).count("announce_version[") == 2  # one task: received and succeeded
    subjects = {str(make_header(decode_header(message["Subject"]))) for message in smtp.messages}
    assert subjects == {"New: Social media guideline (version 1.0) — please acknowledge"}
    assert sorted(smtp.handler.recipients()) == ["alice@example.com", "bob@example.com", "otto@example.com"]
