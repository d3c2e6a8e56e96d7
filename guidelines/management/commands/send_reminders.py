import uuid
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from guidelines import notifications
from guidelines.models import NotificationLog


def iso_date(value):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date must be a date as YYYY-MM-DD, got {value!r}.") from None


class Command(BaseCommand):
    help = (
        "Run a day's reminder cycle by hand, in this process: reminder digests and manager escalations. "
        "Prints every e-mail it sends (or with --dry-run would send). E-mails already sent that day are "
        "never sent again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="the day to run, YYYY-MM-DD (default: today)")
        parser.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")

    def handle(self, *args, date=None, dry_run=False, **options):
        today = timezone.localdate()
        day = iso_date(date) if date else today
        if day < today:
            raise CommandError(
                f"{day} has passed: acknowledgements made since then would be ignored. The next run "
                "catches up by itself (a reminder day that was missed is sent on the next working day)."
            )
        if day > today and not dry_run:
            raise CommandError(f"{day} lies in the future; use --dry-run to see what would be sent then.")
        claimed_by = f"send_reminders-{uuid.uuid4()}"
        sent = {"count": 0}

        def run(drafts):
            taken = set(NotificationLog.objects.filter(
                idempotency_key__in=[draft.key for draft in drafts]
            ).exclude(status=NotificationLog.Status.CANCELLED).values_list("idempotency_key", flat=True))
            for draft in drafts:
                note = "already sent" if draft.key in taken else ("would send" if dry_run else "sending")
                self.stdout.write(f"{note:13} {draft.kind:11} {draft.recipient.user.email}  "
                                  f"{len(draft.items)} item(s)")
            if not dry_run:
                try:
                    sent["count"] += notifications.run_batch(drafts, day=day, claimed_by=claimed_by)
                except notifications.TransientFailure as failure:
                    raise CommandError(
                        f"The mail server failed: {failure}. Run the command again to send the rest; "
                        "nothing is sent twice."
                    ) from failure

        plan = notifications.plan_cycle(
            day,
            enqueue_reminders=lambda ids: run(notifications.compose_digests(ids, day)),
            enqueue_escalations=lambda ids: run(notifications.compose_escalations(ids, day)),
            record=not dry_run,
        )
        if not plan.working_day:
            self.stdout.write(f"{day} is a weekend day or a configured holiday: no reminders are sent.")
            return
        summary = (f"{day}: {plan.employees} employee(s) with outstanding guidelines, "
                   f"{plan.managers} manager(s) with overdue reports.")
        if dry_run:
            self.stdout.write(summary + " Dry run: nothing was sent.")
        else:
            self.stdout.write(self.style.SUCCESS(f"{summary} Sent {sent['count']} e-mail(s)."))
