"""The embedded default (SQLite) keeps the evidence guards after every migration.

SQLite rebuilds tables for some schema changes, which silently drops their triggers; this test
catches a migration that forgets to put them back.
"""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_sqlite(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embedded")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}", "VAR_DIR": str(folder),
           "DJANGO_SETTINGS_MODULE": "intranet.settings"}
    for command in (["migrate", "--noinput"], ["load_demo"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    connection = sqlite3.connect(folder / "db.sqlite3")
    yield connection
    connection.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE guidelines_acknowledgement SET channel = 'email'",
        "DELETE FROM guidelines_acknowledgement",
        "DELETE FROM guidelines_reading",
        "UPDATE guidelines_auditevent SET action = 'x'",
        "UPDATE guidelines_versiontext SET body = 'rewritten'",
        "UPDATE guidelines_version SET major = 9",
        "UPDATE guidelines_version SET approved_fingerprint = 'forged'",
        # The works council's consent is part of what was published (migration 0024).
        "UPDATE guidelines_version SET works_council_reference = 'forged'",
        "UPDATE guidelines_version SET works_council_consented_on = '2020-01-01'",
        "UPDATE guidelines_version SET works_council_fingerprint = 'forged'",
        "UPDATE guidelines_version SET works_council_recorded_by_id = NULL",
        "DELETE FROM guidelines_version",
        "UPDATE guidelines_guideline SET slug = 'renamed'",
        "UPDATE guidelines_acknowledgement SET seal_format = 2",
        "UPDATE guidelines_checkpoint SET head_seal = 'forged'",
        "DELETE FROM guidelines_checkpoint",
    ],
)
def test_sqlite_refuses_changes_to_evidence(demo_sqlite, statement):
    with pytest.raises(sqlite3.DatabaseError):
        demo_sqlite.execute(statement)
    demo_sqlite.rollback()


def test_sqlite_demo_versions_carry_the_works_council_consent(demo_sqlite):
    """The statements above are refused by the guard, not for want of something to change."""
    rows = demo_sqlite.execute("SELECT status, works_council_reference FROM guidelines_version").fetchall()
    assert len(rows) == 2 and all(reference.startswith("OR-") for _status, reference in rows)


def test_sqlite_demo_chain_is_intact(demo_sqlite):
    count, head = demo_sqlite.execute("SELECT COUNT(*), MAX(sequence) FROM guidelines_acknowledgement").fetchone()
    assert count == head > 50


# Every guard of the PostgreSQL schema has its SQLite counterpart after the whole migration history
# (a table rebuild in a later migration once dropped the guards of earlier ones).
EXPECTED_TRIGGERS = {
    "guidelines_acknowledgement": {"no_update", "no_delete"},
    "guidelines_reading": {"no_update", "no_delete"},
    "guidelines_auditevent": {"no_update", "no_delete"},
    "guidelines_duedateextension": {"no_update", "no_delete"},
    "guidelines_importrun": {"no_update", "no_delete"},
    "guidelines_importchange": {"no_update", "no_delete"},
    "guidelines_notificationitem": {"no_update", "no_delete"},
    "guidelines_notificationlog": {"no_delete"},
    "guidelines_exemption": {"revoke_only", "no_delete"},
    "guidelines_version": {"frozen", "no_delete"},
    "guidelines_versiontext": {"frozen_insert", "frozen_update", "frozen_delete", "frozen_move"},
    "guidelines_guideline": {"slug_frozen"},
    "guidelines_checkpoint": {"no_update", "no_delete"},
    "guidelines_employeehistory": {"no_update", "no_delete"},
    "guidelines_accounthistory": {"no_update", "no_delete"},
    "guidelines_rolegrouphistory": {"no_update", "no_delete"},
    "guidelines_webhookevent": {"no_update", "no_delete"},
    "guidelines_webhookdelivery": {"no_delete"},
    "guidelines_webhooksubscriber": {"no_delete"},
    "guidelines_quizquestion": {"frozen_insert", "frozen_update", "frozen_delete", "frozen_move"},
    "guidelines_quizattempt": {"no_update", "no_delete"},
    "guidelines_question": {"no_update", "no_delete"},
    "guidelines_questionmessage": {"no_update", "no_delete"},
    "guidelines_objection": {"no_update", "no_delete"},
    "guidelines_objectionresolution": {"no_update", "no_delete"},
}


