import importlib

from django.db import migrations, models
from django.db.models import F

# A guideline's title in each language (Guideline.title returns the reader's). The one title there
# was becomes both; HR can then give the Dutch or English one in the guideline's settings.

# SQLite rebuilds the table for these changes, and its triggers go with the old one: the guard that
# keeps a published guideline's slug (0009) is put back afterwards.
HARDENING = importlib.import_module("guidelines.migrations.0009_security_hardening")
SQLITE_SLUG_GUARD = next(statement for statement in HARDENING.SQLITE if "guidelines_guideline_slug_frozen" in statement)


def restore_sqlite_slug_guard(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS guidelines_guideline_slug_frozen;")
            cursor.execute(SQLITE_SLUG_GUARD)


def copy_title(apps, schema_editor):
    apps.get_model("guidelines", "Guideline").objects.update(title_nl=F("title"), title_en=F("title"))


def copy_title_back(apps, schema_editor):
    apps.get_model("guidelines", "Guideline").objects.update(title=F("title_en"))


class Migration(migrations.Migration):
    dependencies = [("guidelines", "0018_history_written_by_its_owner")]

    operations = [
        # Undone last when the migration is reversed: after SQLite's rebuild for the one title again.
        migrations.RunPython(migrations.RunPython.noop, restore_sqlite_slug_guard, elidable=False),
        migrations.AddField("guideline", "title_nl",
                            models.CharField(default="", max_length=200, verbose_name="Title (Dutch)")),
        migrations.AddField("guideline", "title_en",
                            models.CharField(default="", max_length=200, verbose_name="Title (English)")),
        # With a default, so that undoing the removal below can add the column back to existing rows.
        migrations.AlterField("guideline", "title", models.CharField(default="", max_length=200, verbose_name="title")),
        migrations.RunPython(copy_title, copy_title_back, elidable=False),
        migrations.RemoveField("guideline", "title"),
        migrations.AlterField("guideline", "title_nl", models.CharField(max_length=200, verbose_name="Title (Dutch)")),
        migrations.AlterField("guideline", "title_en",
                              models.CharField(max_length=200, verbose_name="Title (English)")),
        migrations.AlterField(
            "guideline", "slug",
            models.SlugField(unique=True, verbose_name="slug", help_text=(
                "The guideline's name in web addresses, e.g. social-media: lowercase letters, digits and "
                "hyphens. It cannot be changed later.")),
        ),
        migrations.AlterModelOptions(
            name="guideline",
            options={
                "ordering": ["slug"], "verbose_name": "guideline", "verbose_name_plural": "guidelines",
                "permissions": [
                    ("manage", "Can author, publish and retire guidelines and see dashboards"),
                    ("approve", "Can approve guideline versions (four-eyes)"),
                    ("audit", "Can read dashboards, reports and verification results"),
                ],
            },
        ),
        migrations.RunPython(restore_sqlite_slug_guard, migrations.RunPython.noop, elidable=False),
    ]
