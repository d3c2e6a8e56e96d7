"""The works council step (WOR art. 27): a guideline can require the works council's consent before a
version is published, and a version records that consent (the day, the council's reference, a note, who
recorded it and when, and the fingerprint of the draft it was given for).

The consent is part of what was published: the version guard as 0024 left it is replaced by one that
also freezes the consent columns of a released version. On SQLite adding these columns rebuilds the
version and guideline tables, and a table cannot be rebuilt while another table's trigger names it; so
the guards of these tables, of the texts and of the comprehension questions (0002, 0009's slug guard,
0025) come off first and go back on afterwards, the version guard in its new form.
"""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

GUARDS = importlib.import_module("guidelines.migrations.0002_evidence_guards_and_roles")
HARDENING = importlib.import_module("guidelines.migrations.0009_security_hardening")
# The version guard as 0024 left it (0009's columns and the reading requirement), plus the consent.
PREVIOUS = importlib.import_module("guidelines.migrations.0024_reading_proof")
COMPREHENSION = importlib.import_module("guidelines.migrations.0025_comprehension_check")
CONSENT_COLUMNS = ("works_council_consented_on", "works_council_reference", "works_council_note",
                   "works_council_recorded_by_id", "works_council_recorded_at", "works_council_fingerprint")
VERSION_CHANGED = PREVIOUS.VERSION_CHANGED + "".join(
    f" OR NEW.{column} IS DISTINCT FROM OLD.{column}" for column in CONSENT_COLUMNS)


# The version guard's statements, with another list of columns: as 0024 writes them.
_postgresql_freeze = PREVIOUS._postgresql_freeze
_sqlite_freeze = PREVIOUS._sqlite_freeze


def _sqlite_statement(statements, name):
    return next(statement for statement in statements if statement.startswith(f"CREATE TRIGGER {name} "))


# Every SQLite trigger on, or naming, the tables this migration rebuilds, besides the version freeze.
SQLITE_OTHER_GUARDS = {
    name: _sqlite_statement(GUARDS.SQLITE, name) for name in (
        "guidelines_version_no_delete", "guidelines_versiontext_frozen_insert",
        "guidelines_versiontext_frozen_update", "guidelines_versiontext_frozen_delete",
        "guidelines_versiontext_frozen_move")
} | {"guidelines_guideline_slug_frozen": _sqlite_statement(HARDENING.SQLITE, "guidelines_guideline_slug_frozen")} | {
    # 0025's questions are frozen with their version: those triggers name the version table too.
    name: _sqlite_statement(COMPREHENSION.SQLITE, name) for name in (
        "guidelines_quizquestion_frozen_insert", "guidelines_quizquestion_frozen_update",
        "guidelines_quizquestion_frozen_delete", "guidelines_quizquestion_frozen_move")
}
SQLITE_GUARD_NAMES = ["guidelines_version_frozen", *SQLITE_OTHER_GUARDS]


def _drop_sqlite_guards(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for name in SQLITE_GUARD_NAMES:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name};")


def _install(schema_editor, changed):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute(_postgresql_freeze(changed))
            return
        _drop_sqlite_guards(schema_editor)
        for statement in (_sqlite_freeze(changed), *SQLITE_OTHER_GUARDS.values()):
            cursor.execute(statement)


def freeze_the_consent(apps, schema_editor):
    _install(schema_editor, VERSION_CHANGED)


def freeze_without_the_consent(apps, schema_editor):
    _install(schema_editor, PREVIOUS.VERSION_CHANGED)


def drop_sqlite_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        _drop_sqlite_guards(schema_editor)


def unfreeze_the_consent(apps, schema_editor):
    """Reversing: PostgreSQL's guard as 0009 left it; SQLite's guards come off for the rebuild and go back
    on, as they were, once it is done (restore_sqlite_guards)."""
    if schema_editor.connection.vendor == "postgresql":
        freeze_without_the_consent(apps, schema_editor)
    else:
        _drop_sqlite_guards(schema_editor)


def restore_sqlite_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        freeze_without_the_consent(apps, schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('guidelines', '0025_comprehension_check'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # Undone last when the migration is reversed: after SQLite's rebuild without the new columns.
        migrations.RunPython(drop_sqlite_guards, restore_sqlite_guards, elidable=False),
        migrations.AddField(
            model_name='guideline',
            name='requires_works_council_consent',
            field=models.BooleanField(default=False, help_text="Rules on employee conduct need the works council's consent (WOR art. 27): a version is published only once the works council's consent to exactly its text is recorded.", verbose_name="works council's consent required"),
        ),
        migrations.AddField(
            model_name='version',
            name='works_council_consented_on',
            field=models.DateField(editable=False, null=True, verbose_name='works council consented on'),
        ),
        migrations.AddField(
            model_name='version',
            name='works_council_fingerprint',
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='version',
            name='works_council_note',
            field=models.TextField(blank=True, editable=False, verbose_name="note on the works council's consent"),
        ),
        migrations.AddField(
            model_name='version',
            name='works_council_recorded_at',
            field=models.DateTimeField(editable=False, null=True, verbose_name="works council's consent recorded at"),
        ),
        migrations.AddField(
            model_name='version',
            name='works_council_recorded_by',
            field=models.ForeignKey(editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name="works council's consent recorded by"),
        ),
        migrations.AddField(
            model_name='version',
            name='works_council_reference',
            field=models.CharField(blank=True, editable=False, max_length=50, verbose_name="works council's reference"),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('review_requested', 'approval requested'), ('version_sent_back', 'draft sent back'), ('version_approved', 'version approved'), ('version_published', 'version published'), ('guideline_created', 'guideline created'), ('guideline_changed', 'guideline settings changed'), ('guideline_retired', 'guideline retired'), ('exemption_granted', 'exemption granted'), ('exemption_revoked', 'exemption revoked'), ('due_date_extended', 'due date extended'), ('employees_imported', 'employees imported'), ('chain_verified', 'evidence chain verified'), ('checkpoint_made', 'evidence checkpoint made'), ('demo_loaded', 'demo data loaded'), ('reminders_planned', 'reminder cycle planned'), ('nudge_requested', 'reminders sent by HR'), ('announcement_planned', 'publication announced'), ('report_generated', 'report generated'), ('report_downloaded', 'report downloaded'), ('report_verified', 'report verified'), ('draft_saved', 'draft saved'), ('admin_changed', 'changed in the admin'), ('roles_changed', 'roles changed'), ('api_token_issued', 'API token issued'), ('api_token_revoked', 'API token revoked'), ('webhook_added', 'webhook subscriber added'), ('webhook_disabled', 'webhook subscriber disabled'), ('webhook_enabled', 'webhook subscriber enabled'), ('works_council_consent_recorded', "works council's consent recorded"), ('works_council_consent_withdrawn', "works council's consent withdrawn")], max_length=40, verbose_name='action'),
        ),
        migrations.RunPython(freeze_the_consent, unfreeze_the_consent, elidable=False),
    ]
