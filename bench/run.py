"""Benchmark of the employee pages on a large data set, measured against a trivial page (the floor).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guidelines python bench/run.py [--employees N] [--versions M]

Works on its own database (the DATABASE_URL name + "_bench"), seeds it once with seed_scale and
reuses it afterwards. Prints one JSON object per line on stdout; progress goes to stderr.
See bench/README.md.
"""

import argparse
import cProfile
import gc
import io
import json
import math
import multiprocessing
import os
import pstats
import resource
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/guidelines"
PAGE_TARGET = 2.0  # pages: median <= 2x the floor median
POST_TARGET = 2.2  # acknowledging: median <= 2.2x the floor median
PROFILE_RUNS = 50
STARTED = time.perf_counter()


def log(message):
    print(f"[bench {time.perf_counter() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def emit(record):
    print(json.dumps(record), flush=True)


def peak_rss_mb(who=resource.RUSAGE_SELF):
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # Linux reports KiB


def process_peak_rss_mb(pid):
    """Peak resident memory (VmHWM) of a process and of each of its children, in MB."""

    def hwm(process):
        for line in Path(f"/proc/{process}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in text:
            children.append(int(status.parent.name))
    return hwm(pid), [hwm(child) for child in children]


def start_worker(queues, log_path, env=None):
    """A real Celery worker (prefork, two processes) on the environment's broker; returns once ready."""
    import subprocess

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "intranet", "worker", "--concurrency=2", "-Q", ",".join(queues),
         "-n", f"{queues[0]}-bench@%h", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=BASE_DIR, env={**os.environ, **(env or {})}, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "ready." in Path(log_path).read_text():
            return worker
        if worker.poll() is not None:
            break
        time.sleep(0.2)
    worker.kill()
    raise SystemExit(f"the worker did not start:\n{Path(log_path).read_text()}")


# Database and settings ---------------------------------------------------------------------


def bench_database_url(url):
    """The same server and credentials, database name + "_bench"."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.scheme not in ("postgres", "postgresql") or not name:
        raise SystemExit(f"DATABASE_URL must be a PostgreSQL URL with a database name, got {url!r}.")
    return urlunsplit(parts._replace(path=f"/{name}_bench")), f"{name}_bench"


def prepare_database(url, name, reseed):
    """Create the benchmark database if it is missing; with --reseed drop it first."""
    import psycopg
    from psycopg import sql

    maintenance = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if reseed:
            log(f"dropping database {name}")
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            log(f"creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def configure_environment(database_url):
    """Production-like settings: DEBUG off, no HTTPS redirect (the client says secure=True)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "intranet.settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "0"
    os.environ["SECURE_SSL_REDIRECT"] = "0"
    os.environ["SECRET_KEY"] = "bench-" + secrets.token_urlsafe(48)  # 70 characters, per process
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.pop("REDIS_URL", None)  # the per-process cache; nothing outside the bench DB is touched
    os.environ.setdefault("LOG_LEVEL", "WARNING")


@contextmanager
def bench_django(*, reseed=False, urlconf=None):
    """The benchmark database created and migrated, Django set up with production-like settings
    and static files collected into a temporary folder (the manifest DEBUG=0 needs)."""
    url, name = bench_database_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    prepare_database(url, name, reseed)
    configure_environment(url)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings

    overrides = {"ROOT_URLCONF": urlconf} if urlconf else {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-static-") as static_root,
        override_settings(STATIC_ROOT=static_root, **overrides),
    ):
        log(f"migrating {name}")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        yield name


# Data set -----------------------------------------------------------------------------------


def find_dataset(employees, versions):
    """A scale guideline with `versions` released versions, if there are >= `employees` scale employees."""
    from guidelines.models import Employee, Guideline

    if Employee.objects.filter(employee_number__startswith="S").count() < employees:
        return None
    for guideline in Guideline.objects.filter(slug__startswith="scale-").order_by("-pk"):
        # Acknowledgements are appended last: a guideline without them is from an interrupted seed.
        if guideline.versions.released().count() == versions and guideline.acknowledgements.exists():
            return guideline
    return None


def count_rows():
    from django.contrib.auth.models import User

    from guidelines.models import Acknowledgement, Employee, Version, VersionText

    return sum(model.objects.count() for model in (User, Employee, Version, VersionText, Acknowledgement))


def _seed_child(employees, versions):
    from django.core.management import call_command
    from django.db import connections

    call_command("seed_scale", employees=employees, versions=versions, stdout=sys.stderr)
    connections.close_all()


def seed(employees, versions):
    """Run seed_scale in a forked child, so its memory peak is not counted as the benchmark's."""
    from django.db import connections

    log(f"seeding {employees} employees, {versions} versions")
    rows_before = count_rows()
    connections.close_all()  # the child must not share the parent's connection
    started = time.perf_counter()
    child = multiprocessing.get_context("fork").Process(target=_seed_child, args=(employees, versions))
    child.start()
    child.join()
    seconds = time.perf_counter() - started
    if child.exitcode != 0:
        raise SystemExit(f"seed_scale failed (exit code {child.exitcode}).")
    rows = count_rows() - rows_before
    return {
        "name": "seed_scale",
        "dataset": {"employees": employees, "versions": versions},
        "seconds": round(seconds, 1),
        "rows": rows,
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
    }


@dataclass
class Context:
    slug: str
    version: object  # the current (published) version
    page_employee: object  # has not acknowledged the current version
    fresh_employees: list  # other employees who have not acknowledged it; each POST takes one
    dataset: dict
    checked: object  # the current version of the checked guideline (reading to the end, three questions)
    checked_employees: list  # employees who have not acknowledged the checked guideline; each POST takes one
    floor_median: float | None = None
    template_floor_median: float | None = None
    profiler: cProfile.Profile | None = None


CHECKED_SLUG = "bench-checked"


def checked_version(page_employee):
    """The current version of a guideline for everyone that requires reading to the end and has the
    demo's three-question check, with a question of the page employee on it: the guideline page with
    every part of the comprehension check and the question thread. Made once, kept with the data set."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from guidelines import demo, questions
    from guidelines.models import LANGUAGES, Guideline, Question

    guideline = Guideline.objects.filter(slug=CHECKED_SLUG).first()
    if guideline is None:
        users = get_user_model().objects
        author = users.get(username="scale-author@example.com")
        approver = users.get(username="scale-approver@example.com")
        guideline = Guideline.objects.create(slug=CHECKED_SLUG, title_nl="Gecontroleerde richtlijn",
                                             title_en="Checked guideline", owner=author, due_days=30)
        demo.create_published_version(
            guideline, {language: demo.demo_text(2, language) for language in LANGUAGES}, author=author,
            approver=approver, published_at=timezone.now() - timedelta(days=1),
            questions=[question for question, _share in demo.V2_QUESTIONS], require_read_to_end=True)
    version = guideline.versions.published().get()
    if not Question.objects.filter(employee=page_employee, version=version).exists():
        questions.ask(employee=page_employee, version=version, language=page_employee.language,
                      text="Does this also apply to my private account?")
    return version


def make_context(guideline, args):
    from guidelines.models import Acknowledgement, Employee

    current = guideline.versions.published().get()
    acked_current = Acknowledgement.objects.filter(guideline=guideline, major=current.major).values("employee_id")
    acked_any = Acknowledgement.objects.filter(guideline=guideline).values("employee_id")
    managers = Employee.objects.filter(manager__isnull=False).values("manager_id")
    unacked = (
        Employee.objects.filter(employee_number__startswith="S")
        .exclude(pk__in=acked_current)
        .exclude(pk__in=managers)  # the typical employee manages nobody (the seed's heads manage thousands)
        .select_related("user")
        .order_by("pk")
    )
    # The typical reader: acknowledged an earlier version, so the page shows what changed.
    page_employee = unacked.filter(pk__in=acked_any).first() or unacked.first()
    if page_employee is None:
        raise SystemExit("Every employee has acknowledged the current version; run again with --reseed.")
    wanted = args.warmup + args.runs + 1 + (PROFILE_RUNS + 1 if args.profile == "acknowledge" else 0)
    pool = list(unacked.exclude(pk=page_employee.pk)[:wanted])
    if len(pool) < wanted:
        log(f"only {len(pool)} employees left who have not acknowledged (wanted {wanted}); "
            "the acknowledge case runs fewer requests. --reseed restores the pool.")
    dataset = {
        "employees": Employee.objects.filter(employee_number__startswith="S").count(),
        "versions": guideline.versions.released().count(),
        "acknowledgements": Acknowledgement.objects.filter(guideline=guideline).count(),
    }
    checked = checked_version(page_employee)
    acked_checked = Acknowledgement.objects.filter(version=checked).values("employee_id")
    # Anyone who has not acknowledged the checked guideline (it is for everyone), managers aside.
    checked_pool = list(Employee.objects.filter(employee_number__startswith="S").exclude(pk__in=managers)
                        .exclude(pk=page_employee.pk).exclude(pk__in=acked_checked).select_related("user")
                        .order_by("pk")[:wanted])
    log(f"guideline {guideline.slug}, current version {current.number} (id {current.pk}), "
        f"page employee {page_employee.user.email}, {len(pool)} fresh employees for POSTs "
        f"({len(checked_pool)} for the checked guideline)")
    return Context(slug=guideline.slug, version=current, page_employee=page_employee,
                   fresh_employees=pool[::-1], dataset=dataset, checked=checked, checked_employees=checked_pool)


# Measuring ----------------------------------------------------------------------------------


def time_requests(request, *, runs, warmup, before=None, profiler=None):
    """Call request() warmup + runs times; return the durations (ms) of the timed calls that returned True.

    before() runs outside the timed section, before every call.
    """
    for _ in range(warmup):
        if before:
            before()
        request()
    gc.collect()
    durations = []
    for _ in range(runs):
        if before:
            before()
        if profiler:
            profiler.enable()
        started = time.perf_counter()
        ok = request()
        elapsed = (time.perf_counter() - started) * 1000
        if profiler:
            profiler.disable()
        if ok:
            durations.append(elapsed)
    return durations


def count_queries(request):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        request()
    return len(queries.captured_queries)


def percentile(values, share):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def record(ctx, name, path, durations, queries, target):
    median = statistics.median(durations)
    ratio = median / ctx.floor_median if ctx.floor_median else 1.0
    extra = {}
    if ctx.template_floor_median:
        extra["ratio_to_template_floor"] = round(median / ctx.template_floor_median, 2)
    return {
        "name": name,
        "path": path,
        "dataset": ctx.dataset,
        "runs": len(durations),
        "median_ms": round(median, 3),
        "p95_ms": round(percentile(durations, 0.95), 3),
        "queries": queries,
        "peak_rss_mb": peak_rss_mb(),
        "ratio_to_floor": round(ratio, 2),
        "target": f"<={target}x floor" if target else "reference",
        "meets_target": ratio <= target if target else True,
        **extra,
    }


def get_page(client, path):
    def request():
        response = client.get(path, secure=True)  # HTTPS, as in production
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}, expected 200.")
        return True

    return request


# Cases: what one request of each is ---------------------------------------------------------


@dataclass
class Measured:
    """A prepared case: request() makes one request (True: count it); before() runs untimed first."""

    name: str
    path: str
    target: float | None
    request: object
    before: object = None
    runs: int | None = None  # at most this many timed requests (acknowledge: the pool of employees)


def page_case(name, path, target=None):
    """A GET of `path` (a format string with {slug}) by the page employee, in a browser of its own."""

    def prepare(ctx, runs, warmup):
        from django.test import Client

        client = Client()
        client.force_login(ctx.page_employee.user)
        url = path.format(slug=ctx.slug, checked=CHECKED_SLUG)
        return Measured(name, url, target, get_page(client, url))

    return prepare


def _acknowledging(name, slug, version, pool, runs, warmup, answers=None):
    """Each POST by a different employee of `pool` who has not acknowledged yet (popped from its end),
    with `answers` to the version's comprehension check if it has one; only 302s to the receipt count."""
    from django.test import Client

    path = f"/guidelines/{slug}/acknowledge/"
    client, data = Client(), {}

    def before():
        employee = pool.pop()
        client.cookies.clear()  # a fresh browser: no messages or CSRF cookie of the previous user
        client.force_login(employee.user)
        data.update(version=version.pk, language=employee.language, channel="web", confirm="on", **(answers or {}))

    def request():
        response = client.post(path, data, secure=True)
        if response.status_code == 302 and response["Location"].startswith("/my/acknowledgements/"):
            return True
        log(f"POST {path} answered {response.status_code}; not counted")
        return False

    # Fewer timed runs if the pool of employees who have not acknowledged is running out.
    runs = min(runs, len(pool) - warmup - 1)
    if runs < 1:
        raise SystemExit("Too few employees left who have not acknowledged; run again with --reseed.")
    return Measured(name, path, POST_TARGET, request, before, runs)


def case_acknowledge(ctx, runs, warmup):
    return _acknowledging("acknowledge", ctx.slug, ctx.version, ctx.fresh_employees, runs, warmup)


def case_acknowledge_checked(ctx, runs, warmup):
    """The checked guideline, with the right answers: recorded as attempts, then sealed."""
    from guidelines import comprehension

    answers = {f"q{question.pk}": str(question.correct) for question in comprehension.questions_of(ctx.checked)}
    return _acknowledging("acknowledge_checked", CHECKED_SLUG, ctx.checked, ctx.checked_employees, runs, warmup,
                          answers)


CASES = {
    "floor": page_case("floor", "/bench/floor/"),
    "floor_template": page_case("floor_template", "/bench/floor-template/"),
    "employee_home": page_case("employee_home", "/", target=PAGE_TARGET),
    "guideline_page": page_case("guideline_page", "/guidelines/{slug}/", target=PAGE_TARGET),
    "version_list": page_case("version_list", "/guidelines/{slug}/versions/"),
    "acknowledge": case_acknowledge,
    # Reading to the end required, a three-question check and a question thread of the reader's own.
    "checked_page": page_case("checked_page", "/guidelines/{checked}/", target=PAGE_TARGET),
    "acknowledge_checked": case_acknowledge_checked,
}


# Running the cases ----------------------------------------------------------------------------


def queries_of(measured):
    if measured.before:
        measured.before()
    return count_queries(measured.request)


def run_sequential(ctx, names, runs, warmup):
    """Each case to the end, one after the other."""
    for name in names:
        log(f"measuring {name}")
        measured = CASES[name](ctx, runs, warmup)
        durations = time_requests(measured.request, runs=measured.runs or runs, warmup=warmup,
                                  before=measured.before, profiler=ctx.profiler)
        yield measured, durations, queries_of(measured)


def run_interleaved(ctx, names, runs, warmup):
    """Round by round, one request of every case per round: a machine that slows down or speeds up
    during the run does so for every case alike, so the ratios to the floor hold."""
    cases = [CASES[name](ctx, runs, warmup) for name in names]
    log(f"measuring {', '.join(names)} interleaved")
    for _ in range(warmup):
        for measured in cases:
            if measured.before:
                measured.before()
            measured.request()
    gc.collect()
    durations = {measured.name: [] for measured in cases}
    for round_number in range(runs):
        for measured in cases:
            if measured.runs is not None and round_number >= measured.runs:
                continue
            if measured.before:
                measured.before()
            started = time.perf_counter()
            ok = measured.request()
            elapsed = (time.perf_counter() - started) * 1000
            if ok:
                durations[measured.name].append(elapsed)
    for measured in cases:
        yield measured, durations[measured.name], queries_of(measured)


def profile(ctx, name):
    """cProfile PROFILE_RUNS more requests of one case; top 15 and the callees of the views go to stderr."""
    ctx.profiler = cProfile.Profile()
    for _ in run_sequential(ctx, [name], runs=PROFILE_RUNS, warmup=0):
        pass
    out = io.StringIO()
    stats = pstats.Stats(ctx.profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(15)
    stats.print_callees(r"guidelines/(views|middleware)")  # where the view and middleware time goes
    ctx.profiler = None
    log(f"profile of {name}, {PROFILE_RUNS} requests:\n{out.getvalue()}")


# Main ---------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--employees", type=int, default=100_000)
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--runs", type=int, default=200, help="timed requests per case")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per case first")
    parser.add_argument("--reseed", action="store_true", help="drop and recreate the benchmark database")
    parser.add_argument("--profile", choices=CASES, help="also cProfile one case (printed to stderr)")
    parser.add_argument("--sequential", action="store_true",
                        help="measure each case to the end before the next (default: interleaved, round by round)")
    parser.add_argument("--cases", type=cases_list, default=list(CASES),
                        help="comma-separated cases to measure (default: all); the floor is always measured")
    return parser.parse_args()


def cases_list(value):
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in CASES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    return ["floor", *[name for name in CASES if name in names and name != "floor"]]


def main():
    args = parse_args()
    with bench_django(reseed=args.reseed, urlconf="bench.urls") as name:
        guideline = find_dataset(args.employees, args.versions)
        if guideline is None:
            emit(seed(args.employees, args.versions))
            guideline = find_dataset(args.employees, args.versions)
        else:
            log(f"reusing the data in {name} (--reseed to start over)")
        ctx = make_context(guideline, args)
        runner = run_sequential if args.sequential else run_interleaved
        for measured, durations, queries in runner(ctx, args.cases, runs=args.runs, warmup=args.warmup):
            result = record(ctx, measured.name, measured.path, durations, queries, target=measured.target)
            if measured.name == "floor":
                ctx.floor_median = result["median_ms"]
            elif measured.name == "floor_template":
                ctx.template_floor_median = result["median_ms"]
            emit(result)
        if args.profile:
            profile(ctx, args.profile)
    emit({"name": "total", "seconds": round(time.perf_counter() - STARTED, 1), "peak_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main()
