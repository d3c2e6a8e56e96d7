"""Benchmark of the employee import (`manage.py import_employees`) with a 100,000-row CSV.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guidelines python bench/bench_import.py [--rows N] [--keep]

Works on its own database (the DATABASE_URL name + "_bench_import"), which it drops and creates
afresh, migrates, and drops again at the end (--keep leaves it). Generates the CSV files in a
temporary directory: 20 departments, a CEO, department heads, team leads and their reports, about
5 % leavers. Each measurement runs the management command in a freshly forked child process, so
its peak RSS is its own. Prints one JSON object per line on stdout; progress goes to stderr.

Measurements, in order (each one starts from what the previous one left):
  import_employees_dry_run            empty database: everything would be created, nothing is
  import_employees_apply              the first import: every row created
  import_employees_reimport_unchanged the same file again: every row unchanged
  import_employees_reimport_changed   10 % of the rows changed (names, departments): updated
"""

import argparse
import codecs
import csv
import io
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    bench_database_url,
    configure_environment,
    emit,
    log,
    peak_rss_mb,
    prepare_database,
)

TARGET_SECONDS = 60
DEPARTMENTS = 20
LEADS_PER_DEPARTMENT = 10
FIRST_NAMES = ["Anna", "Bram", "Daan", "Emma", "Fleur", "Hugo", "Iris", "Jesse", "Lotte", "Milan", "Noor", "Sem"]
LAST_NAMES = ["de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "Mulder"]


def import_database_url(url):
    """bench/run.py's database name + "_import": <name>_bench_import, never the seeded <name>_bench."""
    url, name = bench_database_url(url)
    name = f"{name}_import"
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}")), name


def drop_database(url, name):
    import psycopg
    from psycopg import sql

    with psycopg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# Data ---------------------------------------------------------------------------------------


def people(rows):
    """Deterministic employees: E0000001 is the CEO, then heads, team leads and their reports."""
    heads = [f"E{n:07d}" for n in range(2, 2 + DEPARTMENTS)]
    leads_from = 2 + DEPARTMENTS
    leads = [f"E{n:07d}" for n in range(leads_from, leads_from + DEPARTMENTS * LEADS_PER_DEPARTMENT)]
    for n in range(1, rows + 1):
        number = f"E{n:07d}"
        department = (n - 1) % DEPARTMENTS
        if n == 1:
            manager = ""
        elif n < leads_from:
            manager = "E0000001"
        elif n < leads_from + len(leads):
            manager = heads[department]
        else:
            manager = leads[department * LEADS_PER_DEPARTMENT + n % LEADS_PER_DEPARTMENT]
        first, last = FIRST_NAMES[n % len(FIRST_NAMES)], LAST_NAMES[n % len(LAST_NAMES)]
        left = n > leads_from + len(leads) and n % 20 == 0  # about 5 % leavers, none of them managers
        yield {
            "employee_number": number,
            "email": f"{first}.{last.replace(' ', '')}.{n}@example.com".lower(),
            "first_name": first,
            "last_name": last,
            "department": f"Department {department + 1:02d}",
            "manager_employee_number": manager,
            "start_date": f"{2000 + n % 24}-{1 + n % 12:02d}-{1 + n % 28:02d}",
            "end_date": f"2025-{1 + n % 12:02d}-15" if left else "",
            "language": "en" if n % 3 == 0 else "nl",
        }


def changed(person, n):
    """Every tenth employee gets a new surname, half of those a new department as well."""
    if n % 10:
        return person
    person = {**person, "last_name": person["last_name"] + "-Bakker"}
    if n % 20 == 0:
        person["department"] = "Department 21"
    return person


def write_csv(path, rows, *, change=False):
    from guidelines.imports import COLUMNS

    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(codecs.BOM_UTF8.decode())  # as spreadsheets save "CSV UTF-8"
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter=";")
        writer.writeheader()
        for n, person in enumerate(people(rows), start=1):
            writer.writerow(changed(person, n) if change else person)
    return path


# Measuring ----------------------------------------------------------------------------------


def _child(conn, path, dry_run):
    from django.core.management import call_command

    from guidelines.models import ImportRun

    rss_at_start = peak_rss_mb()
    started = time.perf_counter()
    args = [str(path), "--dry-run"] if dry_run else [str(path)]
    call_command("import_employees", *args, stdout=io.StringIO())
    seconds = time.perf_counter() - started
    run = ImportRun.objects.order_by("-pk").first()
    conn.send({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_at_fork_mb": rss_at_start,
               "outcome": run.outcome, "counts": {"created": run.created, "updated": run.updated,
                                                  "unchanged": run.unchanged, "leavers": run.leavers}})
    conn.close()


def measure(name, path, rows, *, dry_run, expected):
    from django.db import connections

    log(f"{name}: importing {path.name}{' (dry run)' if dry_run else ''}")
    connections.close_all()  # the child must not share the parent's connection
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, path, dry_run))
    child.start()
    sender.close()
    result = receiver.recv() if receiver.poll(30 * 60) else None
    child.join()
    if child.exitcode != 0 or result is None:
        raise SystemExit(f"{name} failed (exit code {child.exitcode}).")
    counts_ok = all(result["counts"][key] == value for key, value in expected.items())
    seconds = result["seconds"]
    return {
        "name": name,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": result["peak_rss_mb"],
        "rss_at_fork_mb": result["rss_at_fork_mb"],
        "outcome": result["outcome"],
        "counts": result["counts"],
        "target": f"<={TARGET_SECONDS} s",
        "meets_target": seconds <= TARGET_SECONDS and counts_ok,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args()
    if args.rows < 1000:
        raise SystemExit("--rows must be at least 1000 (the org chart needs heads and team leads).")

    url, name = import_database_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    prepare_database(url, name, reseed=True)  # a fresh database every time
    configure_environment(url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    try:
        log(f"migrating {name}")
        call_command("migrate", interactive=False, verbosity=0)
        with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
            log(f"writing {args.rows} rows")
            base = write_csv(Path(folder) / "employees.csv", args.rows)
            update = write_csv(Path(folder) / "employees-changed.csv", args.rows, change=True)
            log(f"{base.stat().st_size / 1e6:.1f} MB per file")
            rows, tenth = args.rows, args.rows // 10
            emit(measure("import_employees_dry_run", base, rows, dry_run=True, expected={"created": rows}))
            emit(measure("import_employees_apply", base, rows, dry_run=False, expected={"created": rows}))
            emit(measure("import_employees_reimport_unchanged", base, rows, dry_run=False,
                         expected={"unchanged": rows, "updated": 0}))
            emit(measure("import_employees_reimport_changed", update, rows, dry_run=False,
                         expected={"updated": tenth, "unchanged": rows - tenth}))
    finally:
        connections.close_all()
        if not args.keep:
            log(f"dropping database {name}")
            drop_database(url, name)
    log("done")


if __name__ == "__main__":
    main()
