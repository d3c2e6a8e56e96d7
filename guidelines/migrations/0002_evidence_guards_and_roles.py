"""Database-level guards for evidence, the chain head row, and the role groups.

Triggers make acknowledgements, readings and audit events append-only and freeze published
versions and their texts, whatever code or SQL client tries otherwise. (TRUNCATE is left to
database privileges: the application role should not own these tables.)
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APPEND_ONLY_TABLES = ["guidelines_acknowledgement", "guidelines_reading", "guidelines_auditevent"]
RELEASED = "('published', 'superseded', 'retired')"
VERSION_CHANGED = """
    NEW.guideline_id IS DISTINCT FROM OLD.guideline_id OR NEW.major IS DISTINCT FROM OLD.major
    OR NEW.minor IS DISTINCT FROM OLD.minor OR NEW.leading_language IS DISTINCT FROM OLD.leading_language
    OR NEW.effective_date IS DISTINCT FROM OLD.effective_date OR NEW.published_at IS DISTINCT FROM OLD.published_at
    OR NEW.published_by_id IS DISTINCT FROM OLD.published_by_id
    OR NEW.approved_by_id IS DISTINCT FROM OLD.approved_by_id OR NEW.approved_at IS DISTINCT FROM OLD.approved_at
    OR NEW.created_by_id IS DISTINCT FROM OLD.created_by_id
    OR NEW.status IN ('draft', 'approved') OR (OLD.status <> 'published' AND NEW.status = 'published')
"""

POSTGRESQL = [
    """
    CREATE FUNCTION guidelines_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% on % refused: this table holds append-only evidence', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    """,
    *[
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION guidelines_refuse_change();"
        for table in APPEND_ONLY_TABLES
    ],
    f"""
    CREATE FUNCTION guidelines_freeze_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.status IN {RELEASED} AND (TG_OP = 'DELETE' OR {VERSION_CHANGED}) THEN
            RAISE EXCEPTION 'version % is published and immutable; write a new draft instead', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END $$;
    """,
    "CREATE TRIGGER guidelines_version_frozen BEFORE UPDATE OR DELETE ON guidelines_version "
    "FOR EACH ROW EXECUTE FUNCTION guidelines_freeze_version();",
    f"""
    CREATE FUNCTION guidelines_freeze_text() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF (TG_OP <> 'INSERT' AND EXISTS (
                SELECT 1 FROM guidelines_version WHERE id = OLD.version_id AND status IN {RELEASED}))
           OR (TG_OP <> 'DELETE' AND EXISTS (
                SELECT 1 FROM guidelines_version WHERE id = NEW.version_id AND status IN {RELEASED})) THEN
            RAISE EXCEPTION 'the texts of a published version are immutable; write a new draft instead'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END $$;
    """,
    "CREATE TRIGGER guidelines_versiontext_frozen BEFORE INSERT OR UPDATE OR DELETE ON guidelines_versiontext "
    "FOR EACH ROW EXECUTE FUNCTION guidelines_freeze_text();",
]
POSTGRESQL_REVERSE = [
    *[f"DROP TRIGGER {table}_append_only ON {table};" for table in APPEND_ONLY_TABLES],
    "DROP TRIGGER guidelines_version_frozen ON guidelines_version;",
    "DROP TRIGGER guidelines_versiontext_frozen ON guidelines_versiontext;",
    "DROP FUNCTION guidelines_refuse_change(); DROP FUNCTION guidelines_freeze_version();"
    " DROP FUNCTION guidelines_freeze_text();",
]

SQLITE_TEXT_FROZEN = "SELECT RAISE(ABORT, 'the texts of a published version are immutable; write a new draft instead')"
SQLITE = [
    *[
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{op} on {table} refused: this table holds append-only evidence'); END;"
        for table in APPEND_ONLY_TABLES
        for op in ("UPDATE", "DELETE")
    ],
    f"""CREATE TRIGGER guidelines_version_frozen BEFORE UPDATE ON guidelines_version
        WHEN OLD.status IN {RELEASED} AND ({VERSION_CHANGED.replace("IS DISTINCT FROM", "IS NOT")})
        BEGIN SELECT RAISE(ABORT, 'this version is published and immutable; write a new draft instead'); END;""",
    f"""CREATE TRIGGER guidelines_version_no_delete BEFORE DELETE ON guidelines_version
        WHEN OLD.status IN {RELEASED}
        BEGIN SELECT RAISE(ABORT, 'this version is published and immutable; write a new draft instead'); END;""",
    *[
        f"""CREATE TRIGGER guidelines_versiontext_frozen_{op.lower()} BEFORE {op} ON guidelines_versiontext
            WHEN (SELECT status FROM guidelines_version WHERE id = {row}.version_id) IN {RELEASED}
            BEGIN {SQLITE_TEXT_FROZEN}; END;"""
        for op, row in (("INSERT", "NEW"), ("UPDATE", "OLD"), ("DELETE", "OLD"))
    ],
    f"""CREATE TRIGGER guidelines_versiontext_frozen_move BEFORE UPDATE ON guidelines_versiontext
        WHEN (SELECT status FROM guidelines_version WHERE id = NEW.version_id) IN {RELEASED}
        BEGIN {SQLITE_TEXT_FROZEN}; END;""",
]


def install_guards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": POSTGRESQL, "sqlite": SQLITE}.get(vendor)
    if statements is None:
        raise RuntimeError(f"No evidence guards for database vendor {vendor!r}; use PostgreSQL or SQLite.")
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def remove_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in POSTGRESQL_REVERSE:
            schema_editor.execute(statement)
    else:
        for (name,) in schema_editor.connection.cursor().execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'guidelines_%'"
        ).fetchall():
            schema_editor.execute(f"DROP TRIGGER {name}")


def create_chain_head(apps, schema_editor):
    apps.get_model("guidelines", "ChainHead").objects.create(pk=1, sequence=0, seal="0" * 64)


ROLES = {
    "HR": [
        "guidelines.manage",
        *[f"guidelines.{action}_{model}" for model in ("guideline", "version", "versiontext", "employee",
                                                        "department") for action in ("add", "change", "view")],
        "guidelines.delete_version",
        "guidelines.delete_versiontext",
        "guidelines.view_acknowledgement",
        "guidelines.view_auditevent",
        "guidelines.view_reading",
    ],
    "Approvers": ["guidelines.approve", "guidelines.view_version", "guidelines.view_versiontext"],
    "Auditors": ["guidelines.audit"],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after migrate; roles need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


class Migration(migrations.Migration):
    dependencies = [("guidelines", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunPython(install_guards, remove_guards),
        migrations.RunPython(create_chain_head, migrations.RunPython.noop),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
