"""Demo data for `make run`: organizations of several sizes, pools, allocations and usage.

Idempotent: the demo is recognised by its big organization's slug; a second run changes
nothing and prints the logins again. Who the organizations are lives in
`tokens/management/demo/plans.py`, how their usage is drawn in `demo/usage.py`.
"""

import datetime as dt
import random

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, User
from asksage_admin.lib.months import add_months, current_month
from audit.models import AuditLog
from audit.services import audit_bulk
from tokens.management.demo.plans import (
    ADMIN_EMAIL,
    CATALOGUE,
    FIRST_NAMES,
    LAST_NAMES,
    MARKER_SLUG,
    MEMBER_EMAIL,
    PASSWORD,
    PLANS,
    SALES_EMAIL,
    OrgPlan,
    current_pools,
    member_limits,
)
from tokens.management.demo.usage import seed_usage
from tokens.models import PlatformModel, Purchase, TokenRequest

__all__ = ["PASSWORD", "Command"]

REQUEST_REASONS = [
    "Quarterly report drafting needs more completions.",
    "Ingesting the policy manual into a new dataset.",
    "Pilot of the contract-review assistant for my team.",
    "Translating the training material this month.",
]
REQUEST_STATUSES = ["pending", "pending", "pending", "approved", "denied", "pending"]


class Command(BaseCommand):
    help = (
        "Create demo organizations, users, token pools, allocations and 90 days of usage. "
        "Safe to run again: it does nothing once the demo exists."
    )

    def handle(self, *args, **options):
        if Organization.objects.filter(slug=MARKER_SLUG).exists():
            self.stdout.write("Demo data already present; nothing to do.")
            self._print_logins()
            return
        demo_emails = [SALES_EMAIL, ADMIN_EMAIL, MEMBER_EMAIL]
        taken = list(User.objects.filter(email__in=demo_emails).values_list("email", flat=True))
        if taken:
            raise CommandError(
                f"Cannot seed: {', '.join(taken)} already exist without the demo organization "
                f"“{MARKER_SLUG}”. Use an empty database."
            )
        started = timezone.now()
        with transaction.atomic():
            counts = self._seed()
        seconds = (timezone.now() - started).total_seconds()
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {counts['orgs']} organizations, {counts['users']} users, "
                f"{counts['events']:,} usage events in {seconds:.1f} s."
            )
        )
        self._print_logins()

    def _seed(self) -> dict[str, int]:
        rng = random.Random(2026)
        now = timezone.now()
        password = make_password(PASSWORD)  # hashed once: hashing per user is slow
        sales = User.objects.create(
            email=SALES_EMAIL,
            name="Sam Sales",
            password=password,
            is_staff=True,
            is_superuser=True,
            terms_accepted_at=now - dt.timedelta(days=400),
            date_joined=now - dt.timedelta(days=400),
        )
        PlatformModel.objects.bulk_create(
            [PlatformModel(name=n, display_name=d, kind=k, active=a) for n, d, k, a in CATALOGUE],
            ignore_conflicts=True,
        )
        audit: list[AuditLog] = []
        memberships: list[Membership] = []
        users_total = 1
        for plan in PLANS:
            org = _organization(rng, plan, now)
            audit += _organization_history(org, plan, sales)
            users = _users(rng, plan, password, org.created_at, now)
            User.objects.bulk_create(users)
            users_total += len(users)
            memberships += _memberships(rng, plan, org, users, now, audit)
        Membership.objects.bulk_create(memberships)
        events = seed_usage(rng=rng, memberships=memberships, now=now)
        audit_bulk(audit)  # through the service: it seals the tamper-evident chain
        _token_requests(rng, memberships, now)
        return {"orgs": len(PLANS), "users": users_total, "events": events}

    def _print_logins(self) -> None:
        self.stdout.write(
            "Demo logins (password for all: "
            f"{PASSWORD}):\n"
            f"  sales staff: {SALES_EMAIL} / {PASSWORD}  (Django admin at /staff/)\n"
            f"  org admin:   {ADMIN_EMAIL} / {PASSWORD}  (Admin Panel of Department of Demos)\n"
            f"  member:      {MEMBER_EMAIL} / {PASSWORD}  (home page /)"
        )


def _organization(rng: random.Random, plan: OrgPlan, now: dt.datetime) -> Organization:
    created = now - dt.timedelta(days=30 * plan.months_ago + 3)
    return Organization.objects.create(
        name=plan.name,
        slug=plan.slug,
        billing_address=f"{rng.randint(1, 999)} Market Street\nSpringfield, VA 22150",
        status=plan.status,
        created_at=created,
        activated_at=created + dt.timedelta(days=1)
        if plan.status != Organization.Status.PENDING
        else None,
        suspended_at=now - dt.timedelta(days=10)
        if plan.status == Organization.Status.SUSPENDED
        else None,
        admin_notes=f"Demo organization ({plan.size} users).",
    )


