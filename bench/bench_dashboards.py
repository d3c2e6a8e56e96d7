"""Benchmark: the dashboards and the CSV export at 100,000 employees and 50 versions.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guidelines python bench/bench_dashboards.py [--runs N]

Uses the `<name>_bench` database of bench/run.py (seeded there if missing) and reads it only, apart
from one HR account. Each page is requested as HR through django.test.Client (warm-up, then timed
runs) and compared with a hand-written SQL aggregate of the same counts over the same
acknowledgements, timed the same way in the same run. The export streams every in-scope employee
in a forked child, which reports its rows per second and how far its memory grew. One JSON object
per line on stdout; progress on stderr.
"""

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (  # noqa: E402
    bench_django,
    count_queries,
    emit,
    find_dataset,
    log,
    percentile,
    seed,
    time_requests,
)

EMPLOYEES, VERSIONS = 100_000, 50
PAGE_TARGET = 2.0  # page median <= 2x the raw SQL median
ROWS_PER_S_TARGET = 50_000
RSS_GROWTH_TARGET_MB = 50

# The counts of one version, written by hand as a competent SQL author would for this guideline:
# employees employed today (and in the audience), LEFT JOINed to their acknowledgement of the major
# version (without a re-acknowledgement interval the first one, cycle 1, is the one that counts),
# their active exemption and their latest extension. The ORM pages are measured against this.
RAW_COUNTS = """
SELECT %(version)s,
       count(*) FILTER (WHERE x.employee_id IS NULL AND a.id IS NOT NULL) AS acknowledged,
       count(*) FILTER (WHERE x.employee_id IS NULL AND a.id IS NULL AND NOT {overdue}) AS pending,
       count(*) FILTER (WHERE x.employee_id IS NULL AND a.id IS NULL AND {overdue}) AS overdue,
       count(*) FILTER (WHERE x.employee_id IS NOT NULL) AS exempt
FROM guidelines_employee e
JOIN auth_user u ON u.id = e.user_id
LEFT JOIN guidelines_acknowledgement a
       ON a.employee_id = e.id AND a.guideline_id = %(guideline)s AND a.major = %(major)s AND a.cycle = 1
LEFT JOIN (SELECT DISTINCT employee_id FROM guidelines_exemption
           WHERE guideline_id = %(guideline)s AND revoked_at IS NULL AND starts_on <= %(day)s
             AND (ends_on IS NULL OR ends_on >= %(day)s)) x ON x.employee_id = e.id
LEFT JOIN (SELECT DISTINCT ON (employee_id) employee_id, due_date FROM guidelines_duedateextension
           WHERE guideline_id = %(guideline)s AND major = %(major)s
           ORDER BY employee_id, granted_at DESC, id DESC) d ON d.employee_id = e.id
WHERE u.is_active AND (e.start_date IS NULL OR e.start_date <= %(day)s)
  AND (e.end_date IS NULL OR e.end_date > %(day)s) {audience}
"""
OVERDUE = "(COALESCE(d.due_date, GREATEST(%(published_on)s, e.start_date) + %(due_days)s) < %(day)s)"
AUDIENCE = """AND (e.department_id IN (SELECT department_id FROM guidelines_guideline_audience_departments
                              WHERE guideline_id = %(guideline)s)
     OR e.user_id IN (SELECT ug.user_id FROM auth_user_groups ug
                      JOIN guidelines_guideline_audience_groups ag ON ag.group_id = ug.group_id
                      WHERE ag.guideline_id = %(guideline)s))"""


def hr_client():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    hr, _ = get_user_model().objects.get_or_create(username="bench-hr@example.com",
                                                   defaults={"email": "bench-hr@example.com"})
    hr.groups.add(Group.objects.get(name="HR"))
    client = Client()
    client.force_login(hr)
    return client


def get_page(client, path):
    def request():
        response = client.get(path, secure=True)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}, expected 200.")
        return True

    return request


def raw_counts(versions):
    """A callable running the hand-written counts of these versions, one statement each, and their result."""
    from django.db import connection
    from django.utils import timezone

    day = timezone.localdate()
    statements = []
    for version in versions:
        guideline = version.guideline
        if guideline.reacknowledge_days:
            raise SystemExit(f"{guideline.slug}: RAW_COUNTS does not handle re-acknowledgement intervals.")
        sql = RAW_COUNTS.format(overdue=OVERDUE, audience="" if guideline.audience_everyone else AUDIENCE)
        statements.append((sql, {
            "version": version.pk, "guideline": guideline.pk, "major": version.major, "day": day,
            "published_on": timezone.localdate(version.published_at), "due_days": guideline.due_days,
        }))

    def request():
        request.rows = []
        with connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
                request.rows.extend(cursor.fetchall())
        return True

    request()
    return request, {version_id: counts for version_id, *counts in request.rows}


