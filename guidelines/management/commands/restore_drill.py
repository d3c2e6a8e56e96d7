"""The restore drill of docs/operations.md as one command: dump the database as a backup would,
restore the dump into a new database, verify the evidence there (chain and checkpoints), and check
that the restored chain still holds the latest checkpoint kept outside the database.

PostgreSQL: pg_dump and pg_restore must be on the PATH, and the database user must be allowed to
create databases (the owner of the tables usually is; run it as that role). The drill's database
is dropped afterwards unless --keep is given.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from guidelines.models import Acknowledgement, Checkpoint


class Command(BaseCommand):
    help = ("Dump the database, restore it into a new database, verify the evidence there and compare it with the "
            "latest checkpoint kept outside the database.")

    def add_arguments(self, parser):
        parser.add_argument("--keep", action="store_true", help="keep the restored database afterwards")

    def handle(self, *args, keep=False, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The restore drill runs on PostgreSQL (the production database); the embedded SQLite "
                               "default is copied as a file.")
        db = connection.settings_dict
        drill = f"{db['NAME']}_drill_{timezone.now():%Y%m%d%H%M%S}"[:63]
        env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
        target = ["--host", db["HOST"] or "127.0.0.1", "--port", str(db["PORT"] or 5432), "--username", db["USER"]]
        outside = latest_outside_checkpoint()
        with tempfile.TemporaryDirectory() as folder:
            dump = Path(folder) / "backup.dump"
            self.step("Dumping", ["pg_dump", *target, "--format", "custom", "--file", str(dump), db["NAME"]], env)
            with admin_connection(db) as admin:
                admin.execute(f'CREATE DATABASE "{drill}"')
            try:
                self.step("Restoring", ["pg_restore", *target, "--dbname", drill, "--no-owner", "--no-acl",
                                        "--exit-on-error", str(dump)], env)
                verified = self.verify(db, drill)
                self.compare(db, drill, outside)
            finally:
                if not keep:
                    with admin_connection(db) as admin:
                        admin.execute(f'DROP DATABASE IF EXISTS "{drill}" WITH (FORCE)')
        kept = f" The restored database {drill} was kept." if keep else ""
        self.stdout.write(self.style.SUCCESS(f"Restore drill passed: {verified}{kept}"))

    def step(self, what, command, env):
        self.stdout.write(f"{what} …")
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode:
            raise CommandError(f"{what} failed: {result.stderr.strip() or result.stdout.strip()}")

    def verify(self, db, drill):
        """manage.py verify_evidence against the restored database, in a process of its own."""
        url = (f"postgres://{quote(db['USER'])}:{quote(db.get('PASSWORD') or '')}@{db['HOST'] or '127.0.0.1'}:"
               f"{db['PORT'] or 5432}/{drill}")
        result = subprocess.run([sys.executable, "manage.py", "verify_evidence"], cwd=settings.BASE_DIR,
                                env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True)
        if result.returncode:
            raise CommandError(f"The restored evidence does not verify: {result.stderr.strip()}")
        return result.stdout.strip()

    def compare(self, db, drill, outside):
        """The restored chain holds the latest checkpoint kept outside the database: its record is there
        with the same seal (records made after the backup are lost, not altered)."""
        if outside is None:
            self.stdout.write("No checkpoint outside the database to compare with (CHECKPOINT_DIR unset or empty).")
            return
        sequence, seal = outside["statement"]["head_sequence"], outside["statement"]["head_seal"]
        with admin_connection(db, dbname=drill) as restored:
            row = restored.execute(f"SELECT seal FROM {Acknowledgement._meta.db_table} WHERE sequence = %s",
                                   [sequence]).fetchone()
            count = restored.execute(f"SELECT count(*) FROM {Checkpoint._meta.db_table} WHERE digest = %s",
                                     [outside["digest"]]).fetchone()[0]
        if sequence and (row is None or row[0] != seal):
            found = "is missing" if row is None else "has another seal"
            raise CommandError(f"The restored chain does not match the latest checkpoint outside the database "
                               f"({outside['statement']['made_at']}): record {sequence} {found}.")
        where = "and is in the backup" if count else "(made after the backup)"
        self.stdout.write(f"The latest checkpoint outside the database ({outside['statement']['made_at']}, record "
                          f"{sequence}) matches the restored chain {where}.")


def latest_outside_checkpoint():
    """The newest checkpoint copy in CHECKPOINT_DIR, or None."""
    if not settings.CHECKPOINT_DIR:
        return None
    copies = sorted(Path(settings.CHECKPOINT_DIR).glob("checkpoint-*.json"))
    return json.loads(copies[-1].read_text()) if copies else None


def admin_connection(db, dbname=None):
    """psycopg in autocommit as the database user: CREATE and DROP DATABASE cannot run in a transaction."""
    return psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                           password=db.get("PASSWORD") or None, dbname=dbname or db["NAME"], autocommit=True)

