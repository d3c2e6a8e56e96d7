"""Tamper trials on PostgreSQL: a chain of 10,000 acknowledgements with four checkpoints, and 1,000
randomised attacks as the database's owner (triggers off), each rolled back afterwards. Every attack
must be detected, with the first damaged record (or checkpoint) named; an untouched chain must give no
alarm. The seed is printed (set TAMPER_SEED to repeat a run)."""

import os
import random
from collections import Counter

import pytest
from django.db import connection, transaction
from django.utils import timezone

from guidelines import chain, chain_reading, checkpoints, services
from guidelines.models import Acknowledgement, Checkpoint

from .factories import tamper

# Each trial is its own transaction, rolled back; between them VACUUM clears the row versions the
# attacks left (inside one long transaction they would pile up and slow every later check).
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
VACUUM_EVERY = 20

RECORDS = 10_000
TRIALS = 1_000
CHECKPOINT_EVERY = 2_500
# Text fields of a record that a one-character change can reach (the seal covers them all).
TEXT_FIELDS = ["employee_number", "employee_name", "language", "content_hash", "statement", "channel",
               "auth_method", "user_agent", "department_name", "manager_employee_number", "manager_name",
               "previous_seal", "seal"]
KINDS = ["none", "byte", "timestamp", "delete", "swap", "forge", "truncate", "reseal"]


def seed_chain(employee, version):
    text = version.texts.get(language="en")
    meta = services.RequestMeta(auth_method="password", ip_address="192.0.2.1", user_agent="Trial browser")
    now = timezone.now()
    for start in range(0, RECORDS, CHECKPOINT_EVERY):
        services.append_seeded_acknowledgements([
            services.build_acknowledgement(employee=employee, version=version, text=text, at=now, meta=meta,
                                           cycle=cycle + 1)
            for cycle in range(start, start + CHECKPOINT_EVERY)])
        checkpoints.make()


def reseal_from(records, first, change):
    """Recompute every seal from record `first` on, with `change` applied to that record, and move
    the head: a chain consistent in itself. One UPDATE for all rows."""
    previous = records[first - 2].seal if first > 1 else chain.GENESIS_SEAL
    values = []
    for record in records[first - 1:]:
        record = chain_record(record, previous_seal=previous, **(change if record.sequence == first else {}))
        seal = chain.compute_seal(record, guideline_slug=record.guideline_slug, version_number=record.version_number)
        values.append((record.sequence, previous, seal, record.employee_name))
        previous = seal
    rows = ", ".join(["(%s::bigint, %s, %s, %s)"] * len(values))
    tamper(f"UPDATE guidelines_acknowledgement AS a SET previous_seal = v.previous, seal = v.seal, "
           f"employee_name = v.name FROM (VALUES {rows}) AS v(sequence, previous, seal, name) "
           "WHERE a.sequence = v.sequence", [value for row in values for value in row])
    tamper("UPDATE guidelines_chainhead SET seal = %s", [previous])


def chain_record(record, **changes):
    copy = chain_reading.ChainRecord(record)
    copy.update(changes)
    return copy


def changed_text(value, rng):
    position = rng.randrange(len(value))
    replacement = "x" if value[position] != "x" else "y"
    return value[:position] + replacement + value[position + 1:]