def check_same_counts(raw, versions):
    """The page's figures and the raw SQL's must agree, or the comparison means nothing."""
    from django.utils import timezone

    from guidelines import dashboards

    orm = dashboards.version_counts(versions, timezone.localdate())
    for version in versions:
        mine = orm[version.pk]
        if [mine.acknowledged, mine.pending, mine.overdue, mine.exempt] != list(raw[version.pk]):
            raise SystemExit(f"Counts differ for version {version.pk}: ORM {mine}, raw SQL {raw[version.pk]}.")


def compare(name, path, client, versions, dataset, args):
    log(f"measuring {name}: {path}")
    page = get_page(client, path)
    durations = time_requests(page, runs=args.runs, warmup=args.warmup)
    raw, counts = raw_counts(versions)
    check_same_counts(counts, versions)
    log(f"measuring the raw SQL aggregate for {name}")
    raw_durations = time_requests(raw, runs=args.runs, warmup=args.warmup)
    median, raw_median = statistics.median(durations), statistics.median(raw_durations)
    ratio = median / raw_median
    return {
        "name": name,
        "path": path,
        "dataset": dataset,
        "runs": len(durations),
        "median_ms": round(median, 1),
        "p95_ms": round(percentile(durations, 0.95), 1),
        "queries": count_queries(page),
        "raw_sql_median_ms": round(raw_median, 1),
        "raw_sql_p95_ms": round(percentile(raw_durations, 0.95), 1),
        "ratio_to_raw_sql": round(ratio, 2),
        "target": f"<={PAGE_TARGET}x raw SQL",
        "meets_target": ratio <= PAGE_TARGET,
    }


def memory_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/self/status has no {field}.")


def _export_child(client, path, results):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # Reset the high-water mark to what the child holds now (Linux >= 4.0), so the peak is the export's.
    Path("/proc/self/clear_refs").write_text("5")
    baseline = memory_kib("VmRSS")
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, secure=True)
        size = lines = 0
        for chunk in response.streaming_content:
            size += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    results.put({"status": response.status_code, "streaming": response.streaming, "rows": lines - 1,
                 "bytes": size, "seconds": seconds, "queries": len(queries.captured_queries),
                 "baseline_mb": baseline / 1024, "peak_mb": memory_kib("VmHWM") / 1024})
    connection.close()


def measure_export(client, slug, dataset):
    """Stream the whole export in a forked child: its own memory high-water mark, nothing else's."""
    from django.db import connections

    path = f"/dashboards/{slug}/export.csv"
    log(f"measuring the export: {path}")
    connections.close_all()  # the child must not share the parent's connection
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_export_child, args=(client, path, results))
    child.start()
    result = results.get()
    child.join()
    if child.exitcode != 0 or result["status"] != 200 or not result["streaming"]:
        raise SystemExit(f"The export failed: exit code {child.exitcode}, {result}.")
    rows_per_s = result["rows"] / result["seconds"]
    growth = result["peak_mb"] - result["baseline_mb"]
    return {
        "name": "dashboard_export_csv",
        "path": path,
        "dataset": dataset,
        "rows": result["rows"],
        "megabytes": round(result["bytes"] / 1_000_000, 1),
        "seconds": round(result["seconds"], 2),
        "queries": result["queries"],
        "rows_per_s": round(rows_per_s),
        "baseline_rss_mb": round(result["baseline_mb"], 1),
        "peak_rss_mb": round(result["peak_mb"], 1),
        "rss_growth_mb": round(growth, 1),
        "target": f">={ROWS_PER_S_TARGET} rows/s, <={RSS_GROWTH_TARGET_MB} MB RSS growth",
        "meets_target": rows_per_s >= ROWS_PER_S_TARGET and growth <= RSS_GROWTH_TARGET_MB,
    }


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="timed requests per case")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per case first")
    return parser.parse_args()


def main():
    args = parse_args()
    with bench_django():
        from django.utils import timezone

        from guidelines import dashboards
        from guidelines.models import Version

        guideline = find_dataset(EMPLOYEES, VERSIONS)
        if guideline is None:
            emit(seed(EMPLOYEES, VERSIONS))
            guideline = find_dataset(EMPLOYEES, VERSIONS)
        client = hr_client()
        version = guideline.versions.published().get()
        version.guideline = guideline
        current = list(Version.objects.published().filter(guideline__retired_at__isnull=True)
                       .select_related("guideline"))
        counts = dashboards.summary(version, timezone.localdate()).counts
        dataset = {"employees": EMPLOYEES, "versions": guideline.versions.released().count(),
                   "in_scope": counts.in_scope, "acknowledged": counts.acknowledged}
        log(f"guideline {guideline.slug}, version {version.number}: {counts}; {len(current)} current guidelines")
        emit(compare("dashboard_guideline", f"/dashboards/{guideline.slug}/", client, [version], dataset, args))
        emit(compare("dashboard_overview", "/dashboards/", client, current,
                     {**dataset, "current_guidelines": len(current)}, args))
        emit(measure_export(client, guideline.slug, dataset))


if __name__ == "__main__":
    main()
