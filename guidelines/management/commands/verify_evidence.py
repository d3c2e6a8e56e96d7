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
                    f"({result.checked} records) and {_match(result.checkpoints_checked, 'earlier checkpoint')} it."
                )
            raise CommandError(
                f"Evidence chain BROKEN at record {result.first_break_sequence}: {result.problem}. "
                f"{result.checked} records before it verified."
            )
        self.stdout.write(self.style.SUCCESS(
            f"Evidence chain intact: {result.checked} acknowledgements, head #{result.head_sequence} "
            f"{result.head_seal}; {_match(result.checkpoints_checked, 'checkpoint')} it."
        ))


def _match(count, noun):
    """The count with its verb: 1 checkpoint matches, 2 checkpoints match."""
    return f"{count} {noun} matches" if count == 1 else f"{count} {noun}s match"
