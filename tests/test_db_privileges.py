"""The application's database role on real PostgreSQL (finding 15: the app must not own the evidence).

A fresh role is created per test module with docker-compose's init script (deploy/postgres/), given its
privileges by `manage.py grant_app_role` over the owner's connection (pytest-django creates the test
database as the superuser the suite connects as), and dropped at the end. Then the tests log in AS that
role, over psycopg and over Django's own connection: everything the application does works, and
everything that would let it rewrite or unguard evidence is refused by PostgreSQL.
"""

import io
import os
import secrets
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.test import Client
from django.urls import reverse
from psycopg import errors, sql

from guidelines import imports, notifications, publishing, services
from guidelines.management.commands import grant_app_role
from guidelines.models import (
    Acknowledgement,
    AuditEvent,
    ChainHead,
    DueDateExtension,
    Employee,
    Exemption,
    ImportChange,
    NotificationLog,
    Reading,
    Report,
    Version,
)
from guidelines.reports import jobs

from .factories import PASSWORD, make_draft

BASE_DIR = Path(__file__).resolve().parent.parent
INIT_SCRIPT = BASE_DIR / "deploy" / "postgres" / "10-create-app-role.sh"



@pytest.fixture(autouse=True)
def on_postgresql():
    # Database roles and privileges exist only on PostgreSQL: run this module against it (make test
    # does), never let it pass by skipping.
    assert connection.vendor == "postgresql", "tests/test_db_privileges.py needs DATABASE_URL on PostgreSQL"

# The evidence tables and what the application role may do to them, written out independently of the
# command's policy: a change there that widens them fails here.
APPEND_ONLY = [
    "guidelines_acknowledgement", "guidelines_reading", "guidelines_auditevent", "guidelines_duedateextension",
    "guidelines_importrun", "guidelines_importchange", "guidelines_notificationitem",
    # The body of a webhook event as it was signed and sent.
    "guidelines_webhookevent",
    # Every answer given to a comprehension question.
    "guidelines_quizattempt",
    # Questions and their threads, objections and exception requests, and HR's handling of them.
    "guidelines_question", "guidelines_questionmessage", "guidelines_objection", "guidelines_objectionresolution",
]
HISTORY = ["guidelines_employeehistory", "guidelines_accounthistory", "guidelines_rolegrouphistory"]
NARROW_UPDATE = {
    "guidelines_exemption": {"revoked_by_id", "revoked_at"},
    "guidelines_notificationlog": {"status", "claimed_by", "claimed_at", "sent_at", "attempts", "last_error"},
    "guidelines_chainhead": {"sequence", "seal"},
    "guidelines_report": {"status", "progress", "progress_total", "rows", "pages", "file", "size", "sha256",
                          "finished_at", "error"},
    # API tokens: revoked and their last use noted; the key, its hash, account and scopes never change.
    "guidelines_apitoken": {"revoked_by_id", "revoked_at", "last_used_at"},
    # Webhooks: a delivery's attempts and outcome; a subscriber disabled and enabled. The event (the body
    # that was signed), the message id, the address and the secret never change.
    "guidelines_webhookdelivery": {"status", "attempts", "last_attempt_at", "delivered_at", "response_status",
                                   "last_error"},
    "guidelines_webhooksubscriber": {"is_active", "failure_streak", "disabled_at", "disabled_by_id",
                                     "disabled_reason"},
    # Reading progress: how far and how long; whose reading of which version never changes.
    "guidelines_readingprogress": {"furthest_percent", "seconds_on_text", "read_to_end_at", "updated_at"},
}
EXPECTED = {
    **{table: {"SELECT", "INSERT"} for table in APPEND_ONLY},
    "guidelines_exemption": {"SELECT", "INSERT"},
    "guidelines_notificationlog": {"SELECT", "INSERT"},
    "guidelines_report": {"SELECT", "INSERT"},
    "guidelines_apitoken": {"SELECT", "INSERT"},
    "guidelines_webhookdelivery": {"SELECT", "INSERT"},
    "guidelines_webhooksubscriber": {"SELECT", "INSERT"},
    "guidelines_readingprogress": {"SELECT", "INSERT"},
    "guidelines_chainhead": {"SELECT"},
    # Drafts are edited and deleted; triggers freeze released versions and their texts.
    "guidelines_version": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    "guidelines_versiontext": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    "guidelines_quizquestion": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    # The organisation's history: written only by its triggers, as the tables' owner.
    **{table: {"SELECT"} for table in HISTORY},
}
GUARDED = [*APPEND_ONLY, *NARROW_UPDATE, "guidelines_version", "guidelines_versiontext", "guidelines_quizquestion"]
# Tables without a guard trigger: the chain head (verify_evidence detects a moved head), API tokens,
# reports (whose files carry their SHA-256 and code) and reading progress (working state until an
# acknowledgement seals it); privileges alone keep their other columns.
UNTRIGGERED = {"guidelines_chainhead", "guidelines_report", "guidelines_apitoken", "guidelines_readingprogress"}


