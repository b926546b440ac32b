"""Check the organization-level usage rollup: `manage.py verify_usage_rollup [--org SLUG]
[--against events|daily] [--repair]`.

Exits 0 when OrgDailyUsage equals the sum of the usage events (or of DailyUsage) per
organization, UTC day, kind and model; 1, listing the first differences, otherwise.
`--repair` rebuilds the checked organizations' rollup from DailyUsage.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from tokens.rollup import org_daily_usage_rebuild, rollup_mismatches

SHOWN = 20


class Command(BaseCommand):
    help = "Verify that the organization usage rollup equals the sum of the usage events."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Only this organization.")
        parser.add_argument("--against", choices=["events", "daily"], default="events")
        parser.add_argument(
            "--repair", action="store_true", help="Rebuild the rollup from DailyUsage first."
        )

    def handle(self, *args, org=None, against="events", repair=False, **options):
        org_id = None
        if org:
            found = Organization.objects.filter(slug=org).first()
            if found is None:
                raise CommandError(f"No organization with the slug “{org}”.")
            org_id = found.pk
        if repair:
            rows = org_daily_usage_rebuild(organization_ids=None if org_id is None else [org_id])
            self.stdout.write(f"Rebuilt {rows} rollup row(s) from DailyUsage.")
        mismatches = rollup_mismatches(organization_id=org_id, against=against)
        for m in mismatches[:SHOWN]:
            org_pk, day, kind, model = m.key
            self.stdout.write(
                self.style.ERROR(
                    f"organization {org_pk} {day} {kind} {model}: rollup {m.rollup[0]:,} tokens"
                    f"/{m.rollup[1]:,} events, {against} {m.source[0]:,}/{m.source[1]:,}"
                )
            )
        if mismatches:
            raise CommandError(f"{len(mismatches)} rollup row(s) differ.", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"The usage rollup equals the sum of {against}."))
