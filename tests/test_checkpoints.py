"""Checkpoints of the evidence chain (guidelines.checkpoints) against a real RFC 3161 authority on
loopback (`openssl ts -reply`, tests/tsa.py), and the attacks only they catch: a chain re-sealed
consistently, a tail cut off with the head moved back, a forged checkpoint, a token moved between
checkpoints or made by another authority."""

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from guidelines import chain, chain_reading, checkpoints, services, tasks
from guidelines.models import Acknowledgement, AuditEvent, ChainHead, Checkpoint

from .factories import make_employee, tamper
from .tsa import TimestampAuthority, make_authority


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    with TimestampAuthority(tmp_path_factory.mktemp("tsa")) as tsa:
        yield tsa


@pytest.fixture
def timestamped(settings, authority):
    settings.TIMESTAMP_URL, settings.TIMESTAMP_CA_CERTS = authority.url, str(authority.ca_path)
    authority.failing = False
    return authority


@pytest.fixture
def acknowledged(alice, bob, otto, version_1, web_meta):
    """Three records, then more: a checkpoint is made after the first three."""
    def acknowledge(*employees):
        for employee in employees:
            services.acknowledge(employee=employee, version=version_1, language="en", meta=web_meta)
    acknowledge(alice, bob, otto)
    return acknowledge


def more_employees(count):
    return [make_employee(f"extra{n}@example.com", f"E7{n:03d}") for n in range(count)]


def test_a_checkpoint_states_the_chain_and_a_real_authority_timestamps_it(acknowledged, timestamped):
    before = timestamped.requests
    checkpoint = checkpoints.make()
    assert (checkpoint.head_sequence, checkpoint.record_count) == (3, 3)
    assert checkpoint.head_seal == Acknowledgement.objects.get(sequence=3).seal == ChainHead.objects.get().seal
    assert checkpoint.previous_digest == checkpoints.GENESIS_DIGEST
    assert checkpoint.digest == checkpoints.digest_of(checkpoint)
    assert timestamped.requests == before + 1
    assert abs(checkpoint.timestamped_at - timezone.now()) < timedelta(minutes=1)
    assert checkpoints.check_token(bytes(checkpoint.timestamp_token), checkpoint.digest,
                                   checkpoints.trust_roots()) == ""
    # The same token says nothing about another digest: a token for a different head is refused.
    other = checkpoints.digest_of(Checkpoint(**{**model_values(checkpoint), "head_sequence": 2}))
    assert checkpoints.check_token(bytes(checkpoint.timestamp_token), other,
                                   checkpoints.trust_roots()) == "its timestamp is for another digest"
    event = AuditEvent.objects.get(action=AuditEvent.Action.CHECKPOINT_MADE)
    assert event.details["digest"] == checkpoint.digest and event.details["timestamped"] is True

    result = services.verify_evidence()
    assert result.intact and result.checkpoints_checked == 1


def model_values(checkpoint):
    return {field: getattr(checkpoint, field) for field in
            ("made_at", "head_sequence", "head_seal", "record_count", "previous_digest")}


def test_checkpoints_link_to_each_other(acknowledged, timestamped):
    first = checkpoints.make()
    acknowledged(*more_employees(2))
    second = checkpoints.make()
    assert second.previous_digest == first.digest and second.head_sequence == 5
    assert services.verify_evidence().checkpoints_checked == 2


def resealed_chain(change_sequence):
    """As the database's owner could: change a record and recompute its seal and every later one,
    and move the head (the chain is then consistent in itself)."""
    acks = list(Acknowledgement.objects.order_by("sequence").select_related("guideline", "version"))
    previous = chain.GENESIS_SEAL
    for ack in acks:
        if ack.sequence == change_sequence:
            ack.employee_name = "Someone Else"
        ack.previous_seal = previous
        ack.seal = chain.compute_seal(ack, guideline_slug=ack.guideline.slug, version_number=ack.version.number)
        tamper("UPDATE guidelines_acknowledgement SET employee_name = %s, previous_seal = %s, seal = %s "
               "WHERE id = %s", [ack.employee_name, ack.previous_seal, ack.seal, ack.pk])
        previous = ack.seal
    tamper("UPDATE guidelines_chainhead SET seal = %s", [previous])