@dataclass
class Role:
    name: str
    password: str


def database():
    return connection.settings_dict


def connect(role=None):
    """psycopg in autocommit to the test database: as the suite's (superuser) user, or as `role`."""
    db = database()
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, dbname=db["NAME"],
        user=role.name if role else db["USER"], password=(role.password if role else db["PASSWORD"]) or None,
        autocommit=True,
    )


def run_init_script(name, password):
    """deploy/postgres/10-create-app-role.sh as the postgres image runs it, against the test database."""
    assert shutil.which("psql"), "psql (PostgreSQL's client, installed by make test) runs the init script"
    db = database()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
        "PGHOST": db["HOST"] or "127.0.0.1", "PGPORT": str(db["PORT"] or 5432), "PGPASSWORD": db["PASSWORD"] or "",
        "POSTGRES_USER": db["USER"], "POSTGRES_DB": db["NAME"],
        "GUIDELINES_APP_USER": name, "GUIDELINES_APP_PASSWORD": password,
    }
    return subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def app_role(django_db_setup, django_db_blocker):
    role = Role(f"guidelines_app_test_{os.getpid()}_{secrets.token_hex(3)}", secrets.token_urlsafe(16))
    created = run_init_script(role.name, role.password)
    assert created.returncode == 0, created.stderr
    try:
        with django_db_blocker.unblock():
            call_command("grant_app_role", role.name, stdout=io.StringIO())
        yield role
    finally:
        with connect() as owner:
            owner.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role.name])
            owner.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role.name)))
            owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role.name)))


@contextmanager
def django_connects_as(role):
    """Django's default connection logs in as `role` inside the block (the suite's user again after it)."""
    default = connections["default"]
    saved = dict(default.settings_dict)
    default.close()
    default.settings_dict.update(USER=role.name, PASSWORD=role.password)
    try:
        yield
        with default.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == role.name
    finally:
        default.close()
        default.settings_dict.clear()
        default.settings_dict.update(saved)


def refused(cursor, statement, *, in_transaction=True):
    """True if PostgreSQL refuses the statement for lack of privilege. Each statement runs in a transaction of
    its own (rolled back if it fails); the connection is in autocommit."""
    try:
        if in_transaction:
            with cursor.connection.transaction():
                cursor.execute(statement)
        else:
            cursor.execute(statement)
    except errors.InsufficientPrivilege:
        return True
    return False


