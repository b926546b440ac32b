"""Run the usage partitions' maintenance now, as the nightly `tokens.tasks.usage_partitions_sweep`
does (`tokens.partitions`): this month's and the next two, strays out of DEFAULT, old key months
dropped. Nothing to do on SQLite."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from tokens.tasks import usage_partitions_summary


class Command(BaseCommand):
    help = "Create the coming months' usage partitions on PostgreSQL (the nightly sweep)."

    def handle(self, *args, **options):
        self.stdout.write(self.style.SUCCESS(usage_partitions_summary(timezone.now())))
