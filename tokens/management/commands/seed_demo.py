"""Demo data for `make run`: organizations of several sizes, pools, allocations and usage.

Idempotent: the demo is recognised by its big organization's slug; a second run changes
nothing and prints the logins again.
"""

import calendar
import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, User
from asksage_admin.lib.months import add_months, current_month, month_start
from audit.models import AuditLog
from audit.services import audit_bulk
from tokens.models import DailyUsage, MonthlyUsage, Purchase, TokenKind, TokenRequest, UsageEvent
from tokens.rollup import org_daily_usage_rebuild

PASSWORD = "demo-pass-2026"
MARKER_SLUG = "department-of-demos"
SALES_EMAIL = "sales@example.com"
ADMIN_EMAIL = "admin@demo.example.com"
MEMBER_EMAIL = "member@demo.example.com"
EVENT_DAYS = 90

INFERENCE_MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b"]
INFERENCE_WEIGHTS = [5, 3, 4, 2]
EMBEDDING_MODELS = ["text-embedding-3-large", "text-embedding-3-small"]
EMBEDDING_WEIGHTS = [3, 1]

# fmt: off
FIRST_NAMES = [
    "Ada", "Alan", "Barbara", "Brian", "Carmen", "Chen", "Dana", "Dmitri", "Elena", "Emeka",
    "Farah", "Felix", "Grace", "Gustavo", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Julia",
    "Kenji", "Kira", "Leila", "Lucas", "Maya", "Mateo", "Nadia", "Noah", "Olga", "Omar", "Priya",
    "Pablo", "Quinn", "Rosa", "Rahul", "Sofia", "Sven", "Tara", "Tomas", "Uma", "Victor", "Wen",
    "Xavier", "Yara", "Zoe",
]
LAST_NAMES = [
    "Abbott", "Bakker", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ibrahim",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quint", "Rossi",
    "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zhang",
]
# fmt: on

# Per-user monthly limits to draw from (inference ≥ the 200K platform floor).
INFERENCE_CHOICES = [200_000, 250_000, 300_000, 500_000, 750_000, 1_000_000, 1_500_000, 2_000_000]
EMBEDDING_CHOICES = [0, 0, 100_000, 250_000, 500_000]


@dataclass
class OrgPlan:
    name: str
    slug: str
    domain: str
    size: int
    status: str
    months_ago: int
    # (kind, tokens per month, start months ago, end months ago or None)
    purchases: list[tuple[str, int, int, int | None]]
    admins: int = 1
    banned: int = 0
    unpaid: int = 0
    fixed_users: list[tuple[str, str, str]] = field(default_factory=list)  # email, name, role
    floor_only: bool = False  # every member at the 200K floor (the seeds' example)


PLANS = [
    OrgPlan(
        name="Department of Demos",
        slug=MARKER_SLUG,
        domain="demo.example.com",
        size=130,
        status=Organization.Status.ACTIVE,
        months_ago=9,
        purchases=[
            ("inference", 10_000_000, 9, 7),  # an ended trial purchase, kept as history
            ("inference", 40_000_000, 8, None),
            ("inference", 60_000_000, 3, None),
            ("embedding", 20_000_000, 6, None),
        ],
        admins=3,
        banned=3,
        unpaid=4,
        fixed_users=[
            (ADMIN_EMAIL, "Avery Admin", Membership.Role.ADMIN),
            (MEMBER_EMAIL, "Morgan Member", Membership.Role.MEMBER),
        ],
    ),
    OrgPlan(
        name="Acme Analytics",
        slug="acme-analytics",
        domain="acme-analytics.example.com",
        size=25,
        status=Organization.Status.ACTIVE,
        months_ago=5,
        purchases=[("inference", 20_000_000, 5, None), ("embedding", 4_000_000, 4, None)],
        admins=2,
        banned=1,
        unpaid=1,
    ),
    OrgPlan(
        name="Small Shop",
        slug="small-shop",
        domain="smallshop.example.com",
        size=4,
        status=Organization.Status.ACTIVE,
        months_ago=4,
        purchases=[("inference", 2_000_000, 4, None), ("embedding", 2_000_000, 2, None)],
        floor_only=True,
    ),
    OrgPlan(
        name="Pending Partners",
        slug="pending-partners",
        domain="pending.example.com",
        size=3,
        status=Organization.Status.PENDING,
        months_ago=0,
        purchases=[("inference", 2_000_000, 0, None)],
        floor_only=True,
    ),
    OrgPlan(
        name="Suspended Systems",
        slug="suspended-systems",
        domain="suspended.example.com",
        size=3,
        status=Organization.Status.SUSPENDED,
        months_ago=6,
        purchases=[("inference", 2_000_000, 6, None)],
        floor_only=True,
    ),
]