def test_a_consistently_resealed_chain_is_caught_only_by_the_checkpoint(acknowledged, timestamped):
    checkpoint = checkpoints.make()
    acknowledged(*more_employees(2))
    resealed_chain(change_sequence=2)
    walk = chain.verify_chain(chain_reading.chain_records(), expected_head=(5, ChainHead.objects.get().seal))
    assert walk.intact  # the seals and links alone see nothing

    result = services.verify_evidence()
    assert not result.intact and result.broken_checkpoint == checkpoints.moment(checkpoint)
    assert "no longer matches: record 3 has another seal" in result.problem
    with pytest.raises(CommandError, match="BROKEN at a checkpoint"):
        call_command("verify_evidence")


def test_a_tail_cut_off_with_the_head_moved_back_is_caught(acknowledged, timestamped):
    acknowledged(*more_employees(2))
    checkpoints.make()
    tamper("DELETE FROM guidelines_acknowledgement WHERE sequence > 3")
    tamper("UPDATE guidelines_chainhead SET sequence = 3, seal = %s",
           [Acknowledgement.objects.get(sequence=3).seal])
    result = services.verify_evidence()
    assert not result.intact and result.first_break_sequence == 4
    assert "covers record 5, but the chain ends at record 3" in result.problem


def test_a_forged_checkpoint_has_no_timestamp_for_its_digest(acknowledged, timestamped):
    acknowledged(*more_employees(2))
    checkpoint = checkpoints.make()
    resealed_chain(change_sequence=2)
    # The forger also rewrites the checkpoint to the new head and recomputes its digest ...
    forged = Checkpoint(**{**model_values(checkpoint), "head_seal": ChainHead.objects.get().seal})
    tamper("UPDATE guidelines_checkpoint SET head_seal = %s, digest = %s WHERE id = %s",
           [forged.head_seal, checkpoints.digest_of(forged), checkpoint.pk])
    # ... but cannot get the authority's signature over it for the day it claims.
    result = services.verify_evidence()
    assert not result.intact and "its timestamp is for another digest" in result.problem


def test_a_token_from_an_untrusted_authority_is_refused(acknowledged, timestamped, tmp_path, settings):
    checkpoint = checkpoints.make()
    with TimestampAuthority(tmp_path / "rogue") as rogue:
        settings.TIMESTAMP_URL = rogue.url  # a token signed by someone who is not the configured authority
        token = checkpoints.request_timestamp(checkpoint.digest)
    assert checkpoints.check_token(token, checkpoint.digest, checkpoints.trust_roots()) == (
        "its timestamp is not from a trusted authority")
    tamper("UPDATE guidelines_checkpoint SET timestamp_token = %s WHERE id = %s", [token, checkpoint.pk])
    assert "not from a trusted authority" in services.verify_evidence().problem


def test_a_removed_timestamp_is_noticed(acknowledged, timestamped):
    checkpoint = checkpoints.make()
    tamper("UPDATE guidelines_checkpoint SET timestamp_token = NULL WHERE id = %s", [checkpoint.pk])
    assert "has lost its timestamp" in services.verify_evidence().problem


def test_an_authority_that_does_not_answer_writes_no_checkpoint_and_the_task_retries(acknowledged, timestamped):
    timestamped.failing = True
    with pytest.raises(checkpoints.TimestampUnavailable):
        checkpoints.make()
    assert not Checkpoint.objects.exists()
    assert checkpoints.TimestampUnavailable in tasks.make_checkpoint.autoretry_for
    assert tasks.make_checkpoint.max_retries >= 5


def test_a_copy_is_written_outside_the_database(acknowledged, timestamped, settings, tmp_path):
    settings.CHECKPOINT_DIR = str(tmp_path / "outside")
    checkpoint = checkpoints.make()
    copy = json.loads((tmp_path / "outside").joinpath(checkpoint.copy_path.rsplit("/", 1)[1]).read_text())
    assert copy["digest"] == checkpoint.digest
    assert copy["statement"] == json.loads(checkpoints.statement(checkpoint))
    assert copy["timestamp_authority"] == timestamped.url and copy["timestamp_token"]


def test_without_an_authority_a_checkpoint_still_catches_a_rewrite(acknowledged):
    checkpoint = checkpoints.make()
    assert checkpoint.timestamp_token is None and checkpoint.timestamp_authority == ""
    resealed_chain(change_sequence=1)
    assert "no longer matches" in services.verify_evidence().problem


