from django.core.management.base import BaseCommand, CommandError

from guidelines.services import verify_evidence


class Command(BaseCommand):
    help = "Verify the acknowledgement chain; exits non-zero and names the first break when it is not intact."

    def handle(self, *args, **options):
        result = verify_evidence()
        if not result.intact:
            if result.broken_checkpoint:
                raise CommandError(
                    f"Evidence chain BROKEN at a checkpoint: {result.problem}. The chain itself is consistent "
                    f"({result.checked} records) and {result.checkpoints_checked} earlier checkpoints match it."
                )
            raise CommandError(
                f"Evidence chain BROKEN at record {result.first_break_sequence}: {result.problem}. "
                f"{result.checked} records before it verified."
            )
        self.stdout.write(self.style.SUCCESS(
            f"Evidence chain intact: {result.checked} acknowledgements, head #{result.head_sequence} "
            f"{result.head_seal}; {result.checkpoints_checked} checkpoints match it."
        ))
