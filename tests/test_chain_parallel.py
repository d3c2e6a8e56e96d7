"""The fast reading of the chain on PostgreSQL (chain_reading: COPY text, range by range, in this process or in
others side by side) against the plain walk (chain.verify_chain over chain_reading.chain_records): on a clean
chain and on damaged ones, the same verdict with the same first damaged record. The ranges here are four
records long, so damage falls on their first and last records and across their boundaries."""

import dataclasses
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from guidelines import chain, chain_reading, services
from guidelines.models import ChainHead

from .factories import tamper

# The other processes read what is committed, so the chain and its damage are committed here.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

RANGE = 4
RECORDS = 17  # four full ranges and one of a single record
can_fork = chain_reading._can_fork
USER_AGENTS = ['Browser "quoted" \\ backslash', "tab\there", "line\nbreak and carriage\rreturn",
               "bell\x07, unit separator\x1f, delete\x7f", "Zoë 🙂 ü", "\\N", "plain"]


@pytest.fixture
def small_ranges(monkeypatch):
    monkeypatch.setattr(chain_reading, "VERIFY_RANGE", RANGE)
    monkeypatch.setattr(chain_reading, "VERIFY_PROCESSES", 2)
    # The test process may run threads of other tests' fixtures (a live server); none holds a lock
    # the processes started here need.
    monkeypatch.setattr(chain_reading, "_can_fork", lambda: True)


@pytest.fixture
def records(alice, version_1, small_ranges):
    """A chain of seal formats 1 and 2, with and without provider claims, addresses (IPv4, IPv6,
    none) and opening times, timestamps with whole, trailing-zero and full microseconds, and text that
    COPY escapes or that JSON escapes."""
    text = version_1.texts.get(language="en")
    moment = timezone.now().replace(microsecond=0) - timedelta(days=1)
    acks = []
    for n in range(1, RECORDS + 1):
        at = moment + timedelta(minutes=n, microseconds=(0, 120_000, 123_456)[n % 3])
        meta = services.RequestMeta(auth_method="sso:entra", sso_subject=f"subject-{n}", sso_amr="pwd mfa",
                                    sso_acr="urn:example:loa:2") if n % 3 == 0 else services.RequestMeta()
        ack = services.build_acknowledgement(employee=alice, version=version_1, text=text, at=at, meta=meta, cycle=n,
                                             first_opened_at=None if n % 5 == 0 else at - timedelta(seconds=n))
        ack.seal_format = 1 if n <= 3 else chain.CURRENT_SEAL_FORMAT
        ack.ip_address = (None, "2001:db8::1", "10.1.2.3", "192.0.2.255")[n % 4]
        ack.user_agent = USER_AGENTS[n % len(USER_AGENTS)]
        ack.employee_name = "Zoë d'Arc \"Z\"" if n % 2 else "Alice Example"
        acks.append(ack)
    services.append_seeded_acknowledgements(acks)


def plain():
    head = ChainHead.objects.get()
    return chain.verify_chain(chain_reading.chain_records(), expected_head=(head.sequence, head.seal))


def in_turn():
    """verify_evidence within a transaction of the caller's: this process reads the ranges in turn."""
    with transaction.atomic():
        return services.verify_evidence()


def apart(monkeypatch):
    """verify_evidence on its own: other processes read the ranges side by side."""
    calls = []
    real = chain_reading._vouched_apart
    monkeypatch.setattr(chain_reading, "_vouched_apart", lambda last: calls.append(last) or real(last))
    result = services.verify_evidence()
    assert calls, "the ranges were not read in other processes"
    return result


def vouched_in_turn():
    return chain_reading._vouched_in_turn(RECORDS)


def vouched_apart():
    with chain_reading.own_snapshot():
        return chain_reading._vouched_apart(RECORDS)


def seal(sequence):
    return services.Acknowledgement.objects.get(sequence=sequence).seal


def same_verdicts(monkeypatch):
    """The plain walk's verdict, after checking that both fast readings reach the same one."""
    expected = dataclasses.asdict(plain())
    assert dataclasses.asdict(in_turn()) == expected
    assert dataclasses.asdict(apart(monkeypatch)) == expected
    return plain()


