"""Reclaim unused allocation above the floor from idle users: a preview unless --apply.

The scheduler runs it at the start of each month (`tokens.tasks.reclaim_month_start`, once a
month however many schedulers run); this command previews, or re-runs it by hand.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.wording import counted
from tokens.models import TokenKind
from tokens.services import distribution as distribution_services


class Command(BaseCommand):
    help = "Preview (default) or apply the reclamation of idle users' unused tokens."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Only this organization (slug).")
        parser.add_argument("--kind", choices=TokenKind.values, help="Only this kind.")
        parser.add_argument("--days", type=int, help="Idle days (default: each org's setting).")
        parser.add_argument("--apply", action="store_true", help="Apply; without it, preview.")

    def handle(self, *args, **options):
        orgs = Organization.objects.filter(status=Organization.Status.ACTIVE).order_by("name")
        if options["org"]:
            orgs = orgs.filter(slug=options["org"])
            if not orgs.exists():
                raise CommandError(f"No active organization with the slug “{options['org']}”.")
        if options["days"] is not None and options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        kinds = [options["kind"]] if options["kind"] else TokenKind.values
        total = 0
        for org in orgs:
            for kind in kinds:
                plan = distribution_services.reclaim_plan(
                    org=org, kind=kind, idle_days=options["days"]
                )
                if not plan.rows:
                    continue
                freed = -plan.delta
                self.stdout.write(f"{org.name} · {kind}: {len(plan.rows)} idle user(s)")
                for user, _m, old, new in plan.rows:
                    self.stdout.write(f"  {user.email}: {old:,} → {new:,}")
                if options["apply"]:
                    try:
                        distribution_services.reclaim_apply(
                            admin=None,
                            org=org,
                            kind=kind,
                            idle_days=options["days"],
                            signature=plan.signature,
                        )
                    except DomainError as exc:
                        self.stderr.write(f"  refused: {' '.join(exc.messages)}")
                        continue
                total += freed
        if options["apply"]:
            self.stdout.write(self.style.SUCCESS(f"Reclaimed {counted(total, 'token')}."))
        else:
            self.stdout.write(
                f"Preview only (add --apply): would reclaim {counted(total, 'token')}."
            )