def test_checkpoints_cannot_be_changed_or_deleted(acknowledged):
    checkpoint = checkpoints.make()
    with pytest.raises(TypeError):
        checkpoint.save()
    with pytest.raises(TypeError):
        Checkpoint.objects.filter(pk=checkpoint.pk).update(head_seal="x")
    for statement in ("UPDATE guidelines_checkpoint SET head_seal = 'x'", "DELETE FROM guidelines_checkpoint"):
        with pytest.raises(Exception, match="refused|not allowed"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
    assert Checkpoint.objects.get().head_seal == checkpoint.head_seal


def test_the_settings_need_the_authoritys_certificates(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DEBUG": "1", "VAR_DIR": str(tmp_path), "TIMESTAMP_URL": "https://tsa.example.nl/"}
    result = subprocess.run([sys.executable, "-c", "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE',"
                             " 'intranet.settings'); django.setup()"], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "TIMESTAMP_CA_CERTS" in result.stderr.strip().splitlines()[-1]
    assert make_authority(tmp_path / "x").exists()


def test_the_docs_way_to_check_a_checkpoints_timestamp_works_with_openssl(acknowledged, timestamped, settings,
                                                                          tmp_path):
    """docs/evidence.md, "Checking a checkpoint's timestamp yourself", run as written on a real copy."""
    import re
    import shutil
    import subprocess

    from .test_evidence_doc import blocks, section

    settings.CHECKPOINT_DIR = str(tmp_path / "outside")
    checkpoint = checkpoints.make()
    shutil.copy(checkpoint.copy_path, tmp_path / "checkpoint.json")
    shutil.copy(timestamped.ca_path, tmp_path / "tsa-ca.pem")
    [script] = blocks(section("### Checking a checkpoint's timestamp yourself"), "sh")
    result = subprocess.run(["sh", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert re.match(rf"{checkpoint.digest}\s+statement.json", result.stdout)
    assert "Verification: OK" in result.stdout

    # A copy whose statement was edited no longer verifies against its token.
    copy = json.loads((tmp_path / "checkpoint.json").read_text())
    copy["statement"]["head_sequence"] += 1
    (tmp_path / "checkpoint.json").write_text(json.dumps(copy))
    edited = subprocess.run(["sh", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert edited.returncode != 0 and "Verification: OK" not in edited.stdout


# The restore drill -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_restore_drill_restores_verifies_and_matches_the_latest_outside_checkpoint(
        alice, bob, otto, version_1, web_meta, settings, tmp_path, capsys):
    from io import StringIO

    settings.CHECKPOINT_DIR = str(tmp_path / "outside")
    for employee in (alice, bob):
        services.acknowledge(employee=employee, version=version_1, language="en", meta=web_meta)
    checkpoints.make()
    services.acknowledge(employee=otto, version=version_1, language="en", meta=web_meta)
    out = StringIO()
    call_command("restore_drill", stdout=out)
    text = out.getvalue()
    assert "Evidence chain intact: 3 acknowledgements" in text and "1 checkpoint matches it" in text
    assert "record 2) matches the restored chain and is in the backup" in text
    assert "Restore drill passed" in text
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname LIKE %s",
                       [f"{connection.settings_dict['NAME']}_drill_%"])
        assert cursor.fetchone()[0] == 0  # the drill's database is gone again


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_restore_drill_fails_when_the_backup_no_longer_holds_the_outside_checkpoint(
        alice, bob, version_1, web_meta, settings, tmp_path):
    settings.CHECKPOINT_DIR = str(tmp_path / "outside")
    services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    checkpoints.make()
    # The database is rewritten afterwards (checkpoint and all), as a backup of a tampered database would be.
    resealed_chain(change_sequence=1)
    tamper("DELETE FROM guidelines_checkpoint")
    with pytest.raises(CommandError, match="does not match the latest checkpoint outside the database"):
        call_command("restore_drill")


def test_a_checkpoint_written_while_another_waits_for_its_timestamp_is_not_forked(acknowledged, timestamped,
                                                                                monkeypatch):
    real = checkpoints.request_timestamp

    def slow_authority(digest):
        monkeypatch.setattr(checkpoints, "request_timestamp", real)
        checkpoints.make()  # another run finishes first
        return real(digest)

    monkeypatch.setattr(checkpoints, "request_timestamp", slow_authority)
    with pytest.raises(checkpoints.CheckpointRace):
        checkpoints.make()
    assert Checkpoint.objects.count() == 1
    assert checkpoints.CheckpointRace in tasks.make_checkpoint.autoretry_for
    assert services.verify_evidence().checkpoints_checked == 1
