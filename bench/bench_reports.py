"""Benchmark: the auditor pack for 1,000, 10,000 and 100,000 employees against plain WeasyPrint on a
bare HTML table of the same rows (the engine's floor on this machine), and the certificate.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guidelines python bench/bench_reports.py [--sizes 1000,10000]

Each size has its own database (<name>_reports<N>_bench: one guideline, 90 % acknowledged),
seeded once. The pack is generated the production way: a real Celery worker (prefork, two
processes) on Redis (BENCH_REDIS_URL) prepares, renders the table chunks in parallel and joins
them. The floor runs in a fresh process per size; at 100,000 rows it is not run (one WeasyPrint
layout of 100,000 table rows needs about 20 GB and a quarter of an hour; see the note it prints).
Prints one JSON object per line.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.run import DEFAULT_DATABASE_URL, emit, log, process_peak_rss_mb, start_worker  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
FLOOR_LIMIT = 10_000
TARGETS = {10_000: "<= 1.5x floor, <= 500 MB per process", 100_000: "<= 300 s with two workers, <= 500 MB per process"}


def floor(rows):
    """Plain WeasyPrint: one HTML table of `rows` rows with the pack's columns, in this process."""
    from weasyprint import HTML

    cells = "".join(
        f"<tr><td>Employee {n} Example</td><td>S{n:07d}</td><td>Scale department {n % 20:02d}</td><td>acknowledged</td>"
        f"<td>1.0</td><td>nl</td><td>2026-11-20 10:{n % 60:02d}</td><td>web</td><td>{n:064x}</td></tr>"
        for n in range(rows)
    )
    source = (f"<html><head><style>@page {{ size: A4 landscape; margin: 18mm 12mm 14mm 12mm }} "
              f"table {{ border-collapse: collapse; font: 7pt 'DejaVu Sans Mono' }}</style></head>"
              f"<body><table><thead><tr><th>Name</th><th>Number</th><th>Department</th><th>Status</th><th>Version</th>"
              f"<th>Lang</th><th>Acknowledged at</th><th>Channel</th><th>SHA-256</th></tr></thead>"
              f"<tbody>{cells}</tbody></table></body></html>")
    started = time.perf_counter()
    with tempfile.NamedTemporaryFile(suffix=".pdf") as target:
        HTML(string=source).write_pdf(target.name)
    return time.perf_counter() - started


def one_size(rows):
    """Seed (once), run the pack on a real worker and the certificate; print the figures."""
    os.environ["DATABASE_URL"] = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL).rstrip("/") + f"_reports{rows}"
    prefix = f"benchpdf-{uuid.uuid4().hex[:6]}-"
    os.environ.update(CELERY_BROKER_URL=REDIS_URL, CELERY_QUEUE_PREFIX=prefix)
    media = tempfile.mkdtemp(prefix="bench-media-")
    os.environ["MEDIA_ROOT"] = media
    from bench.run import bench_django

    with bench_django():
        from django.contrib.auth import get_user_model

        from guidelines import tasks
        from guidelines.models import Acknowledgement, Employee, Guideline, Report
        from guidelines.reports import jobs

        guideline = Guideline.objects.filter(slug__startswith="scale-").first()
        if guideline is None or Employee.objects.count() < rows:
            log(f"seeding {rows} employees")
            subprocess.run([sys.executable, "manage.py", "seed_scale", f"--employees={rows}", "--versions=1"],
                           cwd=BASE_DIR, check=True, env=os.environ, stdout=subprocess.DEVNULL)
            guideline = Guideline.objects.filter(slug__startswith="scale-").first()
        auditor = get_user_model().objects.get_or_create(username="bench-auditor@example.com",
                                                          defaults={"email": "bench-auditor@example.com"})[0]
        log_path = Path(media) / "worker.log"
        worker = start_worker([f"{prefix}celery"], log_path)
        try:
            report = jobs.start_audit_pack(user=auditor, guideline_slug=guideline.slug, language="en")
            started = time.perf_counter()
            tasks.generate_report.delay(report.pk)
            while Report.objects.get(pk=report.pk).status not in ("done", "failed"):
                if time.perf_counter() - started > 1200:
                    raise SystemExit("the pack took over 20 minutes")
                time.sleep(0.25)
            seconds = time.perf_counter() - started
            main_rss, child_rss = process_peak_rss_mb(worker.pid)
        finally:
            worker.terminate()
            worker.wait(timeout=120)
        report.refresh_from_db()
        if report.status != "done":
            raise SystemExit(f"the pack failed: {report.error}\n{log_path.read_text()[-3000:]}")
        certificate_runs = []
        ack = Acknowledgement.objects.filter(guideline=guideline).first()
        for _ in range(10):
            before = time.perf_counter()
            jobs.certificate(acknowledgement=ack, user=auditor, language="en")
            certificate_runs.append(time.perf_counter() - before)
        print(json.dumps({
            "rows": report.rows, "pages": report.pages, "seconds": round(seconds, 1),
            "chunks": report.progress_total, "size_mb": round(report.size / 1e6, 1),
            "worker_peak_rss_mb": {"main": main_rss, "children": child_rss},
            "certificate_median_s": round(statistics.median(certificate_runs), 3),
            "requester_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }), flush=True)


def run_child(arguments):
    result = subprocess.run([sys.executable, __file__, *arguments], cwd=BASE_DIR, capture_output=True, text=True,
                            env=os.environ)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(arguments)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    sys.stderr.write(result.stderr[-1500:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        seconds = floor(args.floor)
        print(json.dumps({"seconds": round(seconds, 1),
                          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
        return
    if args.one:
        one_size(args.one)
        return
    for rows in (int(size) for size in args.sizes.split(",")):
        if rows <= FLOOR_LIMIT:
            log(f"floor: bare WeasyPrint table of {rows} rows")
            bare = run_child(["--floor", str(rows)])
            emit({"name": "report_floor_bare_table", "rows": rows, **bare})
        else:
            bare = None
            emit({"name": "report_floor_bare_table", "rows": rows, "skipped": True,
                  "note": "one WeasyPrint layout of this many table rows needs ~20 GB and ~1000 s "
                          "(2 GB and ~100 s per 10,000 rows, linear); not run"})
        log(f"auditor pack for {rows} employees on a real worker (2 processes)")
        pack = run_child(["--one", str(rows)])
        peak = max([pack["worker_peak_rss_mb"]["main"], *pack["worker_peak_rss_mb"]["children"]])
        record = {"name": "report_auditor_pack", **pack, "ratio_to_floor": round(pack["seconds"] / bare["seconds"], 2)
                  if bare else None, "seconds_per_1000_rows": round(pack["seconds"] / pack["rows"] * 1000, 2)}
        if rows in TARGETS:
            record["target"] = TARGETS[rows]
            limit_ok = peak <= 500
            record["meets_target"] = limit_ok and (
                record["ratio_to_floor"] <= 1.5 if rows == 10_000 else pack["seconds"] <= 300)
        emit(record)
        emit({"name": "report_certificate", "rows": rows, "median_s": pack["certificate_median_s"],
              "target": "<= 1 s", "meets_target": pack["certificate_median_s"] <= 1})


if __name__ == "__main__":
    main()
