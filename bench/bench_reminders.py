"""Benchmark: a full reminder cycle for 100,000 employees, 30 % of them pending, on a real worker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guidelines python bench/bench_reminders.py

Works on its own database (<name>_reminders_bench: one guideline, acknowledged by 70 %), seeded
once. Each run empties the notification log (TRUNCATE: the bench database only), starts a real
Celery worker (prefork, 2 processes, queues "celery" and "email") on Redis (BENCH_REDIS_URL,
default redis://127.0.0.1:6379/14) with the file e-mail backend, publishes the day's plan and
waits until every pending employee's e-mail is marked sent. Prints one JSON object per line.
"""

import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
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

EMPLOYEES, ACKNOWLEDGED = 100_000, 0.7
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PREFIX = f"bench-{uuid.uuid4().hex[:6]}-"
TIMEOUT = 600
TARGET_SECONDS, TARGET_RSS_MB = 60, 300


def dataset():
    """The reminder guideline, seeded in a child process when missing."""
    from guidelines.models import Employee, Guideline

    guideline = Guideline.objects.filter(slug__startswith="scale-").order_by("-pk").first()
    if guideline is None or Employee.objects.count() < EMPLOYEES:
        log(f"seeding {EMPLOYEES} employees, 1 version, {ACKNOWLEDGED:.0%} acknowledged")
        subprocess.run(
            [sys.executable, "manage.py", "seed_scale", f"--employees={EMPLOYEES}", "--versions=1",
             f"--acknowledged={ACKNOWLEDGED}"],
            cwd=BASE_DIR, check=True, env=os.environ,
        )
        guideline = Guideline.objects.filter(slug__startswith="scale-").order_by("-pk").first()
    return guideline


def empty_the_log():
    from django.db import connection

    with connection.cursor() as cursor:  # TRUNCATE does not fire the evidence triggers; bench database only
        cursor.execute("TRUNCATE guidelines_notificationitem, guidelines_notificationlog")


def reminder_day(version):
    """The first working day on or after today that is at least day 3 of the cadence."""
    from django.utils import timezone

    from guidelines import notifications

    day = max(timezone.localdate() + timedelta(days=1), timezone.localdate(version.published_at) + timedelta(days=3))
    while not notifications.is_working_day(day):
        day += timedelta(days=1)
    return day


def queries_per_batch(day):
    """Queries of one reminder batch of 1,000 and of 500 employees (locmem e-mail, this process)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    from guidelines import notifications

    ids = list(notifications.outstanding_employee_ids(notifications.current_versions(), day))[:1500]
    counts = {}
    with override_settings(MAILERS={"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}):
        for size, batch in ((1000, ids[:1000]), (500, ids[1000:1500])):
            with CaptureQueriesContext(connection) as captured:
                notifications.run_batch(notifications.compose_digests(batch, day), day=day, claimed_by=f"probe-{size}")
            counts[size] = len(captured)
    return counts


def main():
    os.environ["DATABASE_URL"] = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL).rstrip("/") + "_reminders"
    os.environ["CELERY_BROKER_URL"], os.environ["CELERY_QUEUE_PREFIX"] = REDIS_URL, PREFIX
    with bench_django():
        from django.db import close_old_connections

        from guidelines import notifications, tasks
        from guidelines.models import AuditEvent, NotificationLog

        guideline = dataset()
        version = guideline.versions.published().get()
        day = reminder_day(version)
        empty_the_log()
        log(f"measuring queries per batch for {day}")
        batch_queries = queries_per_batch(day)
        empty_the_log()
        versions = notifications.current_versions()
        pending = sum(1 for _ in notifications.outstanding_employee_ids(versions, day))
        managers = sum(1 for _ in notifications.outstanding_employee_ids(versions, day, ("overdue",), managers=True))
        log(f"{pending} pending employees, {managers} managers to escalate to; starting the worker")
        with tempfile.TemporaryDirectory(prefix="bench-mail-") as mail_dir:
            log_path = Path(mail_dir) / "worker.log"
            worker = start_worker([f"{PREFIX}celery", f"{PREFIX}email"], log_path, env={
                "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": mail_dir})
            try:
                started = time.perf_counter()
                tasks.plan_reminders.delay(day.isoformat())
                expected = pending + managers
                while (sent := NotificationLog.objects.filter(status="sent").count()) < expected:
                    if time.perf_counter() - started > TIMEOUT:
                        raise SystemExit(f"only {sent} of {expected} e-mails after {TIMEOUT} s:\n"
                                         f"{log_path.read_text()[-3000:]}")
                    time.sleep(0.25)
                    close_old_connections()
                seconds = time.perf_counter() - started
                main_rss, child_rss = process_peak_rss_mb(worker.pid)
            finally:
                worker.terminate()
                worker.wait(timeout=60)
            durations = [float(line.split(" succeeded in ")[1].split("s:")[0])
                         for line in log_path.read_text().splitlines()
                         if "send_reminders[" in line and " succeeded in " in line]
            log("batch durations (s): " + " ".join(f"{d:.1f}" for d in durations))
            files = [path for path in Path(mail_dir).glob("*.log") if path.name != "worker.log"]
            written = sum(path.read_text(errors="replace").count("\nMessage-ID: <notification-") for path in files)
        planned = AuditEvent.objects.filter(action="reminders_planned").order_by("-at").first()
        worker_peak = max([main_rss, *child_rss])
        emit({
            "name": "reminder_cycle",
            "dataset": {"employees": EMPLOYEES, "pending": pending, "pending_share": round(pending / EMPLOYEES, 3)},
            "day": day.isoformat(),
            "emails": sent,
            "emails_written": written,
            "batches": planned.details["batches"] if planned else None,
            "seconds": round(seconds, 1),
            "emails_per_s": round(sent / seconds),
            "queries_per_batch": batch_queries,
            "worker_peak_rss_mb": {"main": main_rss, "children": child_rss},
            "target": f"<= {TARGET_SECONDS} s, worker <= {TARGET_RSS_MB} MB",
            "meets_target": seconds <= TARGET_SECONDS and worker_peak <= TARGET_RSS_MB,
        })
        empty_the_log()


if __name__ == "__main__":
    main()