def user_triggers(table):
    with connect() as owner:
        return [name for (name,) in owner.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY 1", [table])]


# --- the role and its privileges ---------------------------------------------------------------------------


def test_the_init_script_creates_a_plain_login_role_that_owns_nothing(app_role):
    with connect() as owner:
        (attributes,) = owner.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls"
            " FROM pg_roles WHERE rolname = %s", [app_role.name]).fetchall()
        assert attributes == (True, False, False, False, False, False)
        owned = owner.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = %s"
            " UNION ALL SELECT count(*) FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE r.rolname = %s",
            [app_role.name, app_role.name]).fetchall()
        assert owned == [(0,), (0,)]
        member_of = owner.execute("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
                                  " WHERE r.rolname = %s", [app_role.name]).fetchone()
        assert member_of == (0,)
    again = run_init_script(app_role.name, "another password")  # a second run changes nothing
    assert again.returncode == 0, again.stderr
    with connect(app_role) as app:  # ... and the original password still works (where it is checked)
        assert app.execute("SELECT current_user").fetchone() == (app_role.name,)


def test_the_evidence_tables_grant_exactly_select_and_insert_and_truncate_is_granted_nowhere(app_role):
    with connect() as owner:
        rows = owner.execute(
            "SELECT c.relname, p.privilege FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " CROSS JOIN unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER'])"
            " AS p(privilege) WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')"
            " AND has_table_privilege(%s, c.oid, p.privilege)", [app_role.name]).fetchall()
        columns = owner.execute(
            "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT has_table_privilege(%s, c.oid, 'UPDATE')"
            " AND has_column_privilege(%s, c.oid, a.attnum, 'UPDATE')", [app_role.name, app_role.name]).fetchall()
        schema = owner.execute("SELECT has_schema_privilege(%s, 'public', 'USAGE'),"
                               " has_schema_privilege(%s, 'public', 'CREATE')", [app_role.name] * 2).fetchone()
    granted = {}
    for table, privilege in rows:
        granted.setdefault(table, set()).add(privilege)
    for table, expected in EXPECTED.items():
        assert granted.get(table, set()) == expected, table
    assert not [(table, privilege) for table, privilege in rows if privilege in ("TRUNCATE", "REFERENCES", "TRIGGER")]
    updatable = {}
    for table, column in columns:
        updatable.setdefault(table, set()).add(column)
    assert updatable == NARROW_UPDATE
    assert schema == (True, False)
    # Django's and allauth's tables: what Django needs; permissions, content types and migrations are read only.
    for table in ("auth_permission", "django_content_type", "django_migrations"):
        assert granted[table] == {"SELECT"}, table
    assert granted["django_admin_log"] == {"SELECT", "INSERT"}
    for table in ("django_session", "auth_user", "auth_user_groups", "account_emailaddress"):
        assert granted[table] == {"SELECT", "INSERT", "UPDATE", "DELETE"}, table


@pytest.mark.django_db
def test_grant_app_role_check_agrees_and_a_second_run_takes_back_extra_privileges(app_role):
    call_command("grant_app_role", app_role.name, check=True, stdout=io.StringIO())
    role = f'"{app_role.name}"'
    with connection.cursor() as cursor:  # inside this test's transaction: rolled back afterwards
        cursor.execute(f"GRANT UPDATE, DELETE, TRUNCATE ON guidelines_acknowledgement TO {role}")
        cursor.execute(f"GRANT INSERT ON guidelines_chainhead TO {role}")
        cursor.execute(f"GRANT UPDATE (reason) ON guidelines_exemption TO {role}")
        cursor.execute(f"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {role}")
    with pytest.raises(CommandError) as failure:
        call_command("grant_app_role", app_role.name, check=True, stdout=io.StringIO())
    for problem in ("guidelines_acknowledgement: TRUNCATE granted", "guidelines_acknowledgement: UPDATE granted",
                    "guidelines_acknowledgement: DELETE granted", "guidelines_chainhead: INSERT granted",
                    "guidelines_exemption: UPDATE should be limited to (revoked_at, revoked_by_id)",
                    "default privileges"):
        assert problem in str(failure.value)

    output = io.StringIO()
    call_command("grant_app_role", app_role.name, stdout=output)
    assert "guidelines_acknowledgement: SELECT, INSERT\n" in output.getvalue()
    assert "guidelines_exemption: SELECT, INSERT, UPDATE (revoked_by_id, revoked_at)\n" in output.getvalue()
    call_command("grant_app_role", app_role.name, check=True, stdout=io.StringIO())


