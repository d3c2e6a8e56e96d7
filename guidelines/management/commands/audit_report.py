import shutil
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from guidelines.reports import jobs


class Command(BaseCommand):
    help = (
        "Generate the auditor pack (tagged PDF/A-3a and PDF/UA-1, with the per-employee data embedded as CSV) "
        "in this process and write it to --output. The report is recorded with its SHA-256 and verification code."
    )

    def add_arguments(self, parser):
        # --version is a fixed interface here; it replaces Django's "print the Django version".
        parser.conflict_handler = parser._optionals.conflict_handler = "resolve"
        parser.add_argument("--guideline", required=True, help="the guideline's slug")
        parser.add_argument("--version", default="", help='a version number such as 2.0, or "all" (default: current)')
        parser.add_argument("--department", default="", help="only this department (its name)")
        parser.add_argument("--as-of", default="", help="the state at the end of this day, YYYY-MM-DD (default: now)")
        parser.add_argument("--language", default="en", help="nl or en (default en)")
        parser.add_argument("--output", required=True, help="where to write the PDF")

    def handle(self, *args, guideline, version, department, as_of, language, output, **options):
        target = Path(output)
        if target.suffix.lower() != ".pdf":
            raise CommandError("--output must name a .pdf file.")
        if not target.parent.is_dir():
            raise CommandError(f"The folder {target.parent} does not exist.")
        try:
            report = jobs.start_audit_pack(user=None, guideline_slug=guideline, version=version,
                                                  department=department, as_of=as_of, language=language)
        except ValidationError as error:
            raise CommandError(error.messages[0]) from None
        report = jobs.generate_now(report)
        shutil.copyfile(jobs.reports_dir() / report.file, target)
        self.stdout.write(self.style.SUCCESS(
            f"Wrote {target}: {report.pages} pages, {report.rows} employee rows, verification code "
            f"{report.verification_code}, SHA-256 {report.sha256}."
        ))
