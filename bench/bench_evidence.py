"""Benchmark: `verify_evidence` on chains of 100,000 and 1,000,000 acknowledgements, and making a
checkpoint with an RFC 3161 timestamp from a real local time-stamping authority.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guidelines python bench/bench_evidence.py [--sizes 100000,1000000]

Each size has its own database (<name>_bench_evidence<N>), seeded once and reused while it holds
exactly N records (--reseed drops it first). Every check runs in a fresh process, as `manage.py
verify_evidence` does. Prints one line per measurement; progress goes to stderr. See bench/README.md.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.run import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    bench_database_url,
    configure_environment,
    log,
    prepare_database,
)

DEFAULT_SIZES = (100_000, 1_000_000)
# The seed's organisation: at most this many employees, each acknowledging once and then again
# (later cycles of a periodic re-acknowledgement) until the chain has its size.
EMPLOYEES = 50_000
VERIFY_RUNS = {100_000: 5}  # larger chains: one run
# The targets hold from 100,000 records on: below, fixed costs (connecting, the checkpoints) dominate.
TARGET_FROM = 100_000
SECONDS_PER_MILLION_TARGET = 10
PEAK_MB_TARGET = 200  # per process
CHECKPOINT_RUNS = 20


def evidence_database_url(url, size):
    url, name = bench_database_url(url)
    name = f"{name}_evidence{size}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}")), name


def memory_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/self/status has no {field}.")


# Data set -----------------------------------------------------------------------------------


def seed(size):
    """`size` valid acknowledgements: seed_scale's organisation, each employee acknowledging its one
    version (cycle 1), then re-acknowledging it (cycles 2, 3, ...) until the chain is long enough.
    Sealed in bulk by services.append_seeded_acknowledgements and written with COPY."""
    from django.db import connection

    from guidelines import demo, services
    from guidelines.models import Acknowledgement, Version

    employees = min(size, EMPLOYEES)
    started = time.perf_counter()
    log(f"seeding {employees} employees, one version")
    demo.seed_scale(employees=employees, versions=1, acknowledged=1.0)
    version = Version.objects.select_related("guideline").get(guideline__slug__startswith="scale-")
    columns = [field.attname for field in Acknowledgement._meta.concrete_fields if not field.primary_key]
    firsts = list(Acknowledgement.objects.order_by("sequence").values(*columns))

    def later_cycles():
        for n in range(size - len(firsts)):
            first = firsts[n % len(firsts)]
            cycle = n // len(firsts) + 2
            yield SimpleNamespace(**{
                **first, "cycle": cycle, "guideline": version.guideline, "version": version,
                "acknowledged_at": first["acknowledged_at"] + timedelta(days=cycle - 1),
                "first_opened_at": first["first_opened_at"] + timedelta(days=cycle - 1),
            })

    log(f"sealing and copying {size - len(firsts)} later acknowledgements")
    services.append_seeded_acknowledgements(
        later_cycles(), insert=lambda sealed: demo.copy_rows(Acknowledgement, sealed))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE guidelines_acknowledgement")
    log(f"seeded {size} acknowledgements in {time.perf_counter() - started:.1f} s")


def prepare(size, reseed):
    """Django on the size's database, created, migrated and holding a chain of exactly `size` records."""
    url, name = evidence_database_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL), size)
    prepare_database(url, name, reseed)
    configure_environment(url)
    import django

    django.setup()
    from django.core.management import call_command

    from guidelines.models import ChainHead

    log(f"migrating {name}")
    call_command("migrate", interactive=False, verbosity=0)
    head = ChainHead.objects.get(pk=1).sequence
    if head == 0:
        seed(size)
    elif head != size:
        raise SystemExit(f"{name} holds {head} records, not {size}: run with --reseed.")


# Measuring ----------------------------------------------------------------------------------