# --- what the role cannot do -------------------------------------------------------------------------------


@pytest.mark.parametrize("table", GUARDED)
def test_the_application_role_cannot_truncate_or_unguard_an_evidence_table(app_role, table):
    triggers = user_triggers(table)
    assert bool(triggers) != (table in UNTRIGGERED), triggers
    with connect(app_role) as app, app.cursor() as cursor:
        attempts = {
            "TRUNCATE": f"TRUNCATE {table}",
            "TRUNCATE CASCADE": f"TRUNCATE {table} CASCADE",
            "DISABLE TRIGGER ALL": f"ALTER TABLE {table} DISABLE TRIGGER ALL",
            "DISABLE TRIGGER USER": f"ALTER TABLE {table} DISABLE TRIGGER USER",
            **{f"DISABLE TRIGGER {name}": f"ALTER TABLE {table} DISABLE TRIGGER {name}" for name in triggers},
            **{f"DROP TRIGGER {name}": f"DROP TRIGGER {name} ON {table}" for name in triggers},
            "CREATE TRIGGER": f"CREATE TRIGGER sneaky BEFORE INSERT ON {table} FOR EACH ROW "
                              "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
            "ALTER TABLE OWNER": f"ALTER TABLE {table} OWNER TO CURRENT_USER",
            "ALTER TABLE RENAME": f"ALTER TABLE {table} RENAME TO {table}_old",
            "DROP TABLE": f"DROP TABLE {table} CASCADE",
        }
        if table in APPEND_ONLY or table in NARROW_UPDATE:
            attempts["DELETE"] = f"DELETE FROM {table}"
            attempts["LOCK ACCESS EXCLUSIVE"] = f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        if table in APPEND_ONLY:
            attempts["UPDATE"] = f"UPDATE {table} SET id = id"
        accepted = [name for name, statement in attempts.items() if not refused(cursor, statement)]
        assert not accepted, f"{table}: the application role may {accepted}"

        # Granting itself more does not work either (PostgreSQL only warns), so UPDATE stays refused.
        cursor.execute(f"GRANT UPDATE, TRUNCATE ON {table} TO CURRENT_USER")
        if table in APPEND_ONLY:
            assert refused(cursor, f"UPDATE {table} SET id = id")
        assert refused(cursor, f"TRUNCATE {table}")
    assert user_triggers(table) == triggers


def test_the_application_role_cannot_switch_the_triggers_off_or_become_the_owner(app_role):
    with connect() as owner:
        owner_name = owner.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'guidelines_acknowledgement'"
                                   ).fetchone()[0]
    with connect(app_role) as app, app.cursor() as cursor:
        attempts = {
            "session_replication_role": "SET session_replication_role = replica",
            "session_replication_role (local)": "SET LOCAL session_replication_role = replica",
            "set_config": "SELECT set_config('session_replication_role', 'replica', false)",
            "ALTER ROLE SET": "ALTER ROLE CURRENT_USER SET session_replication_role = replica",
            "SET ROLE owner": sql.SQL("SET ROLE {}").format(sql.Identifier(owner_name)),
            "SET SESSION AUTHORIZATION": sql.SQL("SET SESSION AUTHORIZATION {}").format(sql.Identifier(owner_name)),
            "replace the guard function": "CREATE OR REPLACE FUNCTION guidelines_refuse_change() RETURNS trigger "
                                          "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
            "replace the version guard": "CREATE OR REPLACE FUNCTION guidelines_freeze_version() RETURNS trigger "
                                         "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
            "drop the guard function": "DROP FUNCTION guidelines_refuse_change() CASCADE",
            "own the guard function": "ALTER FUNCTION guidelines_refuse_change() OWNER TO CURRENT_USER",
            "CREATE TABLE": "CREATE TABLE public.guidelines_shadow (id integer)",
            "CREATE ROLE": "CREATE ROLE guidelines_escalation SUPERUSER",
            "ALTER ROLE SUPERUSER": "ALTER ROLE CURRENT_USER SUPERUSER",
            "DISABLE event triggers": "CREATE EVENT TRIGGER sneaky ON ddl_command_start EXECUTE FUNCTION now()",
        }
        accepted = [name for name, statement in attempts.items() if not refused(cursor, statement)]
        if not refused(cursor, "ALTER SYSTEM SET session_replication_role = replica", in_transaction=False):
            accepted.append("ALTER SYSTEM")
        assert not accepted, f"the application role may {accepted}"
        assert cursor.execute("SHOW session_replication_role").fetchone() == ("origin",)