def _organization_history(org: Organization, plan: OrgPlan, sales: User) -> list[AuditLog]:
    """The plan's purchases, and the audit rows of the organization's life so far."""
    created = org.created_at
    audit = [_sales_entry(org, sales, created, "org.created", details={"name": org.name})]
    this_month = current_month()
    for kind, amount, start_ago, end_ago in plan.purchases:
        start = add_months(this_month, -start_ago)
        end = add_months(this_month, -end_ago) if end_ago is not None else None
        Purchase.objects.create(
            organization=org,
            kind=kind,
            tokens_per_month=amount,
            start_month=start,
            end_month=end,
            payment_reference=f"PO-{org.slug[:8].upper()}-{start:%Y%m}",
            created_at=created,
            created_by=sales,
        )
        details = {"kind": kind, "start_month": start.isoformat()}
        audit.append(
            _sales_entry(
                org, sales, created, "purchase.recorded", new_value=str(amount), details=details
            )
        )
    for at, old, new, details in (
        (org.activated_at, "pending", "active", {}),
        (org.suspended_at, "active", "suspended", {"reason": "Invoice overdue."}),
    ):
        if at:
            audit.append(
                _sales_entry(
                    org,
                    sales,
                    at,
                    "org.status",
                    column="status",
                    old_value=old,
                    new_value=new,
                    details=details,
                )
            )
    return audit


def _sales_entry(
    org: Organization, sales: User, at: dt.datetime, action: str, **fields
) -> AuditLog:
    return AuditLog(organization=org, actor=sales, action=action, created_at=at, **fields)


def _users(
    rng: random.Random, plan: OrgPlan, password: str, created: dt.datetime, now: dt.datetime
) -> list[User]:
    users = []
    seen = set()
    for email, name, _role in plan.fixed_users:
        seen.add(email)
        users.append(User(email=email, name=name))
    while len(users) < plan.size:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}@{plan.domain}".lower()
        if email in seen:
            email = f"{first}.{last}{len(users)}@{plan.domain}".lower()
        seen.add(email)
        users.append(User(email=email, name=f"{first} {last}"))
    # Disabled users come last so the fixed demo logins stay usable.
    for index, user in enumerate(users):
        from_end = len(users) - index
        user.is_banned = from_end <= plan.banned
        user.is_paid = not (plan.banned < from_end <= plan.banned + plan.unpaid)
        user.password = password
        user.date_joined = created + dt.timedelta(hours=rng.randint(0, 24))
        user.terms_accepted_at = user.date_joined
        if plan.status != Organization.Status.PENDING and rng.random() < 0.85:
            user.last_login = now - dt.timedelta(minutes=rng.randint(5, 60 * 24 * 30))
    return users


def _memberships(
    rng: random.Random,
    plan: OrgPlan,
    org: Organization,
    users: list[User],
    now: dt.datetime,
    audit: list[AuditLog],
) -> list[Membership]:
    """The users' memberships with limits that fit the pools; disabling one is audited."""
    limits = member_limits(rng, plan, current_pools(plan))
    fixed = {email: role for email, _name, role in plan.fixed_users}
    admins_left = plan.admins - sum(1 for r in fixed.values() if r == "admin")
    memberships = []
    for user, (inference, embedding) in zip(users, limits, strict=True):
        role = fixed.get(user.email)
        if role is None:
            role = Membership.Role.ADMIN if admins_left > 0 else Membership.Role.MEMBER
            admins_left -= role == Membership.Role.ADMIN
        memberships.append(
            Membership(
                user=user,
                organization=org,
                role=role,
                max_inference_tokens=inference,
                max_embedding_tokens=embedding,
                joined_at=org.created_at + dt.timedelta(days=1),
            )
        )
        if user.is_banned or not user.is_paid:
            flag = "banned" if user.is_banned else "paid"
            audit.append(
                AuditLog(
                    organization=org,
                    actor_label="demo admin",
                    action=f"user.{flag}",
                    target_user=user,
                    column=flag,
                    old_value=str(flag == "paid"),
                    new_value=str(flag == "banned"),
                    created_at=now - dt.timedelta(days=rng.randint(2, 40)),
                )
            )
    return memberships


def _token_requests(rng: random.Random, memberships: list[Membership], now: dt.datetime) -> None:
    """A few pending requests in each active organization, and some decided ones."""
    requests = []
    by_org: dict[int, list[Membership]] = {}
    for m in memberships:
        if m.organization.status == Organization.Status.ACTIVE and m.role == "member":
            by_org.setdefault(m.organization_id, []).append(m)
    for members in by_org.values():
        admin = next(
            (
                m.user
                for m in memberships
                if m.organization_id == members[0].organization_id and m.role == "admin"
            ),
            None,
        )
        for index, m in enumerate(members[:6]):
            kind = "inference" if index % 3 else "embedding"
            status = REQUEST_STATUSES[index]
            amount = rng.choice([250_000, 500_000, 1_000_000])
            decided = status != "pending"
            requests.append(
                TokenRequest(
                    organization=m.organization,
                    user=m.user,
                    kind=kind,
                    amount=amount,
                    reason=REQUEST_REASONS[index % len(REQUEST_REASONS)],
                    current_max=getattr(m, f"max_{kind}_tokens"),
                    status=status,
                    granted=amount if status == "approved" else None,
                    note="Budget is tight this month." if status == "denied" else "",
                    decided_by=admin if decided else None,
                    decided_at=now - dt.timedelta(days=1) if decided else None,
                    created_at=now - dt.timedelta(days=rng.randint(1, 9), hours=index),
                )
            )
    TokenRequest.objects.bulk_create(requests)