def verify_in_this_process():
    """One verify_evidence, timed; the memory of this process (VmHWM: its resident high-water mark)
    before and after, and the largest resident high-water mark of the processes it started."""
    import json
    import resource

    from django.db import connection

    from guidelines import chain_reading, services

    connection.ensure_connection()
    baseline = memory_kib("VmRSS")
    started = time.perf_counter()
    result = services.verify_evidence()
    seconds = time.perf_counter() - started
    print(json.dumps({"intact": result.intact, "checked": result.checked, "seconds": seconds,
                      "baseline_mb": baseline / 1024, "peak_mb": memory_kib("VmHWM") / 1024,
                      "processes_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                      "processes": chain_reading.VERIFY_PROCESSES}))


def verify_once(size):
    """verify_evidence in a fresh process, as `manage.py verify_evidence` runs: nothing of the seed in memory."""
    import json

    output = subprocess.run([sys.executable, __file__, "--verify"], cwd=BASE_DIR, check=True,
                            stdout=subprocess.PIPE, text=True).stdout
    result = json.loads(output.splitlines()[-1])
    if not result["intact"] or result["checked"] != size:
        raise SystemExit(f"verify_evidence did not find an intact chain of {size} records: {result}.")
    return result


def measure_verify(size):
    runs = [verify_once(size) for _ in range(VERIFY_RUNS.get(size, 1))]
    seconds = statistics.median(run["seconds"] for run in runs)
    peak = max(run["peak_mb"] for run in runs)
    growth = max(run["peak_mb"] - run["baseline_mb"] for run in runs)
    processes_peak = max(run["processes_peak_mb"] for run in runs)
    per_million = seconds * 1_000_000 / size
    if size < TARGET_FROM:
        verdict = "(no target below 100,000)"
    elif per_million <= SECONDS_PER_MILLION_TARGET and max(peak, processes_peak) <= PEAK_MB_TARGET:
        verdict = "meets the target"
    else:
        verdict = "MISSES the target"
    # A reading process is forked from the checking one: most of its resident pages are the checking
    # process's, shared with it.
    readers = (f"; {runs[0]['processes']} reading processes at most {processes_peak:.0f} MB each, mostly shared"
               if processes_peak else "")
    print(f"verify_evidence  {size:,} records  {seconds:.2f} s ({per_million:.1f} s per million, median of "
          f"{len(runs)})  peak RSS {peak:.0f} MB (+{growth:.0f} MB during the check{readers})  {verdict}", flush=True)


def measure_checkpoint(size):
    """checkpoints.make() with a timestamp from tests/tsa.py's authority (`openssl ts -reply` on loopback),
    each in a transaction rolled back afterwards: the chain keeps no checkpoint for later runs to check."""
    from django.db import transaction
    from django.test.utils import override_settings

    from guidelines import checkpoints
    from tests.tsa import TimestampAuthority

    with tempfile.TemporaryDirectory(prefix="bench-tsa-") as folder, TimestampAuthority(Path(folder)) as tsa:
        durations = []
        with override_settings(TIMESTAMP_URL=tsa.url, TIMESTAMP_CA_CERTS=str(tsa.ca_path)):
            for _ in range(CHECKPOINT_RUNS):
                with transaction.atomic():
                    started = time.perf_counter()
                    checkpoint = checkpoints.make()
                    durations.append((time.perf_counter() - started) * 1000)
                    transaction.set_rollback(True)
                if not checkpoint.timestamp_token:
                    raise SystemExit("the checkpoint has no timestamp")
    print(f"checkpoint with timestamp  {size:,} records  {statistics.median(durations):.0f} ms "
          f"(median of {len(durations)}, fastest {min(durations):.0f} ms)", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="chain lengths, comma-separated (default %(default)s)")
    parser.add_argument("--reseed", action="store_true", help="drop and seed the databases again")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)  # one size, in a process of its own
    parser.add_argument("--verify", action="store_true", help=argparse.SUPPRESS)  # one check, in a process of its own
    args = parser.parse_args()
    if args.verify:
        import django

        django.setup()  # on the size's database: the process of that size set the environment
        verify_in_this_process()
        return
    if args.size:
        prepare(args.size, args.reseed)
        measure_verify(args.size)
        measure_checkpoint(args.size)
        return
    for size in (int(size) for size in args.sizes.split(",")):
        # A process per size: Django is set up once per process, on that size's database.
        command = [sys.executable, __file__, f"--size={size}", *(["--reseed"] if args.reseed else [])]
        subprocess.run(command, cwd=BASE_DIR, check=True)


if __name__ == "__main__":
    main()