def test_narrowly_updatable_evidence_refuses_every_other_column_and_delete(app_role):
    with connect(app_role) as app, app.cursor() as cursor:
        for statement in (
            "UPDATE guidelines_exemption SET reason = 'rewritten'",
            "UPDATE guidelines_exemption SET ends_on = NULL, revoked_at = now()",
            "UPDATE guidelines_notificationlog SET recipient_id = recipient_id",
            "UPDATE guidelines_notificationlog SET kind = 'reminder'",
            "UPDATE guidelines_report SET verification_code = 'X', status = 'done'",
            "UPDATE guidelines_report SET requested_by_id = NULL",
            "UPDATE guidelines_chainhead SET id = 2",
            "UPDATE guidelines_webhookevent SET body = '{}'",
            "UPDATE guidelines_webhookdelivery SET message_id = 'msg_x'",
            "UPDATE guidelines_webhooksubscriber SET url = 'https://attacker.example/'",
            "UPDATE guidelines_webhooksubscriber SET secret_encrypted = 'x'",
            "DELETE FROM guidelines_webhookdelivery",
            "DELETE FROM guidelines_webhooksubscriber",
            "INSERT INTO guidelines_chainhead (id, sequence, seal) VALUES (2, 0, 'x')",
            "DELETE FROM guidelines_chainhead",
            "INSERT INTO guidelines_auditevent (id, at, action, details) OVERRIDING SYSTEM VALUE "
            "VALUES (1, now(), 'x', '{}') ON CONFLICT (id) DO UPDATE SET action = 'y'",
        ):
            assert refused(cursor, statement), statement


