"""Give the application's database role exactly the privileges the application needs, and no more.

    manage.py grant_app_role ROLE           # revoke everything, grant the policy below, verify
    manage.py grant_app_role ROLE --check   # only verify; exits non-zero if anything differs

PostgreSQL only. Run it as the role that owns the tables (the one `migrate` runs as), after every
migration: docker-compose.yml's `migrate` service does. Web, workers and beat then log in as ROLE,
which must exist, must not be the owner nor a member of it, and must not be a superuser: only the
owner can disable or drop the triggers that keep evidence append-only, or replace their functions,
and only a superuser can switch them off with `session_replication_role`. TRUNCATE (which no row
trigger sees) is granted on no table at all.

The policy is the one place that says what the application may do to each table. Every model's
table must be covered: a table of the guidelines app needs its own entry, so a new model gets no
privileges until someone writes one (the command stops and names it), and a new column of a table
with column-limited UPDATE stays read-only. No default privileges are set for the same reason.
Privileges the role has beyond the policy (granted by hand, through PUBLIC or through membership
of another role) are revoked where this command can, and reported as an error where it cannot.
"""

import re
from dataclasses import dataclass

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, no_translations
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from psycopg import sql

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "REFERENCES")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")


@dataclass(frozen=True)
class Access:
    privileges: frozenset  # on the whole table
    update: tuple = ()  # field names: UPDATE on only their columns

    def with_update(self, *fields):
        return Access(self.privileges, fields)


