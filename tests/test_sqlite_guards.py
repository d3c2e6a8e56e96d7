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
        "DELETE FROM guidelines_version",
    ],
)
def test_sqlite_refuses_changes_to_evidence(demo_sqlite, statement):
    with pytest.raises(sqlite3.DatabaseError):
        demo_sqlite.execute(statement)
    demo_sqlite.rollback()


def test_sqlite_demo_chain_is_intact(demo_sqlite):
    count, head = demo_sqlite.execute("SELECT COUNT(*), MAX(sequence) FROM guidelines_acknowledgement").fetchone()
    assert count == head > 50
