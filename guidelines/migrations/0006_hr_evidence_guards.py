"""Exemptions, due-date extensions and import runs are evidence: no deletes, and of an exemption
only its revocation may be filled in, once."""

from django.db import migrations

POSTGRESQL = [
    *[
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION guidelines_refuse_change();"
        for table in ("guidelines_duedateextension", "guidelines_importrun")
    ],
    """
    CREATE FUNCTION guidelines_revoke_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' OR OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL
           OR (NEW.employee_id, NEW.guideline_id, NEW.reason, NEW.starts_on, NEW.ends_on, NEW.granted_by_id,
               NEW.granted_at) IS DISTINCT FROM
              (OLD.employee_id, OLD.guideline_id, OLD.reason, OLD.starts_on, OLD.ends_on, OLD.granted_by_id,
               OLD.granted_at) THEN
            RAISE EXCEPTION 'an exemption can only be revoked, once' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$;
    """,
    "CREATE TRIGGER guidelines_exemption_revoke_only BEFORE UPDATE OR DELETE ON guidelines_exemption "
    "FOR EACH ROW EXECUTE FUNCTION guidelines_revoke_only();",
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER guidelines_duedateextension_append_only ON guidelines_duedateextension;",
    "DROP TRIGGER guidelines_importrun_append_only ON guidelines_importrun;",
    "DROP TRIGGER guidelines_exemption_revoke_only ON guidelines_exemption;",
    "DROP FUNCTION guidelines_revoke_only();",
]
SQLITE = [
    *[
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{op} on {table} refused: this table holds append-only evidence'); END;"
        for table in ("guidelines_duedateextension", "guidelines_importrun")
        for op in ("UPDATE", "DELETE")
    ],
    """CREATE TRIGGER guidelines_exemption_revoke_only BEFORE UPDATE ON guidelines_exemption
       WHEN OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL OR NEW.employee_id IS NOT OLD.employee_id
         OR NEW.guideline_id IS NOT OLD.guideline_id OR NEW.reason IS NOT OLD.reason
         OR NEW.starts_on IS NOT OLD.starts_on OR NEW.ends_on IS NOT OLD.ends_on
         OR NEW.granted_by_id IS NOT OLD.granted_by_id OR NEW.granted_at IS NOT OLD.granted_at
       BEGIN SELECT RAISE(ABORT, 'an exemption can only be revoked, once'); END;""",
    "CREATE TRIGGER guidelines_exemption_no_delete BEFORE DELETE ON guidelines_exemption "
    "BEGIN SELECT RAISE(ABORT, 'exemptions are evidence and cannot be deleted'); END;",
]


def install(apps, schema_editor):
    statements = {"postgresql": POSTGRESQL, "sqlite": SQLITE}[schema_editor.connection.vendor]
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        statements = POSTGRESQL_REVERSE
    else:
        statements = [
            "DROP TRIGGER guidelines_duedateextension_no_update", "DROP TRIGGER guidelines_duedateextension_no_delete",
            "DROP TRIGGER guidelines_importrun_no_update", "DROP TRIGGER guidelines_importrun_no_delete",
            "DROP TRIGGER guidelines_exemption_revoke_only", "DROP TRIGGER guidelines_exemption_no_delete",
        ]
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def grant_hr(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    hr = Group.objects.get(name="HR")
    for codename in ("view_exemption", "view_duedateextension", "view_importrun"):
        hr.permissions.add(Permission.objects.get(content_type__app_label="guidelines", codename=codename))


class Migration(migrations.Migration):
    dependencies = [("guidelines", "0005_hr_evidence")]

    operations = [
        migrations.RunPython(install, remove),
        migrations.RunPython(grant_hr, migrations.RunPython.noop),
    ]