READ = Access(frozenset({"SELECT"}))
APPEND = Access(frozenset({"SELECT", "INSERT"}))
READ_WRITE = Access(frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"}))

# Model label (lower case) -> what the application role may do to its table. Every model of the
# guidelines app is listed by name; nothing is inherited.
MODEL_POLICY = {
    # Evidence, append-only: inserted and read, never changed (database triggers refuse UPDATE and
    # DELETE even for the owner; without UPDATE and DELETE the role is refused before they fire).
    "guidelines.acknowledgement": APPEND,
    "guidelines.reading": APPEND,
    "guidelines.auditevent": APPEND,
    "guidelines.duedateextension": APPEND,
    "guidelines.importrun": APPEND,
    "guidelines.importchange": APPEND,
    "guidelines.notificationitem": APPEND,
    # Evidence with one narrow, legitimate change: UPDATE of only the columns that change.
    # Revocation (services.revoke_exemption); a trigger allows it once and refuses DELETE.
    "guidelines.exemption": APPEND.with_update("revoked_by", "revoked_at"),
    # Claiming, delivery and retries (notifications.delivery: claim, _mark_sent, _mark_failed,
    # record_attempt); a trigger refuses DELETE. Who was notified, about what and when stays.
    "guidelines.notificationlog": APPEND.with_update(
        "status", "claimed_by", "claimed_at", "sent_at", "attempts", "last_error"),
    # Generation progress and the result (reports.jobs). What was requested, by whom, and the code stay.
    "guidelines.report": APPEND.with_update(
        "status", "progress", "progress_total", "rows", "pages", "file", "size", "sha256", "finished_at", "error"),
    # The chain head: one row, made by migration 0002, moved forward by every acknowledgement under a
    # row lock (SELECT ... FOR UPDATE needs UPDATE). Never inserted or deleted by the application.
    "guidelines.chainhead": READ.with_update("sequence", "seal"),
    "guidelines.checkpoint": APPEND,
    # Questions and objections (questions.py): an objection or exception request is evidence, HR's
    # handling of it a record of its own, and a question's thread only grows. Nothing is changed or
    # removed; triggers refuse it too (migration 0025).
    "guidelines.question": APPEND,
    "guidelines.questionmessage": APPEND,
    "guidelines.objection": APPEND,
    "guidelines.objectionresolution": APPEND,
    # How far an employee read a version, as the reading page reports it (services.record_progress):
    # working state until the acknowledgement copies and seals it. Never deleted.
    "guidelines.readingprogress": APPEND.with_update("furthest_percent", "seconds_on_text", "read_to_end_at",
                                                     "updated_at"),
    # API tokens: issued, used (last use), revoked; never deleted (the security log names them by key).
    "guidelines.apitoken": APPEND.with_update("revoked_by", "revoked_at", "last_used_at"),
    # Webhooks (webhooks.py, webhook_events.py): events are recorded once and never change; a delivery
    # records its attempts and outcome; a subscriber is disabled and enabled, never deleted (its
    # deliveries refer to it). The secret, address and events stay as HR added them.
    "guidelines.webhookevent": APPEND,
    "guidelines.webhookdelivery": APPEND.with_update(
        "status", "attempts", "last_attempt_at", "delivered_at", "response_status", "last_error"),
    "guidelines.webhooksubscriber": APPEND.with_update(
        "is_active", "failure_streak", "disabled_at", "disabled_by", "disabled_reason"),
    # The organisation's history: appended only by the triggers on the employees, accounts and role
    # groups, which run as the tables' owner (migration 0018); read by "as of" reports. A trigger
    # refuses UPDATE and DELETE.
    "guidelines.employeehistory": READ,
    "guidelines.accounthistory": READ,
    "guidelines.rolegrouphistory": READ,
    # Drafts are written, edited and deleted, and their approval and works council's consent recorded (and
    # the consent replaced or withdrawn) by UPDATE; triggers freeze a version, its consent included, and its
    # texts once released (migrations 0002, 0009, 0024).
    "guidelines.version": READ_WRITE,
    "guidelines.versiontext": READ_WRITE,
    # The comprehension check's questions are drafted like the texts and frozen with them; every answer
    # an employee gives is evidence, append-only.
    "guidelines.quizquestion": READ_WRITE,
    "guidelines.quizattempt": APPEND,
    # Configuration and HR data (the import upserts employees; HR edits guidelines and audiences;
    # the admin may delete what nothing refers to: the foreign keys protect the rest).
    "guidelines.department": READ_WRITE,
    "guidelines.employee": READ_WRITE,
    "guidelines.guideline": READ_WRITE,
    "guidelines.guideline_audience_departments": READ_WRITE,
    "guidelines.guideline_audience_groups": READ_WRITE,
    # Django: permissions and content types are created by migrate (as the owner) and only read after.
    "auth.permission": READ,
}
# Tables of the other installed apps, per app, unless MODEL_POLICY names the model.
APP_POLICY = {
    "auth": READ_WRITE,  # users (last login, import, deactivation), groups (roles), their memberships
    "contenttypes": READ,
    "sessions": READ_WRITE,
    # The admin's change log is history too: added and read, never changed. (So the database refuses to
    # delete a user who has entries in it, as Django would cascade; deactivate accounts instead.)
    "admin": APPEND,
    "account": READ_WRITE,  # allauth's e-mail addresses and confirmations
    "socialaccount": READ_WRITE,
    "mfa": READ_WRITE,  # allauth's authenticators: added, used (last use, spent recovery codes), removed
    "pghistory": READ,  # its context table, unused: the history rows carry their context (organisation.py)
}
# Tables without a model.
OTHER_TABLES = {"django_migrations": READ}  # lets `showmigrations` and `migrate --check` run as the role


def table_policy():
    """{table name: (Access, {field name: column})} for every table of the installed models.

    Raises CommandError for a model without an entry, or an entry naming a field the model lacks.
    """
    tables, missing, problems = {}, [], []
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if not meta.managed or meta.proxy or meta.swapped:
            continue
        grant = MODEL_POLICY.get(meta.label_lower) or APP_POLICY.get(meta.app_label)
        if grant is None:
            missing.append(f"{meta.db_table} ({meta.label_lower})")
            continue
        columns = {}
        for name in grant.update:
            try:
                columns[name] = meta.get_field(name).column
            except Exception:  # FieldDoesNotExist, or a relation without a column
                problems.append(f"{meta.label_lower} has no field {name!r}")
        tables[meta.db_table] = (grant, columns)
    for table, grant in OTHER_TABLES.items():
        tables.setdefault(table, (grant, {}))
    if missing:
        raise CommandError(
            "No database privileges are defined for " + ", ".join(sorted(missing)) + ". Add each to MODEL_POLICY "
            "in guidelines/management/commands/grant_app_role.py, granting only what the application does to it "
            "(evidence: SELECT and INSERT)."
        )
    if problems:
        raise CommandError("MODEL_POLICY is out of date: " + "; ".join(problems) + ".")
    return tables


def stale_policy_entries():
    labels = {model._meta.label_lower for model in apps.get_models(include_auto_created=True)}
    return sorted(set(MODEL_POLICY) - labels)


class Command(BaseCommand):
    help = (
        "Grant the application's database role (not the owner, not a superuser) exactly the privileges in "
        "this command's policy, after revoking all others; run as the owner after every migrate. PostgreSQL only."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="the role web, workers and beat log in as, e.g. guidelines_app")
        parser.add_argument("--check", action="store_true", help="change nothing; exit non-zero if the role's "
                                                                 "privileges differ from the policy")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="the connection to use (the owner's)")

    @no_translations
    def handle(self, *args, role, check, database, **options):
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError(
                f"grant_app_role needs PostgreSQL; this database is {connection.vendor}. SQLite has no roles or "
                "privileges (the embedded default relies on its triggers alone)."
            )
        if not ROLE_NAME.match(role):
            raise CommandError(
                f"{role!r} is not a usable role name: lower-case letters, digits and underscores, at most 63, "
                "not starting with a digit."
            )
        policy = table_policy()
        for label in stale_policy_entries():
            self.stderr.write(f"warning: MODEL_POLICY names {label}, which is not an installed model.")

        with transaction.atomic(using=database), connection.cursor() as cursor:
            grants = Grants(cursor, connection, role, policy)
            grants.check_role()
            grants.find_tables()
            if not check:
                grants.apply()
            problems = grants.verify()
            if problems:
                if check:
                    raise CommandError(f"The privileges of {role} differ from the policy:\n  " + "\n  ".join(problems)
                                       + f"\nRun `manage.py grant_app_role {role}` as the owner to restore them.")
                raise CommandError(
                    f"The privileges of {role} still differ from the policy after granting (nothing was changed):"
                    "\n  " + "\n  ".join(problems) + "\nThese come from grants this user cannot revoke: to PUBLIC, "
                    f"to a role {role} is a member of, or by another grantor. Revoke them there and run this again."
                )
        if check:
            self.stdout.write(self.style.SUCCESS(f"The privileges of {role} match the policy."))
            return
        for table, (grant, columns) in sorted(policy.items()):
            if table in grants.oids:
                self.stdout.write(f"{table}: {describe(grant, columns)}")
        for _oid, _schema, sequence in grants.sequences:
            self.stdout.write(f"{sequence}: USAGE")
        self.stdout.write(self.style.SUCCESS(
            f"Granted {role} the privileges of the policy on {len(grants.oids)} tables; nothing else."))


