from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, no_translations

from guidelines import imports

REPORT_LINES = 50


class Command(BaseCommand):
    help = (
        "Import employees from the HR system's CSV export (upsert by employee number). A file with any "
        "error changes nothing and exits non-zero with a per-row report."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file: header row, comma or semicolon separated, UTF-8")
        parser.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")

    @no_translations  # operators get the English messages, like the other commands
    def handle(self, *args, file, dry_run, **options):
        path = Path(file)
        try:
            content = path.read_bytes()
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
            raise CommandError(f"Cannot read {file}: {getattr(exc, 'strerror', None) or exc}.") from None

        result = imports.run_import(content, source=path.name, dry_run=dry_run)
        if result.errors:
            for error in result.errors[:REPORT_LINES]:
                row = f"row {error.row}" if error.row else "file"
                column = f", {error.column}" if error.column else ""
                self.stdout.write(f"{row}{column}: {error.message}")
            if len(result.errors) > REPORT_LINES:
                self.stdout.write(f"... and {len(result.errors) - REPORT_LINES} more")
            raise CommandError(
                f"{path.name} rejected: {len(result.errors)} problem(s), nothing was changed (import run "
                f"#{result.run.pk})."
            )

        counts = result.counts
        summary = (
            f"{counts['rows']} rows: {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['leavers']} leavers; {counts['not_in_file']} employees "
            f"in the database are not in the file (left unchanged)."
        )
        changed_fields = result.plan.changed_fields()
        if changed_fields:
            summary += " Updated employees per field: " + ", ".join(
                f"{name} {count}" for name, count in changed_fields.items()) + "."
        if dry_run:
            self.stdout.write(f"Dry run of {path.name}, nothing was changed. Applying it would give {summary}")
        else:
            self.stdout.write(self.style.SUCCESS(f"Imported {path.name} (import run #{result.run.pk}). {summary}"))