def attack(kind, rng, records, marks):
    """Carry out one attack; returns (the record verification must name, the checkpoint it must
    name or None)."""
    last = len(records)
    if kind == "none":
        return None, None
    if kind == "byte":
        sequence, field = rng.randint(1, last), rng.choice(TEXT_FIELDS)
        value = records[sequence - 1][field]
        tamper(f"UPDATE guidelines_acknowledgement SET {field} = %s WHERE sequence = %s",
               [changed_text(value, rng), sequence])
        return sequence, None
    if kind == "timestamp":
        sequence = rng.randint(1, last)
        tamper("UPDATE guidelines_acknowledgement SET acknowledged_at = acknowledged_at + interval '1 microsecond' "
               "WHERE sequence = %s", [sequence])
        return sequence, None
    if kind == "delete":
        sequence = rng.randint(1, last)
        tamper("DELETE FROM guidelines_acknowledgement WHERE sequence = %s", [sequence])
        return sequence, None
    if kind == "swap":
        first, second = sorted(rng.sample(range(1, last + 1), 2))
        # In three steps: the seal column is unique at every moment.
        first_seal, second_seal = records[first - 1].seal, records[second - 1].seal
        for sequence, seal in ((first, "swapping"), (second, first_seal), (first, second_seal)):
            tamper("UPDATE guidelines_acknowledgement SET seal = %s WHERE sequence = %s", [seal, sequence])
        return first, None
    if kind == "forge":
        # A record replaced by a forged one whose own seal is right: it is the next record that no
        # longer links to it.
        sequence = rng.randint(1, last - 1)
        forged = chain_record(records[sequence - 1], employee_name="Forged Name")
        seal = chain.compute_seal(forged, guideline_slug=forged.guideline_slug, version_number=forged.version_number)
        tamper("UPDATE guidelines_acknowledgement SET employee_name = %s, seal = %s WHERE sequence = %s",
               [forged.employee_name, seal, sequence])
        return sequence + 1, None
    if kind == "truncate":
        keep = rng.randint(1, last - 1)
        tamper("DELETE FROM guidelines_acknowledgement WHERE sequence > %s", [keep])
        tamper("UPDATE guidelines_chainhead SET sequence = %s, seal = %s", [keep, records[keep - 1].seal])
        broken = next(mark for mark in marks if mark.head_sequence > keep)
        return keep + 1, broken
    if kind == "reseal":
        sequence = rng.randint(1, last)
        reseal_from(records, sequence, {"employee_name": "Someone Else"})
        broken = next(mark for mark in marks if mark.head_sequence >= sequence)
        return broken.head_sequence, broken
    raise AssertionError(kind)


def test_a_thousand_random_attacks_are_each_detected_and_named(alice, version_1, capsys):
    seed = int(os.environ.get("TAMPER_SEED", "20261203"))
    rng = random.Random(seed)
    seed_chain(alice, version_1)
    records = list(chain_reading.chain_records())
    marks = list(Checkpoint.objects.order_by("head_sequence"))
    assert len(records) == RECORDS and [mark.head_sequence for mark in marks] == [2500, 5000, 7500, 10000]
    clean = services.verify_evidence()
    assert clean.intact and clean.checkpoints_checked == 4

    outcomes, failures = Counter(), []
    for trial in range(TRIALS):
        kind = rng.choice(KINDS)
        with transaction.atomic():
            expected_record, expected_checkpoint = attack(kind, rng, records, marks)
            result = services.verify_evidence()
            transaction.set_rollback(True)
        if trial % VACUUM_EVERY == VACUUM_EVERY - 1:
            with connection.cursor() as cursor:
                cursor.execute("VACUUM guidelines_acknowledgement, guidelines_chainhead")
        if kind == "none":
            ok = result.intact
        else:
            ok = (not result.intact and result.first_break_sequence == expected_record
                  and result.broken_checkpoint == (checkpoints.moment(expected_checkpoint)
                                                   if expected_checkpoint else ""))
        outcomes[kind, "detected" if ok else "MISSED"] += 1
        if not ok:
            failures.append((trial, kind, expected_record, result.first_break_sequence, result.problem))

    with capsys.disabled():
        print(f"\ntamper trials: seed {seed}, {TRIALS} trials on {RECORDS} records with {len(marks)} checkpoints")
        for kind in KINDS:
            counts = {outcome: outcomes[kind, outcome] for outcome in ("detected", "MISSED")}
            label = "no alarm" if kind == "none" else "named correctly"
            print(f"  {kind:<10} {counts['detected']:>4} {label}, {counts['MISSED']} wrong")
    assert not failures, failures[:10]
    assert services.verify_evidence().intact  # everything was rolled back
    assert Acknowledgement.objects.count() == RECORDS
