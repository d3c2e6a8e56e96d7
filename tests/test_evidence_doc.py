"""docs/evidence.md tells an auditor how to recompute a seal by hand: export the record with the doc's
SQL, run the doc's Python script on it. These tests do exactly that on real acknowledgements, with the
script run by a separate interpreter that sees only the standard library (`python -I -S`), and check
the doc's worked example, its SQL checks and its content-hash script against the application."""

import hashlib
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone as django_timezone

from guidelines import chain, services
from guidelines.models import Acknowledgement

from .factories import tamper

DOC = Path(__file__).resolve().parent.parent / "docs" / "evidence.md"
RECOMPUTE = "## Recomputing a seal by hand"
SQL_CHECKS = "## Checks an auditor can run in SQL"
CONTENT_HASH = "## Content hash of a text"
# The doc's export query names the record this way and tells the auditor to replace the number.
RECORD_NUMBER = "WHERE a.sequence = 42;"


def section(heading):
    """The doc from `heading` up to the next heading of the same or a higher level."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    level = len(heading.split(" ")[0])
    following = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(text, start)
    return text[start:following.start() if following else len(text)]


def blocks(text, language):
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "recompute_seal.py"
    path.write_text(blocks(section(RECOMPUTE), "python")[0], encoding="utf-8")
    return path


def export(sequence):
    """What `psql --tuples-only --no-align -f export_record.sql` prints for the record: the doc's
    query with its record number, its one value as PostgreSQL writes it as text."""
    query = blocks(section(RECOMPUTE), "sql")[0]
    assert query.count(RECORD_NUMBER) == 1
    query = query.replace(RECORD_NUMBER, "WHERE a.sequence = %s")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT record::text FROM ({query}) AS exported(record)", [sequence])
        rows = cursor.fetchall()
    assert len(rows) == 1
    return rows[0][0] + "\n"


def run(script, record_path):
    return subprocess.run([sys.executable, "-I", "-S", str(script), str(record_path)], capture_output=True,
                          text=True, encoding="utf-8", timeout=60)


def other_meta():
    return services.RequestMeta(
        channel="email", auth_method="sso:entra", ip_address="2001:db8:85a3:7:8a2e:370:7334:1",
        user_agent='Mozilla/5.0 "quoted" back\\slash\ttab – é ✓ ' + "x" * 600,
        sso_subject='sub "ü" \\ ✓', sso_amr="pwd mfa hwk", sso_acr="urn:example:loa:2",
    )


@pytest.fixture(params=["web, not opened before", "e-mail, opened before, awkward text, truncated IPv6",
                        "opened and acknowledged on a whole second"])
def ack(request, alice, bob, version_1, web_meta, settings, monkeypatch):
    # Bob first: Alice's record is then number 2 and links to a real seal, not the genesis value.
    services.acknowledge(employee=bob, version=version_1, language="nl", meta=web_meta)
    meta = web_meta
    if request.param.startswith("opened and acknowledged"):
        # A timestamp without microseconds is still sealed with six zeros ("…:41.000000Z").
        whole_second = django_timezone.now().replace(microsecond=0) + timedelta(seconds=1)
        monkeypatch.setattr(django_timezone, "now", lambda: whole_second)
        services.record_reading(employee=alice, version=version_1)
    if request.param.startswith("e-mail"):
        settings.EVIDENCE_IP_ADDRESS = "truncated"
        alice.user.last_name = 'Ørsted-Zoë "Q"'
        alice.user.save()
        services.record_reading(employee=alice, version=version_1)
        # Read to the end for 30 seconds, as the reading page reports it.
        later = django_timezone.now() + timedelta(seconds=40)
        monkeypatch.setattr(django_timezone, "now", lambda: later)
        services.record_progress(employee=alice, version=version_1, seconds=30, percent=100)
        meta = other_meta()
    ack, created = services.acknowledge(employee=alice, version=version_1, language="en", meta=meta)
    assert created and ack.sequence == 2
    ack = Acknowledgement.objects.get(pk=ack.pk)
    if request.param.startswith("opened and acknowledged"):
        assert ack.acknowledged_at.microsecond == 0 and ack.first_opened_at.microsecond == 0
    return ack


def test_the_script_recomputes_the_stored_seal_of_a_record_exported_as_the_doc_says(ack, script, tmp_path):
    record = tmp_path / "record.json"
    record.write_text(export(ack.sequence), encoding="utf-8")
    exported = json.loads(record.read_text(encoding="utf-8"))
    assert exported["seal"] == ack.seal and exported["previous_seal"] != chain.GENESIS_SEAL
    assert exported["seal_format"] == ack.seal_format == chain.CURRENT_SEAL_FORMAT == 3
    assert (exported["first_opened_at"] is None) == (ack.first_opened_at is None)
    assert (exported["ip_address"] is None) == (ack.ip_address is None)

    result = run(script, record)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [ack.seal, "equal to the stored seal"]


def test_the_script_recomputes_the_seal_from_the_certificate_alone(ack, script, tmp_path, settings):
    from pypdf import PdfReader

    from guidelines.reports import jobs

    settings.MEDIA_ROOT = tmp_path / "media"
    report = jobs.certificate(acknowledgement=ack, user=ack.employee.user, language="en")
    [attachment] = PdfReader(jobs.reports_dir() / report.file).attachments["acknowledgement.json"]
    record = tmp_path / "acknowledgement.json"
    record.write_bytes(attachment)

    result = run(script, record)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [ack.seal, "equal to the stored seal"]
    embedded = json.loads(attachment)
    embedded["employee_name"] += "."
    record.write_text(json.dumps(embedded), encoding="utf-8")
    assert run(script, record).returncode == 1


CHANGES = {
    "employee_name": lambda value: value + ".",
    "acknowledged_at": lambda value: value.replace(value[20:26], f"{(int(value[20:26]) + 1) % 10**6:06d}"),
    "first_opened_at": lambda value: "2026-01-31T09:15:00.000000Z" if value is None else None,
    "sequence": lambda value: value + 1,
    "previous_seal": lambda value: chain.GENESIS_SEAL,
    "ip_address": lambda value: "192.0.2.1",
    "user_agent": lambda value: value + " ",
    "manager_employee_number": lambda value: "E9999",
    "sso_amr": lambda value: "pwd",
    "read_to_end_at": lambda value: "2026-01-31T09:15:00.000000Z" if value is None else None,
    "seconds_on_text": lambda value: 5 if value is None else value + 1,
    "answers": lambda value: value + "x",
    "seal_format": lambda value: 1,
}


@pytest.mark.parametrize("field", CHANGES)
def test_one_changed_field_gives_a_different_seal(ack, script, tmp_path, field):
    exported = json.loads(export(ack.sequence))
    exported[field] = CHANGES[field](exported[field])
    record = tmp_path / "record.json"
    record.write_text(json.dumps(exported, ensure_ascii=False), encoding="utf-8")

    result = run(script, record)

    assert result.returncode == 1, result.stderr
    recomputed, verdict = result.stdout.splitlines()
    assert re.fullmatch(r"[0-9a-f]{64}", recomputed) and recomputed != ack.seal
    assert verdict == f"DIFFERENT from the stored seal {ack.seal}"


def test_the_script_accepts_any_utc_offset_and_refuses_what_it_cannot_seal(
        alice, version_1, web_meta, script, tmp_path):
    ack, _ = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    exported = json.loads(export(ack.sequence))
    record = tmp_path / "record.json"

    amsterdam = ack.acknowledged_at.astimezone(timezone(timedelta(hours=2)))
    record.write_text(json.dumps({**exported, "acknowledged_at": amsterdam.isoformat(), "sequence": str(ack.sequence)}))
    assert run(script, record).stdout.splitlines() == [ack.seal, "equal to the stored seal"]

    naive = ack.acknowledged_at.replace(tzinfo=None).isoformat()
    record.write_text(json.dumps({**exported, "acknowledged_at": naive}))
    result = run(script, record)
    assert result.returncode == 1 and "acknowledged_at has no time zone" in result.stderr

    record.write_text(json.dumps({key: value for key, value in exported.items() if key != "cycle"}))
    result = run(script, record)
    assert result.returncode == 1 and "missing sealed fields: cycle" in result.stderr

    record.write_text(json.dumps({**exported, "seal_format": 4}))
    result = run(script, record)
    assert result.returncode == 1 and "seal format 4: this script computes formats 1, 2 and 3 only" in result.stderr

    record.write_text(json.dumps({key: value for key, value in exported.items() if key != "sso_acr"}))
    result = run(script, record)
    assert result.returncode == 1 and "missing sealed fields: sso_acr" in result.stderr

    # Without its format, a record is read as format 1: a format 2 record's seal is then not found.
    record.write_text(json.dumps({key: value for key, value in exported.items() if key != "seal_format"}))
    assert run(script, record).returncode == 1


def test_the_script_recomputes_a_record_sealed_in_format_1(alice, version_1, web_meta, script, tmp_path):
    older = services.build_acknowledgement(employee=alice, version=version_1, text=version_1.texts.get(language="en"),
                                           at=django_timezone.now(), meta=web_meta)
    older.seal_format = 1
    services.append_seeded_acknowledgements([older])
    exported = json.loads(export(older.sequence))
    assert exported["seal_format"] == 1 and exported["seal"] == older.seal
    record = tmp_path / "record.json"
    for variant in (exported, {key: value for key, value in exported.items()
                               if key not in ("seal_format", "sso_subject", "sso_amr", "sso_acr")}):
        record.write_text(json.dumps(variant, ensure_ascii=False), encoding="utf-8")
        assert run(script, record).stdout.splitlines() == [older.seal, "equal to the stored seal"]


def test_the_worked_example_is_sealed_as_the_application_seals(script, tmp_path):
    example = section(RECOMPUTE).split("### Worked example", 1)[1]
    (record_text,), (hashed, seal) = blocks(example, "json"), blocks(example, "text")[:2]
    hashed, seal = hashed.rstrip("\n"), seal.strip()
    record = tmp_path / "example.json"
    record.write_text(record_text, encoding="utf-8")

    assert run(script, record).stdout.splitlines() == [seal]
    assert hashlib.sha256(hashed.encode()).hexdigest() == seal

    values = json.loads(record_text)
    as_stored = SimpleNamespace(**values)
    for name in ("acknowledged_at", "first_opened_at"):
        setattr(as_stored, name, datetime.fromisoformat(values[name]) if values[name] else None)
    assert chain.compute_seal(as_stored, guideline_slug=values["guideline_slug"],
                              version_number=values["version_number"]) == seal
    assert json.loads(hashed) == chain.sealed_values(as_stored, guideline_slug=values["guideline_slug"],
                                                     version_number=values["version_number"])


def _sql_checks():
    with connection.cursor() as cursor:
        results = []
        for query in blocks(section(SQL_CHECKS), "sql"):
            cursor.execute(query)
            results.append(cursor.fetchall())
    return results


def test_the_sql_checks_find_nothing_on_an_intact_chain_and_name_a_broken_record(alice, bob, otto, version_1,
                                                                                  web_meta):
    for employee in (alice, bob, otto):
        services.acknowledge(employee=employee, version=version_1, language="en", meta=web_meta)
    assert len(blocks(section(SQL_CHECKS), "sql")) == 3
    assert _sql_checks() == [[], [], []]

    tamper("UPDATE guidelines_acknowledgement SET major = major + 1 WHERE sequence = 3")
    tamper("UPDATE guidelines_acknowledgement SET previous_seal = %s WHERE sequence = 2", [chain.GENESIS_SEAL])
    tamper("DELETE FROM guidelines_acknowledgement WHERE sequence = 3")
    links, head, unsealed = _sql_checks()
    assert links == [(2,)]
    assert len(head) == 1
    assert unsealed == []


def test_the_unsealed_columns_check_names_a_record_whose_major_was_changed(alice, version_1, web_meta):
    ack, _ = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
    tamper("UPDATE guidelines_acknowledgement SET major = major + 1 WHERE id = %s", [ack.pk])
    assert services.verify_evidence().intact  # the seal does not cover it ...
    assert _sql_checks()[2] == [(ack.sequence,)]  # ... the doc's cross-check does


def test_the_content_hash_script_gives_the_published_hash(version_1, tmp_path):
    code = blocks(section(CONTENT_HASH), "python")[0]
    script = tmp_path / "content_hash.py"
    script.write_text(code, encoding="utf-8")
    for text in version_1.texts.all():
        body = tmp_path / f"{text.language}.md"
        for variant in (text.body, "\n\n" + text.body.replace("\n", "  \r\n") + "\n\n"):
            with open(body, "w", encoding="utf-8", newline="") as file:
                file.write(variant)
            result = run(script, body)
            assert result.stdout.strip() == text.content_hash, result.stderr