def test_sqlite_has_every_evidence_guard(demo_sqlite):
    found = {}
    for name, table in demo_sqlite.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"):
        found.setdefault(table, set()).add(name.removeprefix(table + "_"))
    assert found == EXPECTED_TRIGGERS


def test_sqlite_refuses_changes_to_hr_evidence_and_the_log(demo_sqlite):
    employee, user = demo_sqlite.execute("SELECT id, user_id FROM guidelines_employee LIMIT 1").fetchone()
    now = "2027-01-01 00:00:00"
    rows = {
        "guidelines_exemption": ("(employee_id, guideline_id, reason, starts_on, granted_by_id, granted_at) "
                                 f"VALUES ({employee}, 1, 'leave', '2027-01-01', {user}, '{now}')", "reason = 'x'"),
        "guidelines_duedateextension": (
            "(employee_id, guideline_id, major, due_date, reason, granted_by_id, granted_at) "
            f"VALUES ({employee}, 1, 1, '2027-02-01', 'leave', {user}, '{now}')", "reason = 'x'"),
    }
    for table, (values, change) in rows.items():
        demo_sqlite.execute(f"INSERT INTO {table} {values}")
        with pytest.raises(sqlite3.DatabaseError):
            demo_sqlite.execute(f"UPDATE {table} SET {change}")
        with pytest.raises(sqlite3.DatabaseError):
            demo_sqlite.execute(f"DELETE FROM {table}")
    demo_sqlite.rollback()


def test_sqlite_refuses_changes_to_questions_and_objections(demo_sqlite):
    """A thread, an objection and HR's handling of it, written as the application writes them; then every
    change and removal is refused."""
    employee, user = demo_sqlite.execute("SELECT id, user_id FROM guidelines_employee LIMIT 1").fetchone()
    guideline, version = demo_sqlite.execute("SELECT guideline_id, id FROM guidelines_version "
                                             "WHERE status = 'published' LIMIT 1").fetchone()
    now = "2027-01-01 00:00:00"
    demo_sqlite.execute("INSERT INTO guidelines_question (employee_id, guideline_id, version_id, language, asked_at) "
                        f"VALUES ({employee}, {guideline}, {version}, 'en', '{now}')")
    question = demo_sqlite.execute("SELECT max(id) FROM guidelines_question").fetchone()[0]
    demo_sqlite.execute("INSERT INTO guidelines_questionmessage (question_id, author_id, role, text, written_at) "
                        f"VALUES ({question}, {user}, 'employee', 'Why?', '{now}')")
    demo_sqlite.execute(
        "INSERT INTO guidelines_objection (kind, employee_id, guideline_id, version_id, major, language, content_hash, "
        "statement, reason, recorded_at, auth_method, user_agent, sso_subject, sso_amr, sso_acr, employee_number, "
        f"employee_name, department_name) VALUES ('objection', {employee}, {guideline}, {version}, 1, 'en', 'x', "
        f"'I object.', 'Because.', '{now}', 'password', '', '', '', '', 'E1', 'Someone', '')")
    objection = demo_sqlite.execute("SELECT max(id) FROM guidelines_objection").fetchone()[0]
    demo_sqlite.execute("INSERT INTO guidelines_objectionresolution (objection_id, outcome, note, resolved_by_id, "
                        f"resolved_at) VALUES ({objection}, 'answered', 'Noted.', {user}, '{now}')")
    for table, change in (("guidelines_question", "language = 'nl'"), ("guidelines_questionmessage", "text = 'x'"),
                          ("guidelines_objection", "reason = 'x'"), ("guidelines_objectionresolution", "note = 'x'")):
        with pytest.raises(sqlite3.DatabaseError, match="append-only evidence"):
            demo_sqlite.execute(f"UPDATE {table} SET {change}")
        with pytest.raises(sqlite3.DatabaseError, match="append-only evidence"):
            demo_sqlite.execute(f"DELETE FROM {table}")
    demo_sqlite.rollback()