def test_a_clean_chain_is_vouched_for_to_its_end_by_both_fast_readings(records, monkeypatch):
    # Every seal recomputed from the COPY text matches the seal compute_seal made: the same bytes are hashed.
    head = (RECORDS, ChainHead.objects.get().seal)
    assert vouched_in_turn() == head
    assert vouched_apart() == head
    result = same_verdicts(monkeypatch)
    assert (result.intact, result.checked, result.head_sequence) == (True, RECORDS, RECORDS)


def break_a_field(k):
    tamper("UPDATE guidelines_acknowledgement SET employee_name = 'Someone Else' WHERE sequence = %s", [k])
    return k


def shift_a_timestamp(k):
    tamper("UPDATE guidelines_acknowledgement SET acknowledged_at = acknowledged_at + interval '1 microsecond' "
           "WHERE sequence = %s", [k])
    return k


def add_an_escaped_character(k):
    tamper("UPDATE guidelines_acknowledgement SET user_agent = user_agent || E'\\t' WHERE sequence = %s", [k])
    return k


def change_the_address(k):
    tamper("UPDATE guidelines_acknowledgement SET ip_address = CASE WHEN ip_address IS NULL THEN '10.9.9.9'::inet "
           "END WHERE sequence = %s", [k])
    return k


def claim_an_unknown_format(k):
    tamper("UPDATE guidelines_acknowledgement SET seal_format = 9 WHERE sequence = %s", [k])
    return k


def delete_a_record(k):
    tamper("DELETE FROM guidelines_acknowledgement WHERE sequence = %s", [k])
    return k


def swap_two_seals(k):
    first, second = seal(k), seal(k + 1)
    for sequence, value in ((k, "swapping"), (k + 1, first), (k, second)):  # the seal column is unique
        tamper("UPDATE guidelines_acknowledgement SET seal = %s WHERE sequence = %s", [value, sequence])
    return k


def forge_a_record(k):
    """Replace a record by one with its own correct seal: the next record no longer links to it."""
    [record] = [record for record in chain_reading.chain_records() if record.sequence == k]
    record["employee_name"] = "Forged Name"
    forged = chain.compute_seal(record, guideline_slug=record.guideline_slug, version_number=record.version_number)
    tamper("UPDATE guidelines_acknowledgement SET employee_name = %s, seal = %s WHERE sequence = %s",
           [record.employee_name, forged, k])
    return k + 1


def renumber_a_record_far_away(k):
    tamper("UPDATE guidelines_acknowledgement SET sequence = %s WHERE sequence = %s", [10**12, k])
    return k


DAMAGE = [
    (break_a_field, 1), (break_a_field, RANGE), (break_a_field, RANGE + 1), (break_a_field, RECORDS),
    (shift_a_timestamp, 2 * RANGE), (add_an_escaped_character, 2 * RANGE + 1), (change_the_address, 7),
    (change_the_address, 8), (claim_an_unknown_format, RANGE + 1),
    (delete_a_record, 1), (delete_a_record, RANGE), (delete_a_record, 3 * RANGE + 1), (delete_a_record, RECORDS),
    (swap_two_seals, RANGE), (swap_two_seals, 2), (forge_a_record, RANGE), (forge_a_record, 2 * RANGE + 2),
    (renumber_a_record_far_away, 2 * RANGE), (renumber_a_record_far_away, RECORDS),
]


@pytest.mark.parametrize("damage, position", DAMAGE, ids=[f"{damage.__name__}-{k}" for damage, k in DAMAGE])
def test_damage_gets_the_same_verdict_and_first_break_from_every_reading(records, monkeypatch, damage, position):
    first_break = damage(position)
    before = (first_break - 1, seal(first_break - 1)) if first_break > 1 else None
    assert vouched_in_turn() == before
    assert vouched_apart() == before
    result = same_verdicts(monkeypatch)
    assert (result.intact, result.first_break_sequence) == (False, first_break)