# --- what the role can do: the application works -------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_application_works_as_the_application_role(app_role, alice, bob, hilde, otto, version_1, client_as,
                                                         web_meta, settings, tmp_path):
    """Sign-in, reading, acknowledging (chain head), a new version from draft to publication, exemptions,
    due-date extensions, reminder e-mails and report bookkeeping, all over Django's connection as the role."""
    settings.MEDIA_ROOT = tmp_path / "media"
    with django_connects_as(app_role):
        signed_in = Client(headers={"accept-language": "en"})  # allauth: password check, session, last login
        response = signed_in.post(reverse("account_login"), {"login": "bob@example.com", "password": PASSWORD})
        assert response.status_code == 302 and signed_in.session.get("_auth_user_id") == str(bob.user.pk)

        client = client_as(alice)
        assert client.get(reverse("guidelines:detail", args=["social-media"])).status_code == 200  # a reading
        response = client.post(reverse("guidelines:acknowledge", args=["social-media"]),
                               {"version": version_1.pk, "language": "en", "confirm": "on"})
        assert response.status_code == 302
        ack = Acknowledgement.objects.get(employee=alice)
        assert ack.first_opened_at == Reading.objects.get(employee=alice, version=version_1).first_opened_at
        assert services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta) == (ack, False)
        assert ChainHead.objects.get(pk=1).seal == ack.seal

        # HR: a new major version from draft to publication, then the employee acknowledges it.
        draft = make_draft(version_1.guideline, author=hilde, bodies={"nl": "# Nieuw\n\nTekst.\n",
                                                                       "en": "# New\n\nText.\n"})
        publishing.approve_version(version=draft, by=bob.user)
        version_2 = publishing.publish_version(version=draft, by=hilde, material=True)
        _, created = services.acknowledge(employee=alice, version=version_2, language="nl", meta=web_meta)
        assert created

        exemption = services.grant_exemption(employee=otto, guideline=version_2.guideline, by=hilde, reason="leave")
        services.revoke_exemption(exemption=exemption, by=hilde)
        assert Exemption.objects.get(pk=exemption.pk).revoked_at is not None
        services.extend_due_date(employee=bob, version=version_2, by=hilde, due_date=date(2099, 1, 1), reason="ill")
        assert DueDateExtension.objects.filter(employee=bob).exists()

        # The HR import: new users and employees, an upsert of a changed one, the run and its changes.
        header = ",".join(imports.COLUMNS)
        rows = [
            "E0100,new.one@example.com,New,One,Operations,E0002,2024-01-15,,nl",
            "E0101,new.two@example.com,New,Two,Logistics,,2024-01-15,,en",
            "E0099,otto@example.com,Otto,Example,Operations,,,,en",
        ]
        content = (f"{header}\r\n" + "\r\n".join(rows) + "\r\n").encode()
        result = imports.run_import(content, source="hr.csv", by=hilde)
        assert not result.errors, result.errors
        assert ImportChange.objects.filter(run=result.run).count() == 3
        assert Employee.objects.get(employee_number="E0099").department.name == "Operations"

        # Reminder e-mails: claimed (insert), sent (status update), and a failure recorded.
        day = date.today()
        drafts = notifications.compose_digests([bob.pk, otto.pk], day, kind=NotificationLog.Kind.NUDGE,
                                           version=version_2)
        assert drafts
        claimed = notifications.claim(drafts, day=day, claimed_by="task-1")
        notifications.deliver([pair for pair in claimed if pair[0].recipient != otto], day=day)
        notifications.give_up("task-1", [d.key for d in drafts if d.recipient == otto], "550 no such mailbox")
        assert set(NotificationLog.objects.values_list("status", flat=True)) <= {"sent", "failed"}

        # Report bookkeeping as reports.jobs does it (the PDF itself needs no database).
        report = Report.objects.create(kind=Report.Kind.AUDIT_PACK, verification_code="ROLE-TEST-1",
                                       requested_by=hilde, language="en", parameters={}, guideline=version_2.guideline)
        Report.objects.filter(pk=report.pk).update(status=Report.Status.RUNNING)
        Report.objects.filter(pk=report.pk).update(progress_total=1, pages=3, rows=2)
        with transaction.atomic():
            locked = Report.objects.select_for_update().get(pk=report.pk)
            locked.progress = 1
            locked.save(update_fields=["progress"])
        locked.status, locked.sha256, locked.size, locked.file = Report.Status.DONE, "0" * 64, 1, "x.pdf"
        locked.save(update_fields=["status", "sha256", "size", "file", "finished_at", "progress"])
        jobs.fail(Report.objects.create(kind=Report.Kind.AUDIT_PACK, verification_code="ROLE-TEST-2",
                                               language="en"), RuntimeError("boom"))

        result = services.verify_evidence()
        assert result.intact and result.checked == 2
        assert AuditEvent.objects.filter(action=AuditEvent.Action.CHAIN_VERIFIED).exists()

        # The ORM's refusals are now backed by the database's: raw UPDATE and DELETE are refused.
        with pytest.raises(Exception) as update:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("UPDATE guidelines_acknowledgement SET employee_name = 'someone else'")
        assert isinstance(update.value.__cause__, errors.InsufficientPrivilege)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_certificates_work_as_the_application_role(app_role, alice, version_1, web_meta, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    with django_connects_as(app_role):
        ack, _ = services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
        report = jobs.certificate(acknowledgement=ack, user=alice.user, language="en")
        assert report.status == Report.Status.DONE and len(report.sha256) == 64


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_checkpoints_work_as_the_application_role_and_stay_as_they_are(app_role, alice, version_1, web_meta):
    from psycopg import errors

    from guidelines import checkpoints

    with django_connects_as(app_role):
        services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)
        checkpoint = checkpoints.make()
        assert services.verify_evidence().checkpoints_checked == 1
        for statement in ("UPDATE guidelines_checkpoint SET head_seal = 'x'", "DELETE FROM guidelines_checkpoint"):
            with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement)
            assert isinstance(refused.value.__cause__, errors.InsufficientPrivilege)
    assert checkpoint.head_sequence == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_application_role_changes_the_organisation_with_history_but_cannot_write_history(app_role, alice):
    from psycopg import errors

    from guidelines.models import Department, Employee, EmployeeHistory

    sales = Department.objects.create(name="Sales")
    with django_connects_as(app_role):
        Employee.objects.filter(pk=alice.pk).update(department=sales)
        alice.user.groups.clear()
        for statement in (
            "INSERT INTO guidelines_employeehistory (pgh_created_at, pgh_label, pgh_obj_id) "
            f"VALUES ('2026-01-01', 'changed', {alice.pk})",
            "UPDATE guidelines_employeehistory SET department_id = NULL",
            "DELETE FROM guidelines_rolegrouphistory",
        ):
            with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement)
            assert isinstance(refused.value.__cause__, errors.InsufficientPrivilege), statement
    latest = EmployeeHistory.objects.filter(pgh_obj=alice).latest("pgh_id")
    assert latest.department == sales