def _limits(rng: random.Random, plan: OrgPlan, pools: dict[str, int]) -> list[tuple[int, int]]:
    """Varied (inference, embedding) maxima whose totals stay within the current pools."""
    if plan.floor_only:
        emb = 250_000 if pools["embedding"] >= 250_000 * plan.size else 0
        return [(200_000, emb)] * plan.size
    limits = [
        (rng.choice(INFERENCE_CHOICES), rng.choice(EMBEDDING_CHOICES)) for _ in range(plan.size)
    ]
    # Trim the largest allocations until each pool keeps some unallocated headroom.
    for index, floor in ((0, 200_000), (1, 0)):
        budget = pools[TokenKind.values[index]] * 9 // 10
        while sum(limit[index] for limit in limits) > budget:
            biggest = max(range(plan.size), key=lambda i: limits[i][index])
            row = list(limits[biggest])
            row[index] = max(floor, row[index] // 2)
            limits[biggest] = (row[0], row[1])
    return limits


def _current_pools(plan: OrgPlan) -> dict[str, int]:
    pools = dict.fromkeys(TokenKind.values, 0)
    for kind, amount, _start, end in plan.purchases:
        if end is None or end == 0:
            pools[kind] += amount
    return pools


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
        this_month = current_month()
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
        audit: list[AuditLog] = []
        memberships: list[Membership] = []
        users_total = 1
        for plan in PLANS:
            created = now - dt.timedelta(days=30 * plan.months_ago + 3)
            org = Organization.objects.create(
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
            audit.append(
                AuditLog(
                    organization=org,
                    actor=sales,
                    action="org.created",
                    details={"name": org.name},
                    created_at=created,
                )
            )
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
                audit.append(
                    AuditLog(
                        organization=org,
                        actor=sales,
                        action="purchase.recorded",
                        new_value=str(amount),
                        details={"kind": kind, "start_month": start.isoformat()},
                        created_at=created,
                    )
                )
            if org.activated_at:
                audit.append(
                    AuditLog(
                        organization=org,
                        actor=sales,
                        action="org.status",
                        column="status",
                        old_value="pending",
                        new_value="active",
                        created_at=org.activated_at,
                    )
                )
            if org.suspended_at:
                audit.append(
                    AuditLog(
                        organization=org,
                        actor=sales,
                        action="org.status",
                        column="status",
                        old_value="active",
                        new_value="suspended",
                        details={"reason": "Invoice overdue."},
                        created_at=org.suspended_at,
                    )
                )
            users = self._users(rng, plan, password, created, now)
            User.objects.bulk_create(users)
            users_total += len(users)
            limits = _limits(rng, plan, _current_pools(plan))
            fixed = {email: role for email, _name, role in plan.fixed_users}
            admins_left = plan.admins - sum(1 for r in fixed.values() if r == "admin")
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
                        joined_at=created + dt.timedelta(days=1),
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
        Membership.objects.bulk_create(memberships)
        events = self._usage(rng, memberships, now)
        audit_bulk(audit)  # through the service: it seals the tamper-evident chain
        self._token_requests(rng, memberships, now)
        return {"orgs": len(PLANS), "users": users_total, "events": events}

    @staticmethod
    def _token_requests(rng: random.Random, memberships: list[Membership], now) -> None:
        """A few pending requests in each active organization, and some decided ones."""
        reasons = [
            "Quarterly report drafting needs more completions.",
            "Ingesting the policy manual into a new dataset.",
            "Pilot of the contract-review assistant for my team.",
            "Translating the training material this month.",
        ]
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
                status = ["pending", "pending", "pending", "approved", "denied", "pending"][index]
                amount = rng.choice([250_000, 500_000, 1_000_000])
                requests.append(
                    TokenRequest(
                        organization=m.organization,
                        user=m.user,
                        kind=kind,
                        amount=amount,
                        reason=reasons[index % len(reasons)],
                        current_max=getattr(m, f"max_{kind}_tokens"),
                        status=status,
                        granted=amount if status == "approved" else None,
                        note="Budget is tight this month." if status == "denied" else "",
                        decided_by=admin if status != "pending" else None,
                        decided_at=now - dt.timedelta(days=1) if status != "pending" else None,
                        created_at=now - dt.timedelta(days=rng.randint(1, 9), hours=index),
                    )
                )
        TokenRequest.objects.bulk_create(requests)

    def _users(self, rng, plan: OrgPlan, password: str, created, now) -> list[User]:
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

    def _usage(self, rng: random.Random, memberships: list[Membership], now) -> int:
        """UsageEvents over the last 90 days and the MonthlyUsage rows that sum them.

        Each user has a habit (idle, light, regular, heavy) giving the share of their monthly
        max a whole month would use. That month's pace is spread over the days seeded, today
        counting for the part of it gone by, so a day looks like any other whatever today's
        date: on the 1st the month has one (partial) day of use, not the month's. A month's
        usage stops at the max, as the usage API enforces; a heavy user may get there early.
        """
        today = now.date()
        midnight = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)
        today_weight = max((now - midnight).total_seconds() / 86_400, 0.05)
        days = [today - dt.timedelta(days=n) for n in range(EVENT_DAYS - 1, -1, -1)]
        by_month: dict[dt.date, list[dt.date]] = defaultdict(list)
        for day in days:
            by_month[month_start(day)].append(day)
        org_status = {}
        events: list[UsageEvent] = []
        totals: dict[tuple[int, int, str, dt.date], int] = defaultdict(int)
        for membership in memberships:
            org = membership.organization
            org_status[org.pk] = org.status
            if org.status == Organization.Status.PENDING:
                continue
            habit = rng.choices(["idle", "light", "regular", "heavy"], [1, 3, 4, 2])[0]
            if membership.user.email in (ADMIN_EMAIL, MEMBER_EMAIL):
                habit = "regular"  # the demo logins always have something to show
            if habit == "idle":
                continue
            low, high = {"light": (0.05, 0.3), "regular": (0.3, 0.75), "heavy": (0.8, 1.2)}[habit]
            user = membership.user
            for kind, limit, models, weights in (
                (
                    "inference",
                    membership.max_inference_tokens,
                    INFERENCE_MODELS,
                    INFERENCE_WEIGHTS,
                ),
                ("embedding", membership.max_embedding_tokens, EMBEDDING_MODELS, EMBEDDING_WEIGHTS),
            ):
                if not limit or (kind == "embedding" and rng.random() < 0.4):
                    continue
                for month, month_days in by_month.items():
                    if org.status == Organization.Status.SUSPENDED:
                        month_days = [d for d in month_days if d < org.suspended_at.date()]
                    if user.is_banned:
                        month_days = [d for d in month_days if d < today - dt.timedelta(days=15)]
                    if not month_days:
                        continue
                    share = rng.uniform(low, high)
                    length = calendar.monthrange(month.year, month.month)[1]
                    per_day = limit * share / length  # this month's pace, tokens a day
                    active = [d for d in month_days if rng.random() < 0.55] or month_days[-1:]
                    # The month's use so far at that pace, over the active days only.
                    elapsed = sum(today_weight if d == today else 1.0 for d in month_days)
                    active_weights = [today_weight if d == today else 1.0 for d in active]
                    scale = per_day * elapsed / sum(active_weights)
                    used = 0
                    for day, weight in zip(active, active_weights, strict=True):
                        tokens = min(int(scale * weight * rng.uniform(0.6, 1.4)), limit - used)
                        count = min(rng.randint(1, 3), tokens)
                        if count <= 0:
                            continue
                        used += tokens
                        totals[(org.pk, user.pk, kind, month)] += tokens
                        # Split the day's tokens into `count` positive parts, one event each.
                        cuts = sorted(rng.sample(range(1, tokens), count - 1)) if count > 1 else []
                        for a, b in zip([0, *cuts], [*cuts, tokens], strict=True):
                            events.append(
                                UsageEvent(
                                    organization_id=org.pk,
                                    user_id=user.pk,
                                    kind=kind,
                                    tokens=b - a,
                                    model=rng.choices(models, weights)[0],
                                    created_at=self._moment(rng, day, now),
                                )
                            )
        UsageEvent.objects.bulk_create(events, batch_size=5000)
        # The daily rollups the statistics read, as the usage API keeps them.
        daily: dict[tuple[int, int, str, str, dt.date], list[int]] = defaultdict(lambda: [0, 0])
        for e in events:
            row = daily[(e.organization_id, e.user_id, e.kind, e.model, e.created_at.date())]
            row[0] += e.tokens
            row[1] += 1
        DailyUsage.objects.bulk_create(
            (
                DailyUsage(organization_id=o, user_id=u, kind=k, model=m, day=d, tokens=t, events=n)
                for (o, u, k, m, d), (t, n) in daily.items()
            ),
            batch_size=5000,
        )
        # The organizations' rollup the statistics read, summed from the rows above.
        org_daily_usage_rebuild(organization_ids={o for o, *_ in daily})
        MonthlyUsage.objects.bulk_create(
            (
                MonthlyUsage(organization_id=o, user_id=u, kind=k, month=m, used=used)
                for (o, u, k, m), used in totals.items()
            ),
            batch_size=5000,
        )
        return len(events)

    @staticmethod
    def _moment(rng: random.Random, day: dt.date, now: dt.datetime) -> dt.datetime:
        """A time on `day` (UTC) that is not in the future."""
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        span = min(86_400, int((now - start).total_seconds()))
        return start + dt.timedelta(seconds=rng.randrange(max(span, 1)))

    def _print_logins(self) -> None:
        self.stdout.write(
            "Demo logins (password for all: "
            f"{PASSWORD}):\n"
            f"  sales staff: {SALES_EMAIL} / {PASSWORD}  (Django admin at /staff/)\n"
            f"  org admin:   {ADMIN_EMAIL} / {PASSWORD}  (Admin Panel of Department of Demos)\n"
            f"  member:      {MEMBER_EMAIL} / {PASSWORD}  (home page /)"
        )
