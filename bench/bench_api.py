"""Benchmark: the API's per-employee status list at 100,000 employees, 1,000 per page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guidelines python bench/bench_api.py [--runs N]

Uses the `<name>_bench` database of bench/run.py (seeded there if missing) and reads it only, apart
from a service account and its token. The first page and a page in the middle of the list (by its
cursor) are requested through django.test.Client with the token, as a GRC tool would, and compared
with the very SQL statement the page runs for its rows, executed on its own through a cursor and
fetched, timed the same way in the same run (interleaved, round by round). The difference is what
the API adds: the token check, the role check, the cursor and the JSON. Then the whole list, read
page by page as a GRC tool does, against all its pages' SQL; and the first page with its query built
and compiled anew for every request, which is what the first request of a crawl costs (the API
compiles the query once per version, day, filters and page size: guidelines/api/views.py). One JSON
object per line on stdout; progress on stderr.
"""

import argparse
import statistics
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import bench_django, emit, find_dataset, log, percentile, seed  # noqa: E402

EMPLOYEES, VERSIONS = 100_000, 50
PAGE_SIZE = 1000
TARGET = 2.0  # page median <= 2x the raw SQL of its rows


def service_token():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from guidelines import api_tokens

    User = get_user_model()
    root, _ = User.objects.get_or_create(username="bench-root@example.com",
                                         defaults={"is_superuser": True, "is_staff": True})
    account, _ = User.objects.get_or_create(username="bench-grc@example.com")
    account.set_unusable_password()
    account.save()
    account.groups.add(Group.objects.get(name="Auditors"))
    return api_tokens.issue(by=root, name="bench", account=account, scopes=["status:read"],
                            expires_at=timezone.now() + timedelta(days=1))[1]


def page_request(client, path, params):
    def request():
        response = client.get(path, params, secure=True)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} {params} answered {response.status_code}: {response.content[:300]!r}")
        request.body = response.content
        return True

    return request


def rows_statement(request):
    """The SQL of the page's rows (the largest query it runs), as the database received it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        request()
    statement = max(captured.captured_queries, key=lambda query: len(query["sql"]))["sql"]
    return statement, len(captured.captured_queries)


def raw_request(sql):
    from django.db import connection

    def request():
        with connection.cursor() as cursor:
            cursor.execute(sql)
            request.rows = cursor.fetchall()
        return True

    return request


def interleaved(requests, runs, warmup):
    import gc
    import time

    for _ in range(warmup):
        for request in requests:
            request()
    gc.collect()
    durations = [[] for _ in requests]
    for _ in range(runs):
        for index, request in enumerate(requests):
            started = time.perf_counter()
            request()
            durations[index].append((time.perf_counter() - started) * 1000)
    return durations


def measure(name, client, path, params, dataset, args):
    import json

    log(f"measuring {name}: {path} {params}")
    page = page_request(client, path, params)
    sql, queries = rows_statement(page)
    raw = raw_request(sql)
    raw()
    rows = len(json.loads(page.body)["results"])
    if rows != len(raw.rows) - (1 if len(raw.rows) > PAGE_SIZE else 0):
        raise SystemExit(f"{name}: the page has {rows} rows, its SQL {len(raw.rows)}: not the same query.")
    page_ms, raw_ms = interleaved([page, raw], args.runs, args.warmup)
    median, raw_median = statistics.median(page_ms), statistics.median(raw_ms)
    return {
        "name": name, "path": path, "params": params, "dataset": dataset, "rows": rows, "runs": args.runs,
        "queries": queries, "median_ms": round(median, 1), "p95_ms": round(percentile(page_ms, 0.95), 1),
        "raw_sql_median_ms": round(raw_median, 1), "raw_sql_p95_ms": round(percentile(raw_ms, 0.95), 1),
        "ratio_to_raw_sql": round(median / raw_median, 2), "target": f"<={TARGET}x the raw SQL of its rows",
        "meets_target": median / raw_median <= TARGET,
    }


def crawl(client, path, args):
    """The whole list, page by page as a GRC tool reads it, against every page's SQL run on its own;
    and the first page with its query compiled anew for each request (the first request of a crawl)."""
    import json
    import time

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from guidelines.api import views

    log(f"crawling {path}")
    statements, pages_ms, raw_ms = [], [], []
    for run in range(args.crawls):
        url, params, started = path, {"page_size": PAGE_SIZE}, time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            while url:
                response = client.get(url, params, secure=True)
                url, params = json.loads(response.content)["next"], None
        pages_ms.append((time.perf_counter() - started) * 1000)
        if run == 0:
            statements = [query["sql"] for query in captured.captured_queries if "guidelines_employee" in query["sql"]
                          and "LIMIT" in query["sql"]]
        started = time.perf_counter()
        for sql in statements:
            raw_request(sql)()
        raw_ms.append((time.perf_counter() - started) * 1000)
    median, raw_median = statistics.median(pages_ms), statistics.median(raw_ms)
    yield {
        "name": "api_employee_status_whole_list", "path": path, "pages": len(statements), "runs": args.crawls,
        "median_ms": round(median, 1), "raw_sql_median_ms": round(raw_median, 1),
        "ratio_to_raw_sql": round(median / raw_median, 2), "target": f"<={TARGET}x the raw SQL of its pages",
        "meets_target": median / raw_median <= TARGET,
    }

    def uncompiled():
        views._first_pages.clear()
        return page()

    page = page_request(client, path, {"page_size": PAGE_SIZE})
    sql, _queries = rows_statement(page)
    cold_ms, raw_first_ms = interleaved([uncompiled, raw_request(sql)], args.runs, args.warmup)
    yield {
        "name": "api_employee_status_first_page_compiled_each_time", "path": path, "runs": args.runs,
        "median_ms": round(statistics.median(cold_ms), 1),
        "raw_sql_median_ms": round(statistics.median(raw_first_ms), 1),
        "ratio_to_raw_sql": round(statistics.median(cold_ms) / statistics.median(raw_first_ms), 2),
        "note": "the first request of a crawl, or of another version, day, filter or page size: the query is "
                "built and compiled for it (informational; the target is for the pages above)",
    }


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="timed requests per case")
    parser.add_argument("--crawls", type=int, default=5, help="times the whole list is read")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per case first")
    return parser.parse_args()


def main():
    args = parse_args()
    with bench_django():
        from django.test import Client

        from guidelines.api.views import _encode_cursor
        from guidelines.models import Employee

        guideline = find_dataset(EMPLOYEES, VERSIONS)
        if guideline is None:
            emit(seed(EMPLOYEES, VERSIONS))
            guideline = find_dataset(EMPLOYEES, VERSIONS)
        version = guideline.versions.published().get()
        client = Client(headers={"authorization": f"Bearer {service_token()}"})
        path = f"/api/v1/versions/{version.pk}/employees/"
        middle = Employee.objects.order_by("employee_number").values_list("employee_number", flat=True)[
            EMPLOYEES // 2]
        dataset = {"employees": Employee.objects.count(), "version": version.number, "page_size": PAGE_SIZE}
        emit(measure("api_employee_status_first_page", client, path, {"page_size": PAGE_SIZE}, dataset, args))
        emit(measure("api_employee_status_middle_page", client, path,
                     {"page_size": PAGE_SIZE, "cursor": _encode_cursor(middle)}, dataset, args))
        for line in crawl(client, path, args):
            emit({**line, "dataset": dataset})


if __name__ == "__main__":
    main()
