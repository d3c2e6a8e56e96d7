"""Benchmark: the "as of" auditor pack's evidence at 100,000 employees read from the organisation's
history, against the same pack reading today's tables (what it cost before history was kept).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guidelines python bench/bench_organisation.py [--employees 100000]

Own database (<name>_organisation_bench): one scale guideline published yesterday, 90 % acknowledged,
seeded once. Its history is made realistic once: a fifth of the employees get a record from two days
ago in another department (so yesterday reads a different department than today), another fifth move
department today (a second record, made by the triggers). The pack is as of yesterday.

Two measures, each with history and without (the same pack reading today's tables):
- `as_of_pack_evidence`: everything the pack reads from the database (reports.contents: the
  population, the counts per department, every per-employee row streamed, the outstanding list with
  its reminders), medians of interleaved runs. The strict measure: the PDF layout, the same work
  either way, is left out.
- `as_of_pack` (left out with --no-pdf): the whole pack generated in this process (prepare, every table chunk,
  the join), one run each; minutes at 100,000 employees.
Target: with history <= 1.2x without. Prints one JSON object per line.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.run import DEFAULT_DATABASE_URL, emit, log  # noqa: E402

TARGET = 1.2


def make_history(share=0.2):
    """Backdated records for one share of the employees, today's moves for another (once)."""
    from django.db import connection
    from django.utils import timezone

    from guidelines.models import Department, Employee, EmployeeHistory

    if EmployeeHistory.objects.filter(pgh_label="bench-backdated").exists():
        return
    departments = list(Department.objects.values_list("pk", flat=True))
    ids = list(Employee.objects.order_by("pk").values_list("pk", "department_id"))
    step = round(1 / share)
    backdated = [(pk, departments[(departments.index(dept) + 1) % len(departments)] if dept else departments[0])
                 for pk, dept in ids[::step]]
    moved = ids[1::step]
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO guidelines_employeehistory (pgh_created_at, pgh_label, pgh_obj_id, department_id, "
            "manager_id, start_date, end_date) SELECT %s, 'bench-backdated', id, %s, manager_id, start_date, end_date "
            "FROM guidelines_employee WHERE id = %s",
            [(timezone.now() - timedelta(days=2), department, pk) for pk, department in backdated])
    for pk, dept in moved:
        Employee.objects.filter(pk=pk).update(
            department=departments[(departments.index(dept) + 2) % len(departments)] if dept else departments[0])
    log(f"history: {len(backdated)} backdated records, {len(moved)} moves today")


def read_pack(pack):
    """Everything the pack reads from the database; returns the number of per-employee rows."""
    from guidelines.reports import contents

    contents.version_sections(pack)
    return sum(1 for version in pack.versions for _row in contents.employee_rows(pack, version))


def whole_pack(guideline, day, organisation):
    """The whole pack, generated in this process, with history and without."""
    import tempfile

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test.utils import override_settings

    from guidelines.reports import jobs

    auditor = get_user_model().objects.get_or_create(username="bench-auditor@example.com",
                                                      defaults={"email": "bench-auditor@example.com"})[0]
    auditor.groups.add(Group.objects.get(name="Auditors"))
    keeps_history, seconds = organisation.keeps_history, {}
    with tempfile.TemporaryDirectory(prefix="bench-media-") as media, override_settings(MEDIA_ROOT=media):
        for case in ("with_history", "without_history"):
            organisation.keeps_history = keeps_history if case == "with_history" else (lambda: False)
            log(f"whole pack, {case.replace('_', ' ')}")
            started = time.perf_counter()
            report = jobs.generate_now(jobs.start_audit_pack(user=auditor, guideline_slug=guideline.slug,
                                                             as_of=day.isoformat(), language="en"))
            seconds[case] = time.perf_counter() - started
            organisation.keeps_history = keeps_history
            assert report.status == "done", report.error
    ratio = seconds["with_history"] / seconds["without_history"]
    emit({"name": "as_of_pack", "rows": report.rows, "pages": report.pages,
          **{f"{case}_s": round(value, 1) for case, value in seconds.items()},
          "ratio": round(ratio, 2), "target": f"<= {TARGET}x", "meets_target": ratio <= TARGET})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--employees", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-pdf", dest="pdf", action="store_false",
                        help="leave out the whole pack (generated once with and once without: minutes)")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL).rstrip("/") + "_organisation"
    from bench.run import bench_django

    with bench_django():
        from django.utils import timezone

        from guidelines import organisation
        from guidelines.models import Employee, EmployeeHistory, Guideline
        from guidelines.reports import contents

        guideline = Guideline.objects.filter(slug__startswith="scale-").first()
        if guideline is None or Employee.objects.count() < args.employees:
            log(f"seeding {args.employees} employees")
            subprocess.run([sys.executable, "manage.py", "seed_scale", f"--employees={args.employees}",
                            "--versions=1"], cwd=BASE_DIR, check=True, env=os.environ, stdout=subprocess.DEVNULL)
            guideline = Guideline.objects.filter(slug__startswith="scale-").first()
        make_history()
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would have by the time an auditor asks
        day = timezone.localdate() - timedelta(days=1)
        pack = contents.parse_pack(guideline_slug=guideline.slug, as_of=day.isoformat())
        assert organisation.organisation_on(day).historical
        keeps_history = organisation.keeps_history
        timings = {"with_history": [], "without_history": []}
        rows = {}
        for _round in range(args.runs + 1):  # the first round warms the caches and is not counted
            for case in timings:
                organisation.keeps_history = keeps_history if case == "with_history" else (lambda: False)
                started = time.perf_counter()
                rows[case] = read_pack(pack)
                if _round:
                    timings[case].append(time.perf_counter() - started)
        organisation.keeps_history = keeps_history
        if args.pdf:
            whole_pack(guideline, day, organisation)
        with_history, without = (statistics.median(timings[case]) for case in ("with_history", "without_history"))
        emit({
            "name": "as_of_pack_evidence", "employees": Employee.objects.count(),
            "history_rows": EmployeeHistory.objects.count(), "as_of": day.isoformat(),
            "rows": rows, "runs": args.runs,
            "with_history_median_s": round(with_history, 3), "without_history_median_s": round(without, 3),
            "ratio": round(with_history / without, 2), "target": f"<= {TARGET}x",
            "meets_target": with_history / without <= TARGET,
        })


if __name__ == "__main__":
    main()
