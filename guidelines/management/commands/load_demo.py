from django.core.management.base import BaseCommand

from guidelines.demo import DEMO_PASSWORD, load_demo


class Command(BaseCommand):
    help = "Load the demo organisation, the social media guideline (v1, v2) and demo accounts."

    def handle(self, *args, **options):
        if not load_demo():
            self.stdout.write("Demo data is already loaded; nothing changed.")
            return
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self.stdout.write(
            "Sign in as employee@example.com, manager@example.com, hr@example.com or auditor@example.com "
            f"with password {DEMO_PASSWORD!r}."
        )