# --- refusing to run -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_grant_app_role_refuses_unknown_invalid_superuser_and_owner_roles():
    with pytest.raises(CommandError, match="does not exist. Create it first"):
        call_command("grant_app_role", "guidelines_no_such_role")
    for name in ("Bad;name", "1role", "x" * 64, ""):
        with pytest.raises(CommandError, match="not a usable role name"):
            call_command("grant_app_role", name)
    with pytest.raises(CommandError, match="the role running this command"):
        call_command("grant_app_role", database()["USER"])
    superuser = f"guidelines_super_{secrets.token_hex(3)}"
    with connection.cursor() as cursor:  # inside this test's transaction: rolled back afterwards
        cursor.execute(f"CREATE ROLE {superuser} LOGIN SUPERUSER")
    with pytest.raises(CommandError, match="SUPERUSER"):
        call_command("grant_app_role", superuser)


def test_grant_app_role_exits_non_zero_on_sqlite(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "DEBUG": "1",
           "DJANGO_SETTINGS_MODULE": "intranet.settings", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "VAR_DIR": str(tmp_path), "CELERY_BROKER_URL": "memory://"}
    result = subprocess.run([sys.executable, "manage.py", "grant_app_role", "guidelines_app"], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "grant_app_role needs PostgreSQL; this database is sqlite" in result.stderr


def test_every_model_has_a_privilege_policy_and_a_new_one_stops_the_command(monkeypatch):
    policy = grant_app_role.table_policy()
    assert grant_app_role.stale_policy_entries() == []
    assert {table for table in policy if table.startswith("guidelines_")} >= set(EXPECTED)

    # A model of the guidelines app without an entry gets nothing: the command stops and names it.
    without_report = {label: grant for label, grant in grant_app_role.MODEL_POLICY.items()
                      if label != "guidelines.report"}
    monkeypatch.setattr(grant_app_role, "MODEL_POLICY", without_report)
    with pytest.raises(CommandError, match=r"No database privileges are defined for guidelines_report"):
        grant_app_role.table_policy()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_webhooks_work_as_the_application_role(app_role, hilde, alice, version_1, web_meta, settings):
    """Adding a subscriber, an event and its delivery after the acknowledgement commits, a delivery to a
    receiver on loopback, one given up on that disables the subscriber, and enabling it again."""
    from guidelines import webhook_events, webhooks
    from guidelines.models import WebhookDelivery, WebhookSubscriber

    from .webhook_receiver import Receiver

    settings.DEBUG, settings.WEBHOOK_ALLOW_PRIVATE, settings.WEBHOOK_DISABLE_AFTER = True, True, 1
    Event = WebhookSubscriber.Event
    with django_connects_as(app_role), Receiver() as receiver:
        subscriber, secret = webhooks.add_subscriber(by=hilde, name="GRC", url=receiver.url("/hooks"),
                                                     events=list(Event.values))
        services.acknowledge(employee=alice, version=version_1, language="en", meta=web_meta)  # commits: recorded
        delivery = WebhookDelivery.objects.get()
        assert webhooks.deliver(delivery.pk) == WebhookDelivery.Status.DELIVERED
        [failing] = webhook_events.record(Event.REPORT_READY, "report.ready:0", {}, None)
        webhooks.give_up(failing, "HTTP 500 Internal Server Error")
        subscriber.refresh_from_db()
        assert not subscriber.is_active
        webhooks.enable(subscriber, by=hilde)
    assert receiver.received[0].verify(secret)["type"] == "acknowledgement.created"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_works_councils_consent_works_as_the_application_role_and_is_frozen_once_published(app_role, hilde, bob,
                                                                                               version_1):
    """Recording (and recording again) the consent updates a draft, which the role may; once the version is
    published the version guard refuses changing its consent, although the role may UPDATE versions."""
    guideline = version_1.guideline
    guideline.requires_works_council_consent = True
    guideline.save()
    with django_connects_as(app_role):
        draft = make_draft(guideline, author=hilde, bodies={"nl": "# Nieuw\n", "en": "# New\n"})
        for reference in ("OR-2026-14", "OR-2026-15"):
            publishing.record_works_council_consent(version=draft, by=hilde, consented_on=date.today(),
                                                    reference=reference)
        publishing.approve_version(version=draft, by=bob.user)
        published = publishing.publish_version(version=draft, by=hilde, material=True)
        with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE guidelines_version SET works_council_reference = 'OR-forged' WHERE id = %s",
                           [published.pk])
        assert isinstance(refused.value.__cause__, errors.IntegrityConstraintViolation)  # the guard, not a privilege
    assert Version.objects.get(pk=published.pk).works_council_reference == "OR-2026-15"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_questions_and_objections_work_as_the_application_role(app_role, alice, hilde, version_1, web_meta):
    """Asking and answering, an exception request and the exemption HR grants from it, over Django's
    connection as the role; changing or removing any of it is refused for lack of privilege."""
    from guidelines import questions

    with django_connects_as(app_role):
        question = questions.ask(employee=alice, version=version_1, language="en", text="Photos of the party?")
        questions.answer(question=question, by=hilde, text="Only with consent.")
        request = questions.record_objection(employee=alice, version=version_1, language="en", kind="exception",
                                             reason="On leave.", meta=web_meta)
        resolution = questions.resolve(objection=request, by=hilde, outcome="exempted", note="Granted.")
        for statement in ("UPDATE guidelines_objection SET reason = 'rewritten'",
                          "UPDATE guidelines_questionmessage SET text = 'rewritten'",
                          "DELETE FROM guidelines_objectionresolution", "DELETE FROM guidelines_question"):
            with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement)
            assert isinstance(refused.value.__cause__, errors.InsufficientPrivilege), statement
    assert resolution.exemption.employee == alice and question.messages.count() == 2
