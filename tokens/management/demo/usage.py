"""The demo's usage: 90 days of usage events, and the monthly and daily totals that sum them.

Each user has a habit (idle, light, regular, heavy) giving the share of their monthly max a
whole month would use. That month's pace is spread over the days seeded, today counting for
the part of it gone by, so a day looks like any other whatever today's date: on the 1st the
month has one (partial) day of use, not the month's. A month's usage stops at the max, as the
usage API enforces; a heavy user may get there early.

Every draw comes from one seeded random source, in a fixed order: the same database and clock
give the same demo.
"""

import calendar
import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass

from accounts.models import Membership, Organization
from asksage_admin.lib.months import month_start
from tokens.models import DailyUsage, MonthlyUsage, UsageEvent
from tokens.partitions import months_ensure
from tokens.rollup import org_daily_usage_rebuild

from .plans import (
    ADMIN_EMAIL,
    EMBEDDING_MODELS,
    EMBEDDING_WEIGHTS,
    EVENT_DAYS,
    INFERENCE_MODELS,
    INFERENCE_WEIGHTS,
    MEMBER_EMAIL,
)

# The share of their monthly max a user of each habit uses in a whole month (idle: none).
HABIT_SHARES = {"light": (0.05, 0.3), "regular": (0.3, 0.75), "heavy": (0.8, 1.2)}
BATCH = 5000


def seed_usage(*, rng: random.Random, memberships: list[Membership], now: dt.datetime) -> int:
    """Create the members' usage events and rollups; return how many events."""
    seeder = _UsageSeeder(rng, now)
    for membership in memberships:
        seeder.add_member(membership)
    return seeder.save()


@dataclass(frozen=True)
class _MonthOfUse:
    """One member's use of one kind in one month, at a share of `limit` drawn from `shares`."""

    membership: Membership
    kind: str
    limit: int
    month: dt.date
    shares: tuple[float, float]


class _UsageSeeder:
    """Collects the events and monthly totals in memory, then inserts them in bulk."""

    def __init__(self, rng: random.Random, now: dt.datetime) -> None:
        self.rng, self.now, self.today = rng, now, now.date()
        midnight = dt.datetime.combine(self.today, dt.time(), tzinfo=dt.UTC)
        self.today_weight = max((now - midnight).total_seconds() / 86_400, 0.05)
        self.by_month: dict[dt.date, list[dt.date]] = defaultdict(list)
        for n in range(EVENT_DAYS - 1, -1, -1):
            day = self.today - dt.timedelta(days=n)
            self.by_month[month_start(day)].append(day)
        self.events: list[UsageEvent] = []
        self.totals: dict[tuple[int, int, str, dt.date], int] = defaultdict(int)

    def add_member(self, membership: Membership) -> None:
        if membership.organization.status == Organization.Status.PENDING:
            return
        habit = self.rng.choices(["idle", "light", "regular", "heavy"], [1, 3, 4, 2])[0]
        if membership.user.email in (ADMIN_EMAIL, MEMBER_EMAIL):
            habit = "regular"  # the demo logins always have something to show
        if habit == "idle":
            return
        for kind, limit, models in (
            ("inference", membership.max_inference_tokens, (INFERENCE_MODELS, INFERENCE_WEIGHTS)),
            ("embedding", membership.max_embedding_tokens, (EMBEDDING_MODELS, EMBEDDING_WEIGHTS)),
        ):
            if not limit or (kind == "embedding" and self.rng.random() < 0.4):
                continue
            for month, month_days in self.by_month.items():
                if days := self._days_in_use(membership, month_days):
                    usage = _MonthOfUse(membership, kind, limit, month, HABIT_SHARES[habit])
                    self._add_month(usage, days, models)

    def _days_in_use(self, membership: Membership, days: list[dt.date]) -> list[dt.date]:
        """The days the member could use tokens: not once suspended, nor lately if banned."""
        org = membership.organization
        if org.status == Organization.Status.SUSPENDED:
            days = [d for d in days if d < org.suspended_at.date()]
        if membership.user.is_banned:
            days = [d for d in days if d < self.today - dt.timedelta(days=15)]
        return days

    def _weight(self, day: dt.date) -> float:
        return self.today_weight if day == self.today else 1.0

    def _add_month(self, usage: _MonthOfUse, days: list[dt.date], models: tuple) -> None:
        rng = self.rng
        share = rng.uniform(*usage.shares)
        length = calendar.monthrange(usage.month.year, usage.month.month)[1]
        per_day = usage.limit * share / length  # this month's pace, tokens a day
        active = [d for d in days if rng.random() < 0.55] or days[-1:]
        # The month's use so far at that pace, over the active days only.
        elapsed = sum(self._weight(d) for d in days)
        active_weights = [self._weight(d) for d in active]
        scale = per_day * elapsed / sum(active_weights)
        used = 0
        for day, weight in zip(active, active_weights, strict=True):
            tokens = min(int(scale * weight * rng.uniform(0.6, 1.4)), usage.limit - used)
            count = min(rng.randint(1, 3), tokens)
            if count <= 0:
                continue
            used += tokens
            member = usage.membership
            self.totals[(member.organization.pk, member.user.pk, usage.kind, usage.month)] += tokens
            self._add_day(usage, day, tokens, count, models)

    def _add_day(self, usage: _MonthOfUse, day: dt.date, tokens: int, count: int, models) -> None:
        """Split the day's tokens into `count` positive parts, one event each."""
        cuts = sorted(self.rng.sample(range(1, tokens), count - 1)) if count > 1 else []
        for a, b in zip([0, *cuts], [*cuts, tokens], strict=True):
            self.events.append(
                UsageEvent(
                    organization_id=usage.membership.organization.pk,
                    user_id=usage.membership.user.pk,
                    kind=usage.kind,
                    tokens=b - a,
                    model=self.rng.choices(*models)[0],
                    created_at=self._moment(day),
                )
            )

    def _moment(self, day: dt.date) -> dt.datetime:
        """A time on `day` (UTC) that is not in the future."""
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        span = min(86_400, int((self.now - start).total_seconds()))
        return start + dt.timedelta(seconds=self.rng.randrange(max(span, 1)))

    def save(self) -> int:
        """Insert the events, the daily rollups (per user and per organization) and the monthly
        totals."""
        if self.events:  # PostgreSQL: the past months' partitions, not the DEFAULT one
            months_ensure(
                min(month_start(e.created_at) for e in self.events), month_start(self.now)
            )
        UsageEvent.objects.bulk_create(self.events, batch_size=BATCH)
        daily: dict[tuple[int, int, str, str, dt.date], list[int]] = defaultdict(lambda: [0, 0])
        for e in self.events:
            row = daily[(e.organization_id, e.user_id, e.kind, e.model, e.created_at.date())]
            row[0] += e.tokens
            row[1] += 1
        DailyUsage.objects.bulk_create(
            (
                DailyUsage(organization_id=o, user_id=u, kind=k, model=m, day=d, tokens=t, events=n)
                for (o, u, k, m, d), (t, n) in daily.items()
            ),
            batch_size=BATCH,
        )
        # The organizations' rollup the statistics read, summed from the rows above.
        org_daily_usage_rebuild(organization_ids={o for o, *_ in daily})
        MonthlyUsage.objects.bulk_create(
            (
                MonthlyUsage(organization_id=o, user_id=u, kind=k, month=m, used=used)
                for (o, u, k, m), used in self.totals.items()
            ),
            batch_size=BATCH,
        )
        return len(self.events)
