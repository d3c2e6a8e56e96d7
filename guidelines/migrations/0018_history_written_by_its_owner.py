from django.db import migrations

# The history of the organisation is written by its triggers only. Their functions run as the owner of
# the tables (SECURITY DEFINER, with a fixed search_path), so the application's database role needs no
# INSERT on the history tables (grant_app_role gives it SELECT): it cannot append a made-up record,
# say one dated last month. A later migration that reinstalls these triggers (pgtrigger writes CREATE
# OR REPLACE FUNCTION) must do this again; tests/test_db_privileges.py notices.
TRACKED_TABLES = "'guidelines_employee'::regclass, 'auth_user'::regclass, 'auth_user_groups'::regclass"


def _functions(security):
    return f"""
    DO $$
    DECLARE function regprocedure;
    BEGIN
        FOR function IN SELECT DISTINCT tgfoid::regprocedure FROM pg_trigger
                        WHERE tgname LIKE 'pgtrigger_%' AND tgrelid IN ({TRACKED_TABLES})
        LOOP
            EXECUTE format('ALTER FUNCTION %s {security}', function);
        END LOOP;
    END $$;
    """


def _alter(schema_editor, security):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(_functions(security))  # without parameters: the % signs are SQL's


def install(apps, schema_editor):
    _alter(schema_editor, "SECURITY DEFINER SET search_path = pg_catalog, public")


def remove(apps, schema_editor):
    _alter(schema_editor, "SECURITY INVOKER RESET search_path")


class Migration(migrations.Migration):

    dependencies = [
        ("guidelines", "0017_reacknowledge_limit"),
    ]

    operations = [
        migrations.RunPython(install, remove),
    ]
