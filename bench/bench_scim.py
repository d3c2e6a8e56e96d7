"""Benchmark of SCIM provisioning (/scim/v2/) with 100,000 employees: what Entra ID's requests cost
when each write is a one-row import that loads only the rows it concerns.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guidelines python bench/bench_scim.py [--rows N] [--keep]

Works on its own database (the DATABASE_URL name + "_bench_scim"), which it drops and creates afresh,
migrates, fills with bench_import.py's employees through the HR import, and drops again at the end
(--keep leaves it). Each request runs `--runs` times through Django's test client with a scim:provision
token of an HR service account; one JSON object per measurement on stdout (median and slowest time,
queries), progress on stderr.
"""

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_import import drop_database, write_csv  # noqa: E402
from bench.run import DEFAULT_DATABASE_URL, bench_database_url, configure_environment, emit, log, prepare_database  # noqa: E402

TARGET_MS = 100  # a write, at 100,000 employees
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def scim_database_url(url):
    url, name = bench_database_url(url)
    name = f"{name}_scim"
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}")), name


def measure(name, request, runs, *, target_ms=TARGET_MS):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    durations, statuses = [], set()
    for run in range(runs):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = request(run)
            durations.append((time.perf_counter() - started) * 1000)
        statuses.add(response.status_code)
    median = statistics.median(durations)
    return {"name": name, "runs": runs, "median_ms": round(median, 1), "max_ms": round(max(durations), 1),
            "queries": len(queries), "statuses": sorted(statuses), "target": f"median <={target_ms} ms",
            "meets_target": median <= target_ms and all(status < 400 for status in statuses)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args()

    url, name = scim_database_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    prepare_database(url, name, reseed=True)
    configure_environment(url)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client
    from django.utils import timezone

    from guidelines import api_tokens
    from guidelines.models import Employee

    try:
        log(f"migrating {name}")
        call_command("migrate", interactive=False, verbosity=0)
        with tempfile.TemporaryDirectory(prefix="bench-scim-") as folder:
            log(f"importing {args.rows} employees")
            call_command("import_employees", str(write_csv(Path(folder) / "employees.csv", args.rows)),
                         stdout=io.StringIO())
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum soon would after 100,000 new rows
        User = get_user_model()
        root = User.objects.create_user("root@bench.example", "root@bench.example", is_superuser=True,
                                        is_staff=True)
        account = User.objects.create_user("entra@bench.example", "entra@bench.example")
        account.set_unusable_password()
        account.save()
        account.groups.add(Group.objects.get(name="HR"))
        _token, plain = api_tokens.issue(by=root, name="bench", account=account, scopes=["scim:provision"],
                                         expires_at=timezone.now() + timedelta(days=1))
        client = Client(headers={"authorization": f"Bearer {plain}"}, secure=True)
        person = Employee.objects.filter(manager__isnull=False, end_date__isnull=True).order_by("-pk").first()
        managers = list(Employee.objects.filter(direct_reports__isnull=False).distinct()
                        .values_list("pk", flat=True)[:2])

        def patch(pk, operations):
            return client.patch(f"/scim/v2/Users/{pk}", json.dumps({"schemas": [PATCH_OP], "Operations": operations}),
                                content_type="application/scim+json")

        address = person.user.email.upper()
        emit(measure("scim_get_filter_username", lambda run: client.get(
            "/scim/v2/Users", {"filter": f'userName eq "{address}"'}), args.runs))
        emit(measure("scim_patch_given_name", lambda run: patch(person.pk, [
            {"op": "Replace", "path": "name.givenName", "value": f"Bench {run}"}]), args.runs))
        emit(measure("scim_patch_manager", lambda run: patch(person.pk, [
            {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": str(managers[run % 2])}]), args.runs))
        emit(measure("scim_post_user", lambda run: client.post("/scim/v2/Users", json.dumps({
            "userName": f"new.{run}@bench.example", "externalId": f"N{run:07d}",
            ENTERPRISE: {"department": "Department 01", "manager": {"value": str(managers[0])}}}),
            content_type="application/scim+json"), args.runs))
    finally:
        connections.close_all()
        if not args.keep:
            drop_database(url, name)


if __name__ == "__main__":
    main()
