"""Benchmark: publishing a material version for an audience of 100,000 employees.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guidelines python bench/bench_publish.py

Uses the `<name>_bench` database of bench/run.py (seeded there if missing). Publishes new versions
of its own guideline ("publish-bench", audience: everyone), so the scale guideline stays as it is.
Prints one JSON object per line: the publish POST (time in the request, queries) and the
confirmation page that counts who will be asked.
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (  # noqa: E402
    bench_django,
    emit,
    find_dataset,
    log,
    peak_rss_mb,
    percentile,
    seed,
)

RUNS = 10
EMPLOYEES, VERSIONS = 100_000, 50


def hr_user():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    User = get_user_model()
    hr, _ = User.objects.get_or_create(username="bench-hr@example.com", defaults={"email": "bench-hr@example.com"})
    hr.groups.add(Group.objects.get(name="HR"))
    approver, _ = User.objects.get_or_create(username="bench-approver@example.com",
                                             defaults={"email": "bench-approver@example.com"})
    approver.groups.add(Group.objects.get(name="Approvers"))
    return User.objects.get(pk=hr.pk), User.objects.get(pk=approver.pk)


def approved_draft(guideline, hr, approver):
    from guidelines import publishing
    from guidelines.models import Version

    version = publishing.save_draft(version=Version(guideline=guideline), by=hr, texts={
        "nl": ("Richtlijn", "# Richtlijn\n\nTekst.\n", ""),
        "en": ("Guideline", "# Guideline\n\nText.\n", ""),
    })
    return publishing.approve_version(version=version, by=approver)


def main():
    with bench_django():
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        from guidelines import publishing
        from guidelines.models import Employee, Guideline

        if find_dataset(EMPLOYEES, VERSIONS) is None:
            emit(seed(EMPLOYEES, VERSIONS))
        hr, approver = hr_user()
        guideline, created = Guideline.objects.get_or_create(
            slug="publish-bench", defaults={"title_nl": "Publicatiebenchmark", "title_en": "Publish benchmark",
                                            "owner": hr, "due_days": 30})
        if created:
            publishing.publish_version(version=approved_draft(guideline, hr, approver), by=hr, material=True)
        audience = Employee.objects.employed_on(timezone.localdate()).in_audience_of(guideline).count()
        client = Client()
        client.force_login(hr)
        posts, pages, post_queries, page_queries = [], [], 0, 0
        for run in range(RUNS + 1):
            draft = approved_draft(guideline, hr, approver)
            path = f"/hr/drafts/{draft.pk}/publish/"
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as page:
                assert client.get(path, secure=True).status_code == 200
            page_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as post:
                response = client.post(path, {"change": "material", "confirm": "on"}, secure=True)
            post_ms = (time.perf_counter() - started) * 1000
            if response.status_code != 302:
                raise SystemExit(f"publish answered {response.status_code}")
            if run:  # the first run warms up
                pages.append(page_ms)
                posts.append(post_ms)
                page_queries, post_queries = len(page.captured_queries), len(post.captured_queries)
        log(f"published {RUNS + 1} material versions of {guideline.slug} for {audience} employees")
        dataset = {"audience": audience}
        emit({"name": "publish_material_post", "dataset": dataset, "runs": RUNS,
              "median_ms": round(statistics.median(posts), 1), "p95_ms": round(percentile(posts, 0.95), 1),
              "queries": post_queries, "peak_rss_mb": peak_rss_mb(), "target": "<=1000 ms, constant queries",
              "meets_target": statistics.median(posts) <= 1000})
        emit({"name": "publish_confirmation_page", "dataset": dataset, "runs": RUNS,
              "median_ms": round(statistics.median(pages), 1), "p95_ms": round(percentile(pages, 0.95), 1),
              "queries": page_queries, "peak_rss_mb": peak_rss_mb(), "target": "reference",
              "meets_target": True})


if __name__ == "__main__":
    main()
