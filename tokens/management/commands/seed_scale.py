"""One big organization for benchmarks: N users and M usage events, inserted in bulk."""

import datetime as dt
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Membership, Organization, User
from asksage_admin.lib.months import current_month, previous_month
from tokens.models import BLOCK, DailyUsage, MonthlyUsage, Purchase, UsageEvent
from tokens.partitions import months_ensure
from tokens.rollup import org_daily_usage_rebuild

CHUNK = 10_000
UNUSABLE_PASSWORD = "!"  # what set_unusable_password() stores: nobody can log in with it
INFERENCE_CHOICES = [200_000, 250_000, 300_000, 500_000, 750_000, 1_000_000, 2_000_000]
EMBEDDING_CHOICES = [0, 0, 100_000, 250_000, 500_000]
INFERENCE_MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b"]
EMBEDDING_MODELS = ["text-embedding-3-large", "text-embedding-3-small"]
KINDS = ("inference", "embedding")


def _chunks(rows: Iterable[tuple], size: int = CHUNK) -> Iterator[list[tuple]]:
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bulk_insert(model: type[models.Model], fields: list[str], rows: Iterable[tuple]) -> int:
    """Insert rows (tuples in `fields` order) in chunks: COPY on PostgreSQL, else bulk_create.

    COPY skips model save() and signals, as bulk_create does; the rows must already be valid.
    """
    count = 0
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
        sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            for chunk in _chunks(rows):
                for row in chunk:
                    copy.write_row(row)
                count += len(chunk)
        return count
    for chunk in _chunks(rows):
        model.objects.bulk_create(
            [model(**dict(zip(fields, row, strict=True))) for row in chunk], batch_size=CHUNK
        )
        count += len(chunk)
    return count


class Command(BaseCommand):
    help = (
        "Create one active organization with N users and M usage events for benchmarks "
        "(COPY on PostgreSQL, bulk_create on SQLite). Users get varied monthly maxima, "
        "MonthlyUsage rows for this and the previous month that equal the sum of their "
        "events, and an unusable password. Re-running with the slug of an existing "
        "organization changes nothing: it reports what that organization holds and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, required=True, help="number of users (≥ 2)")
        parser.add_argument("--events", type=int, required=True, help="number of usage events")
        parser.add_argument("--org-slug", default="scale-org", help="default: scale-org")
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")

    def handle(self, *args, users: int, events: int, org_slug: str, seed: int, **options):
        if users < 2:
            raise CommandError("--users must be at least 2 (an enterprise account's minimum).")
        if events < 0:
            raise CommandError("--events cannot be negative.")
        slug = slugify(org_slug)
        if not slug:
            raise CommandError("--org-slug must contain letters or digits.")
        existing = Organization.objects.filter(slug=slug).first()
        if existing:
            self._report_existing(existing)
            return
        started = time.monotonic()
        with transaction.atomic():
            org, admin_email, made = _seed(slug, users, events, random.Random(seed))
        if connection.vendor == "postgresql":
            # Fresh statistics, so benchmarks plan their queries as they would in production.
            with connection.cursor() as cursor:
                tables = [m._meta.db_table for m in (User, Membership, UsageEvent, MonthlyUsage)]
                cursor.execute("ANALYZE " + ", ".join(map(connection.ops.quote_name, tables)))
        self.stdout.write(
            self.style.SUCCESS(
                f"Created “{org.name}” ({slug}): {made['users']:,} users, "
                f"{made['events']:,} usage events, {made['monthly']:,} monthly usage rows "
                f"in {time.monotonic() - started:.1f} s. Admin: {admin_email} (unusable "
                "password: log in with force_login or set one with changepassword)."
            )
        )

    def _report_existing(self, org: Organization) -> None:
        self.stdout.write(
            f"Organization “{org.slug}” already exists with "
            f"{Membership.objects.filter(organization=org).count():,} users and "
            f"{UsageEvent.objects.filter(organization=org).count():,} usage events; "
            "nothing changed. Use another --org-slug for a fresh one."
        )


@dataclass
class _Scale:
    """What the seeding steps share: the organization, its users' maxima and ids, the months."""

    org: Organization
    rng: random.Random
    n_users: int
    now: dt.datetime
    created: dt.datetime
    last_month: dt.date
    this_month: dt.date
    maxima: dict[str, list[int]]
    emails: list[str] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)


def _seed(slug: str, n_users: int, n_events: int, rng: random.Random):
    """Bulk-insert one organization at scale: users, memberships, purchases, usage."""
    now = timezone.now()
    this_month, last_month = current_month(), previous_month()
    created = dt.datetime.combine(last_month, dt.time(), tzinfo=dt.UTC)
    org = Organization.objects.create(
        name=f"Scale test {slug}",
        slug=slug,
        billing_address="1 Benchmark Way, Springfield",
        status=Organization.Status.ACTIVE,
        created_at=created,
        activated_at=created,
    )
    maxima = {
        "inference": [rng.choice(INFERENCE_CHOICES) for _ in range(n_users)],
        "embedding": [rng.choice(EMBEDDING_CHOICES) for _ in range(n_users)],
    }
    scale = _Scale(org, rng, n_users, now, created, last_month, this_month, maxima)
    _pools(scale, slug)
    made = {"users": _users(scale, f"{slug}.example.com")}
    made["memberships"] = _memberships(scale)
    made.update(_usage(scale, n_events))
    return org, scale.emails[0], made