def test_a_record_numbered_zero_comes_before_the_first_range(records, monkeypatch):
    tamper("UPDATE guidelines_acknowledgement SET sequence = 0 WHERE sequence = 1", [])
    assert vouched_in_turn() is None and vouched_apart() is None
    result = same_verdicts(monkeypatch)
    assert (result.first_break_sequence, result.problem) == (1, "record 1 is missing (found 0)")


@pytest.mark.parametrize("head", [RECORDS - 1, RECORDS + 1])
def test_a_moved_head_gets_the_same_verdict(records, monkeypatch, head):
    tamper("UPDATE guidelines_chainhead SET sequence = %s", [head])
    result = same_verdicts(monkeypatch)
    assert not result.intact and "recorded head" in result.problem


def test_a_cut_tail_with_the_head_moved_back_is_consistent_for_every_reading(records, monkeypatch):
    # Only a checkpoint can tell (tests/test_checkpoints.py); without one, every reading says intact.
    tamper("DELETE FROM guidelines_acknowledgement WHERE sequence > %s", [RANGE + 2])
    tamper("UPDATE guidelines_chainhead SET sequence = %s, seal = %s", [RANGE + 2, seal(RANGE + 2)])
    result = same_verdicts(monkeypatch)
    assert (result.intact, result.checked) == (True, RANGE + 2)


def test_every_range_is_read_in_the_snapshot_of_the_check(records):
    # A record changed after the check began (here: between its first read and the other processes'
    # start) is seen by none of them: they read the chain as it was when the check began.
    database = {name: value for name, value in connection.get_connection_params().items()
                if name not in ("context", "cursor_factory")}
    with chain_reading.own_snapshot():
        head = ChainHead.objects.get()
        with psycopg.connect(**database, autocommit=True) as other:
            other.execute("SET session_replication_role = replica")
            other.execute("UPDATE guidelines_acknowledgement SET employee_name = 'Later' WHERE sequence = %s",
                          [RANGE + 2])
        assert chain_reading._vouched_apart(RECORDS) == (RECORDS, head.seal)
    assert vouched_apart() == (RANGE + 1, seal(RANGE + 1))  # a check begun afterwards sees the change


def test_without_other_processes_this_process_reads_in_turn(records, monkeypatch, caplog):
    connection.ensure_connection()
    params = connection.get_connection_params
    monkeypatch.setattr(connection, "get_connection_params", lambda: {**params(), "dbname": "no_such_database"})
    with caplog.at_level(logging.WARNING, logger="guidelines.chain_reading"):
        result = services.verify_evidence()
    assert (result.intact, result.checked) == (True, RECORDS)
    assert "reads in one process" in caplog.text


def test_a_process_with_other_threads_does_not_fork(records, monkeypatch):
    monkeypatch.setattr(chain_reading, "_can_fork", can_fork)
    monkeypatch.setattr(chain_reading, "_vouched_apart", lambda last: pytest.fail("forked while another thread ran"))
    finished = threading.Event()
    other = threading.Thread(target=finished.wait)
    other.start()
    try:
        assert services.verify_evidence().intact
    finally:
        finished.set()
        other.join()


def verify_in_a_pool_process():
    result = services.verify_evidence()
    connection.close()
    return result.intact, result.checked


def test_a_daemonic_process_reads_in_turn(records, monkeypatch):
    # A Celery worker's processes (the nightly check, the auditor pack) are daemonic: multiprocessing
    # refuses them children, so the check reads in turn there.
    monkeypatch.setattr(chain_reading, "_can_fork", can_fork)
    connection.close()  # the pool's process opens a connection of its own
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(verify_in_a_pool_process) == (True, RECORDS)


def test_the_embedded_database_verifies_with_the_plain_walk(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "VAR_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "intranet.settings"}
    root = Path(__file__).resolve().parent.parent
    for command in (["migrate", "--noinput"], ["load_demo"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=root, env=env, check=True, capture_output=True)
    verified = subprocess.run([sys.executable, "manage.py", "verify_evidence"], cwd=root, env=env,
                              capture_output=True, text=True)
    assert verified.returncode == 0 and "Evidence chain intact" in verified.stdout, verified.stderr
