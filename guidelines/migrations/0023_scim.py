"""Provisioning looks an account up by its address in any case (SCIM's userName is not case-exact; Django's
iexact is UPPER(column) = UPPER(value)): indexes on UPPER(username) and UPPER(email) of the user table, so
that a lookup reads a few rows rather than every account; and a partial index of the accounts whose
username or address holds a character outside printable ASCII, which imports.load_concerned reads
whole (see NOT_PLAIN_ASCII there: its query spells the same condition). PostgreSQL only (the embedded
SQLite is small). Depends on 0021; the webhooks branch adds a 0022, and the dependency follows it when
both are merged."""

from django.conf import settings
from django.db import migrations

INDEXES = {"guidelines_user_upper_username": "username", "guidelines_user_upper_email": "email"}


def _table(apps):
    return apps.get_model(settings.AUTH_USER_MODEL)._meta.db_table


UNUSUAL = "guidelines_user_unusual_address"


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for name, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(_table(apps))} (UPPER({quote(column)}::text))")
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {quote(UNUSUAL)} ON {quote(_table(apps))} (id) "
                          "WHERE (username::text ~ '[^ -~]' OR email::text ~ '[^ -~]')")
    # Fresh statistics, so that the planner sees how few rows the partial index holds (before the next
    # autovacuum it would estimate the pattern to match most accounts and read the whole table).
    schema_editor.execute(f"ANALYZE {quote(_table(apps))}")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in [*INDEXES, UNUSUAL]:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):

    dependencies = [
        ("guidelines", "0022_webhooks"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
