"""Check the audit trail's hash chains: `manage.py verify_audit [--org SLUG]`.

Exits 0 when every chain checked is intact, 1 (with the first broken row of each broken
chain) otherwise. The scheduler verifies every chain nightly
(`analytics.tasks.verify_audit_nightly`, its verdict on the night's PeriodicRun in /staff/);
this checks on demand.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from audit import chain, integrity


class Command(BaseCommand):
    help = "Verify that no audit row was altered or removed (per-organization hash chains)."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Only this organization's chain.")

    def handle(self, *args, org=None, **options):
        if org:
            found = Organization.objects.filter(slug=org).first()
            if found is None:
                raise CommandError(f"No organization with the slug “{org}”.")
            verdicts = [integrity.verify(chain.chain_key(found.pk))]
        else:
            verdicts = integrity.verify_all()
        broken = [v for v in verdicts if not v.intact]
        for verdict in verdicts:
            style = self.style.SUCCESS if verdict.intact else self.style.ERROR
            self.stdout.write(style(str(verdict)))
        if broken:
            raise CommandError(f"{len(broken)} of {len(verdicts)} chain(s) broken.", returncode=1)
        self.stdout.write(f"{len(verdicts)} chain(s) intact.")