def _pools(scale: _Scale, slug: str) -> None:
    """One purchase a kind, covering every allocation with about 10 % left unallocated."""
    for kind in KINDS:
        pool = -(-sum(scale.maxima[kind]) * 11 // 10 // BLOCK) * BLOCK or BLOCK
        Purchase.objects.create(
            organization=scale.org,
            kind=kind,
            tokens_per_month=pool,
            start_month=scale.last_month,
            payment_reference=f"SCALE-{slug[:20].upper()}",
            created_at=scale.created,
        )


def _users(scale: _Scale, domain: str) -> int:
    """The users (the first one the admin), with an unusable password; their ids on `scale`."""
    rng, now = scale.rng, scale.now
    scale.emails = [f"user{i:07d}@{domain}" for i in range(scale.n_users)]
    scale.emails[0] = f"admin@{domain}"

    def user_rows():
        for i, email in enumerate(scale.emails):
            joined = scale.created + dt.timedelta(seconds=i)
            last_login = (
                now - dt.timedelta(seconds=rng.randrange(1, 40 * 86_400))
                if rng.random() < 0.8
                else None
            )
            banned = i > 0 and rng.random() < 0.01
            paid = i == 0 or rng.random() > 0.02
            yield (UNUSABLE_PASSWORD, last_login, False, email, f"Scale User {i:07d}",
                   joined, paid, banned, False, True, joined)  # fmt: skip

    user_fields = [
        "password", "last_login", "is_superuser", "email", "name", "terms_accepted_at",
        "is_paid", "is_banned", "is_staff", "is_active", "date_joined",
    ]  # fmt: skip
    count = bulk_insert(User, user_fields, user_rows())
    id_by_email = dict(User.objects.filter(email__endswith=f"@{domain}").values_list("email", "id"))
    scale.user_ids = [id_by_email[email] for email in scale.emails]
    return count


def _memberships(scale: _Scale) -> int:
    # About one admin per 10,000 users, the first user always.
    admins = {0, *range(10_000, scale.n_users, 10_000)}
    inference, embedding = scale.maxima["inference"], scale.maxima["embedding"]
    return bulk_insert(
        Membership,
        [
            "user_id",
            "organization_id",
            "role",
            "max_inference_tokens",
            "max_embedding_tokens",
            "joined_at",
        ],  # fmt: skip
        (
            (
                uid,
                scale.org.pk,
                "admin" if i in admins else "member",
                inference[i],
                embedding[i],
                scale.created,
            )  # fmt: skip
            for i, uid in enumerate(scale.user_ids)
        ),
    )


def _usage(scale: _Scale, n_events: int) -> dict[str, int]:
    """The usage events, and the daily and monthly rows that sum them, as the API keeps them."""
    n_users, org, user_ids = scale.n_users, scale.org, scale.user_ids
    # used[kind][month][user index], kept ≤ the user's max as the usage API enforces.
    months = (scale.last_month, scale.this_month)
    used = {kind: {m: [0] * n_users for m in months} for kind in KINDS}
    daily: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    events = _event_rows(scale, n_events, used, daily)
    months_ensure(scale.last_month, scale.this_month)  # PostgreSQL: their partitions
    made = {
        "events": bulk_insert(
            UsageEvent,
            [
                "organization_id",
                "user_id",
                "kind",
                "tokens",
                "model",
                "created_at",
                "idempotency_key",
                "request_hash",
            ],  # fmt: skip
            (
                (org.pk, user_ids[u], kind, tokens, model, at, "", "")
                for u, kind, tokens, model, at in events
            ),  # fmt: skip
        )
    }
    made["daily"] = bulk_insert(
        DailyUsage,
        ["organization_id", "user_id", "kind", "model", "day", "tokens", "events"],
        (
            (org.pk, user_ids[u], kind, model, day, tokens, count)
            for (u, kind, model, day), (tokens, count) in daily.items()
        ),
    )
    made["org_daily"] = org_daily_usage_rebuild(organization_ids=[org.pk])
    made["monthly"] = bulk_insert(
        MonthlyUsage,
        ["organization_id", "user_id", "kind", "month", "used"],
        (
            (org.pk, user_ids[u], kind, month, amounts[u])
            for kind, by_month in used.items()
            for month, amounts in by_month.items()
            for u in range(n_users)
            if amounts[u]
        ),
    )
    return made


def _event_rows(scale: _Scale, n_events: int, used: dict, daily: dict) -> Iterator[tuple]:
    """(user index, kind, tokens, model, time) per event, adding each to `used` and `daily`.

    Times increase with ids, as real events arrive; some users are much busier. Lazy: the
    rows are made as the insert reads them, so memory stays flat at any size.
    """
    rng, n_users, limits = scale.rng, scale.n_users, scale.maxima
    span = (scale.now - scale.created).total_seconds()
    this_start = dt.datetime.combine(scale.this_month, dt.time(), tzinfo=dt.UTC)
    # Tokens per event sized so that an average user fills about half their max.
    mean_max = sum(limits["inference"]) / n_users
    cap = max(100, int(mean_max * n_users / max(n_events, 1)))
    for i in range(n_events):
        at = scale.created + dt.timedelta(seconds=span * (i + rng.random()) / n_events)
        month = scale.this_month if at >= this_start else scale.last_month
        kind = "embedding" if rng.random() < 0.2 else "inference"
        for _ in range(20):
            u = int(n_users * rng.random() ** 2)
            room = limits[kind][u] - used[kind][month][u]
            if room > 0:
                break
            kind = "inference"
        else:
            raise CommandError("The users' maxima cannot hold that many events; use more --users.")
        tokens = min(rng.randint(1, cap), room)
        used[kind][month][u] += tokens
        model = rng.choice(INFERENCE_MODELS if kind == "inference" else EMBEDDING_MODELS)
        row = daily[(u, kind, model, at.date())]
        row[0] += tokens
        row[1] += 1
        yield u, kind, tokens, model, at
