"""Check the audit trail's hash chains: `manage.py verify_audit [--org SLUG]`.

Walks every row of each chain (the authority; the Activity badge only checks rows after its
checkpoint), records the run on each chain's checkpoint (`audit.checkpoints`), so the badge
says when the last full verification ran and shows any break it found. Exits 0 when every
chain checked is intact, 1 (with the first broken row of each broken chain) otherwise.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from audit import chain, integrity
from audit.checkpoints import checkpoint_record_full


class Command(BaseCommand):
    help = "Verify that no audit row was altered or removed (per-organization hash chains)."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Only this organization's chain.")

    def handle(self, *args, org=None, **options):
        if org:
            found = Organization.objects.filter(slug=org).first()
            if found is None:
                raise CommandError(f"No organization with the slug “{org}”.")
            keys = [chain.chain_key(found.pk)]
        else:
            keys = None
        verdicts = []
        for verdict in integrity.verify_all(keys):
            checkpoint_record_full(verdict=verdict)
            verdicts.append(verdict)
            style = self.style.SUCCESS if verdict.intact else self.style.ERROR
            self.stdout.write(style(str(verdict)))
        broken = [v for v in verdicts if not v.intact]
        if broken:
            raise CommandError(f"{len(broken)} of {len(verdicts)} chain(s) broken.", returncode=1)
        self.stdout.write(f"{len(verdicts)} chain(s) intact.")
