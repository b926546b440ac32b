"""Check the usage rollups: `manage.py verify_usage_rollup [--org SLUG]
[--against events|daily] [--repair]`.

Two checks. The organization-level rollup: OrgDailyUsage must equal the sum of the usage
events (or of DailyUsage) per organization, UTC day, kind and model. The members' lifetime
totals (User Management's "Total usage"): each Membership.total_used must equal the sum of the
member's usage events in the organization (with `--against daily`, of their MonthlyUsage, what
the totals are rebuilt from). Exits 0 when both hold; 1, listing the first differences,
otherwise. `--repair` rebuilds the checked organizations' rollup from DailyUsage and their
members' totals from MonthlyUsage first.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from tokens.rollup import (
    membership_totals_rebuild,
    org_daily_usage_rebuild,
    rollup_mismatches,
    usage_total_mismatches,
)

SHOWN = 20


class Command(BaseCommand):
    help = "Verify that the usage rollups (per organization and day, per member) equal the events."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Only this organization.")
        parser.add_argument("--against", choices=["events", "daily"], default="events")
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Rebuild the rollup from DailyUsage and the totals from MonthlyUsage first.",
        )

    def handle(self, *args, org=None, against="events", repair=False, **options):
        org_id = None
        if org:
            found = Organization.objects.filter(slug=org).first()
            if found is None:
                raise CommandError(f"No organization with the slug “{org}”.")
            org_id = found.pk
        ids = None if org_id is None else [org_id]
        if repair:
            rows = org_daily_usage_rebuild(organization_ids=ids)
            members = membership_totals_rebuild(organization_ids=ids)
            self.stdout.write(
                f"Rebuilt {rows} rollup row(s) from DailyUsage and {members} member total(s) "
                "from MonthlyUsage."
            )
        mismatches = rollup_mismatches(organization_id=org_id, against=against)
        for m in mismatches[:SHOWN]:
            org_pk, day, kind, model = m.key
            self.stdout.write(
                self.style.ERROR(
                    f"organization {org_pk} {day} {kind} {model}: rollup {m.rollup[0]:,} tokens"
                    f"/{m.rollup[1]:,} events, {against} {m.source[0]:,}/{m.source[1]:,}"
                )
            )
        source = "events" if against == "events" else "monthly"
        totals = usage_total_mismatches(organization_id=org_id, against=source)
        for t in totals[:SHOWN]:
            self.stdout.write(
                self.style.ERROR(
                    f"organization {t.organization_id} user {t.user_id}: total {t.total:,} "
                    f"tokens, {source} {t.source:,}"
                )
            )
        if mismatches or totals:
            raise CommandError(
                f"{len(mismatches)} rollup row(s) and {len(totals)} member total(s) differ.",
                returncode=1,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"The usage rollup equals the sum of {against}; each member's total the sum of "
                f"their {'usage events' if source == 'events' else 'MonthlyUsage'}."
            )
        )
