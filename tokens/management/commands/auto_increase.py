"""Apply the auto-increase policies to everyone at or above their trigger (cron-friendly).

The usage API runs the same policy per recorded usage; the scheduler runs this sweep hourly
(`tokens.tasks.auto_increase_sweep`) to catch up after a preset change; this runs it by hand.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from tokens.services import auto_increase as auto_increase_services


class Command(BaseCommand):
    help = "Raise the max of users whose usage crossed their organization's trigger."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Only this organization (slug).")

    def handle(self, *args, **options):
        org = None
        if options["org"]:
            org = Organization.objects.filter(slug=options["org"]).first()
            if org is None:
                raise CommandError(f"No organization with the slug “{options['org']}”.")
        done = auto_increase_services.auto_increase_run(org=org)
        for email, kind, new in done:
            self.stdout.write(f"{email}: {kind} max raised to {new:,}")
        self.stdout.write(self.style.SUCCESS(f"{len(done)} increase(s) applied."))