def describe(grant, columns):
    parts = [privilege for privilege in TABLE_PRIVILEGES if privilege in grant.privileges]
    if columns:
        parts.append(f"UPDATE ({', '.join(columns.values())})")
    return ", ".join(parts) or "nothing"


class Grants:
    def __init__(self, cursor, connection, role, policy):
        self.cursor, self.connection, self.role, self.policy = cursor, connection, role, policy
        self.role_oid = None
        self.oids, self.qualified = {}, {}  # table name -> oid, (schema, table)
        self.schemas = {}  # oid -> name
        self.sequences = []  # (oid, schema, name) of serial sequences of tables the role inserts into

    def query(self, statement, params=()):
        self.cursor.execute(statement, params)
        return self.cursor.fetchall()

    def run(self, statement):
        self.cursor.execute(statement.as_string(self.connection.connection))

    def check_role(self):
        rows = self.query(
            "SELECT r.oid, r.rolname = current_user, r.rolsuper, r.rolcreaterole, r.rolreplication, r.rolbypassrls,"
            " pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = current_user), 'MEMBER')"
            " FROM pg_roles r WHERE r.rolname = %s",
            [self.role],
        )
        if not rows:
            raise CommandError(
                f"Role {self.role} does not exist. Create it first, as a superuser: CREATE ROLE {self.role} LOGIN "
                "PASSWORD '...'; (docker-compose.yml does on the first start of its PostgreSQL, with "
                "deploy/postgres/10-create-app-role.sh)."
            )
        self.role_oid, is_me, is_super, create_role, replication, bypass_rls, is_member = rows[0]
        if is_me:
            raise CommandError(
                f"{self.role} is the role running this command, the owner of the tables: the application must log "
                "in as another role, or it can disable and drop the evidence triggers."
            )
        refused = [name for name, has in (("SUPERUSER", is_super), ("CREATEROLE", create_role),
                                          ("REPLICATION", replication), ("BYPASSRLS", bypass_rls)) if has]
        if refused:
            raise CommandError(
                f"{self.role} has {', '.join(refused)}: a superuser bypasses every privilege and can switch the "
                "evidence triggers off (and CREATEROLE, REPLICATION and BYPASSRLS are no application's business). "
                f"ALTER ROLE {self.role} NO{' NO'.join(refused)}; or use another role."
            )
        if is_member:
            raise CommandError(
                f"{self.role} is a member of the role running this command, the owner of the tables: it can act "
                f"as the owner and disable and drop the evidence triggers. REVOKE the membership from {self.role}."
            )

    def find_tables(self):
        names = sorted(self.policy)
        rows = self.query(
            "SELECT t.name, c.oid, c.relnamespace, n.nspname, pg_has_role(current_user, c.relowner, 'USAGE')"
            " FROM unnest(%s::text[]) AS t(name)"
            " LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident(t.name))"
            " LEFT JOIN pg_namespace n ON n.oid = c.relnamespace",
            [names],
        )
        absent = [name for name, oid, *_ in rows if oid is None]
        if absent:
            raise CommandError(f"No table {', '.join(absent)}: run `manage.py migrate` first.")
        not_owner = [name for name, *_, owner in rows if not owner]
        if not_owner:
            raise CommandError(
                f"The current database user does not own {', '.join(not_owner)}: run grant_app_role with the "
                "credentials `migrate` uses (the owner of the tables)."
            )
        self.oids = {name: oid for name, oid, *_ in rows}
        self.qualified = {name: (schema, name) for name, _oid, _ns, schema, _owner in rows}
        self.schemas = {namespace: schema for _name, _oid, namespace, schema, _owner in rows}
        # Serial columns draw from a sequence the inserting role needs USAGE on; identity columns (what
        # Django creates) need nothing.
        inserting = [self.oids[table] for table, (grant, _c) in self.policy.items() if "INSERT" in grant.privileges]
        self.sequences = self.query(
            "SELECT s.oid, n.nspname, s.relname FROM pg_depend d"
            " JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
            " JOIN pg_namespace n ON n.oid = s.relnamespace"
            " WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass"
            " AND d.deptype = 'a' AND d.refobjid = ANY(%s::oid[]) ORDER BY 2, 3",
            [inserting],
        )

    def apply(self):
        role = sql.Identifier(self.role)
        for schema in sorted(self.schemas.values()):
            schema = sql.Identifier(schema)
            for kind in ("TABLES", "SEQUENCES"):
                self.run(sql.SQL("REVOKE ALL ON ALL {} IN SCHEMA {} FROM {}").format(sql.SQL(kind), schema, role))
            self.run(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(schema, role))
            self.run(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
            # New tables get nothing until the policy names them: clear any default privileges.
            for kind in ("TABLES", "SEQUENCES"):
                self.run(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE ALL ON {} FROM {}").format(
                    schema, sql.SQL(kind), role))
        for kind in ("TABLES", "SEQUENCES"):
            self.run(sql.SQL("ALTER DEFAULT PRIVILEGES REVOKE ALL ON {} FROM {}").format(sql.SQL(kind), role))

        for table, (grant, columns) in sorted(self.policy.items()):
            target = sql.Identifier(*self.qualified[table])
            if grant.privileges:
                privileges = sql.SQL(", ").join(sql.SQL(p) for p in TABLE_PRIVILEGES if p in grant.privileges)
                self.run(sql.SQL("GRANT {} ON TABLE {} TO {}").format(privileges, target, role))
            if columns:
                names = sql.SQL(", ").join(sql.Identifier(column) for column in columns.values())
                self.run(sql.SQL("GRANT UPDATE ({}) ON TABLE {} TO {}").format(names, target, role))

        for _oid, schema, sequence in self.sequences:
            self.run(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.Identifier(schema, sequence), role))

        # Only a superuser can SET session_replication_role = replica (which silences every trigger), unless
        # it was granted (PostgreSQL 15+); only a superuser can take that back.
        if self.connection.pg_version >= 150000 and self.query(
            "SELECT has_parameter_privilege(%s::oid, 'session_replication_role', 'SET')"
            " AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
            [self.role_oid],
        )[0][0]:
            self.run(sql.SQL("REVOKE SET ON PARAMETER session_replication_role FROM {}").format(role))

    def verify(self):
        """What the role can do (by any route) that the policy does not say, or cannot that it does."""
        problems = []
        role, schemas = self.role_oid, list(self.schemas)
        expected = {self.oids[table]: (grant, set(columns.values())) for table, (grant, columns) in self.policy.items()}

        for oid, name, privilege, has in self.query(
            "SELECT c.oid, c.oid::regclass::text, p.privilege, has_table_privilege(%s::oid, c.oid, p.privilege)"
            " FROM pg_class c CROSS JOIN unnest(%s::text[]) AS p(privilege)"
            " WHERE c.relnamespace = ANY(%s::oid[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
            " ORDER BY 2, 3",
            [role, list(TABLE_PRIVILEGES), schemas],
        ):
            should = privilege in expected[oid][0].privileges if oid in expected else False
            if has != should:
                problems.append(f"{name}: {privilege} {'granted, not in the policy' if has else 'missing'}")

        actual_columns, names = {}, {}
        for oid, name, column, privilege in self.query(
            "SELECT c.oid, c.oid::regclass::text, a.attname, p.privilege FROM pg_class c"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " CROSS JOIN unnest(%s::text[]) AS p(privilege)"
            " WHERE c.relnamespace = ANY(%s::oid[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
            " AND NOT has_table_privilege(%s::oid, c.oid, p.privilege)"
            " AND has_column_privilege(%s::oid, c.oid, a.attnum, p.privilege)",
            [list(COLUMN_PRIVILEGES), schemas, role, role],
        ):
            actual_columns.setdefault((oid, privilege), set()).add(column)
            names[oid] = name
        names.update((oid, table) for table, oid in self.oids.items())
        for oid, (grant, update_columns) in expected.items():
            if "UPDATE" not in grant.privileges and actual_columns.pop((oid, "UPDATE"), set()) != update_columns:
                problems.append(f"{names[oid]}: UPDATE should be limited to ({', '.join(sorted(update_columns))})")
        for (oid, privilege), columns in sorted(actual_columns.items()):
            problems.append(f"{names[oid]}: {privilege} on columns {', '.join(sorted(columns))} "
                            "not in the policy")

        allowed_sequences = {oid for oid, _schema, _name in self.sequences}
        for oid, name, privilege in self.query(
            "SELECT c.oid, c.oid::regclass::text, p.privilege FROM pg_class c"
            " CROSS JOIN unnest(%s::text[]) AS p(privilege)"
            " WHERE c.relnamespace = ANY(%s::oid[]) AND c.relkind = 'S'"
            " AND has_sequence_privilege(%s::oid, c.oid, p.privilege) ORDER BY 2, 3",
            [list(SEQUENCE_PRIVILEGES), schemas, role],
        ):
            if privilege != "USAGE" or oid not in allowed_sequences:
                problems.append(f"sequence {name}: {privilege} not in the policy")
        for oid, _schema, name in self.sequences:
            if not self.query("SELECT has_sequence_privilege(%s::oid, %s::oid, 'USAGE')", [role, oid])[0][0]:
                problems.append(f"sequence {name}: USAGE missing")

        for (name,) in self.query(
            "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = ANY(%s::oid[])"
            " AND pg_has_role(%s::oid, c.relowner, 'MEMBER')"
            " UNION ALL SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = ANY(%s::oid[])"
            " AND pg_has_role(%s::oid, p.proowner, 'MEMBER') ORDER BY 1",
            [schemas, role, schemas, role],
        ):
            problems.append(f"{name}: owned by the role or a role it is a member of")
        for schema, can_use, can_create in self.query(
            "SELECT nspname, has_schema_privilege(%s::oid, oid, 'USAGE'), has_schema_privilege(%s::oid, oid, 'CREATE')"
            " FROM pg_namespace WHERE oid = ANY(%s::oid[]) ORDER BY 1",
            [role, role, schemas],
        ):
            if not can_use:
                problems.append(f"schema {schema}: USAGE missing")
            if can_create:
                problems.append(f"schema {schema}: CREATE granted (through PUBLIC?): REVOKE CREATE ON SCHEMA "
                                f"{schema} FROM PUBLIC")
        if self.connection.pg_version >= 150000:
            (can_set,) = self.query("SELECT has_parameter_privilege(%s::oid, 'session_replication_role', 'SET')",
                                    [role])[0]
            if can_set:
                problems.append("may SET session_replication_role, which switches the evidence triggers off")
        for (kind,) in self.query(
            "SELECT DISTINCT d.defaclobjtype::text FROM pg_default_acl d, aclexplode(d.defaclacl) a"
            " WHERE a.grantee = %s::oid ORDER BY 1",
            [role],
        ):
            problems.append(f"default privileges grant it new objects (pg_default_acl type {kind})")
        return problems
