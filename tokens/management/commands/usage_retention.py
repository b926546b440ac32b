"""Drop the usage events older than USAGE_RETENTION_MONTHS now, a whole month at a time, as
the nightly `tokens.tasks.usage_retention` does (`tokens.retention`); `--dry-run` lists them."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from tokens.retention import expired_months, retained_since
from tokens.tasks import usage_retention_summary


class Command(BaseCommand):
    help = "Drop usage events of months older than USAGE_RETENTION_MONTHS (rollups stay)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only list the months.")

    def handle(self, *args, dry_run=False, **options):
        now = timezone.now()
        since = retained_since(now)
        if since is None:
            self.stdout.write("USAGE_RETENTION_MONTHS is 0: every usage event is kept.")
            return
        if dry_run:
            months = ", ".join(f"{m:%Y-%m}" for m in expired_months(now)) or "none"
            self.stdout.write(f"Kept from {since:%Y-%m}; would drop: {months}.")
            return
        self.stdout.write(self.style.SUCCESS(usage_retention_summary(now)))
