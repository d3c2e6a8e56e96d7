import time

from django.core.management.base import BaseCommand, CommandError

from guidelines.demo import seed_scale


def positive(value):
    number = int(value)
    if number < 1:
        raise ValueError
    return number


def share(value):
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError
    return number


class Command(BaseCommand):
    help = "Bulk-create employees, one guideline with many versions and acknowledgements, for benchmarks."

    def add_arguments(self, parser):
        parser.add_argument("--employees", type=positive, required=True, help="number of employees (>= 1)")
        parser.add_argument("--versions", type=positive, required=True, help="number of versions (>= 1)")
        parser.add_argument("--acknowledged", type=share, default=0.9,
                            help="share of employees who acknowledged the current version, 0-1 (default 0.9)")

    def handle(self, *args, employees, versions, acknowledged, **options):
        if employees > 1_000_000 or versions > 500:
            raise CommandError("At most 1,000,000 employees and 500 versions.")
        started = time.monotonic()
        guideline, people, acks = seed_scale(employees=employees, versions=versions, acknowledged=acknowledged)
        self.stdout.write(self.style.SUCCESS(
            f"Seeded guideline {guideline.slug!r}: {people} employees, {versions} versions, "
            f"{acks} acknowledgements in {time.monotonic() - started:.1f} s."
        ))
