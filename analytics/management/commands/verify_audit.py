"""Check the audit trail's hash chains: `manage.py verify_audit [--org SLUG]`.

Walks every row of each chain (the authority; the Activity badge only checks the rows after
its checkpoint) and records the run on each chain's checkpoint (`audit.checkpoints`), so the
badge says when the last full verification ran and shows any break it found. Exits 0 when
every chain checked is intact, 1 (with the first broken row of each broken chain) otherwise.
The scheduler verifies every chain nightly (`analytics.tasks.verify_audit_nightly`, its
verdict on the night's PeriodicRun in /staff/); this checks on demand.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from audit import chain
from audit.checkpoints import checkpoint_verify_full


class Command(BaseCommand):
    help = "Verify that no audit row was altered or removed (per-organization hash chains)."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Only this organization's chain.")

    def handle(self, *args, org=None, **options):
        keys = None
        if org:
            found = Organization.objects.filter(slug=org).first()
            if found is None:
                raise CommandError(f"No organization with the slug “{org}”.")
            keys = [chain.chain_key(found.pk)]
        verdicts = checkpoint_verify_full(keys=keys)
        broken = [v for v in verdicts if not v.intact]
        for verdict in verdicts:
            style = self.style.SUCCESS if verdict.intact else self.style.ERROR
            self.stdout.write(style(str(verdict)))
        if broken:
            raise CommandError(f"{len(broken)} of {len(verdicts)} chain(s) broken.", returncode=1)
        self.stdout.write(f"{len(verdicts)} chain(s) intact.")
