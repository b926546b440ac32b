"""One big organization for benchmarks: N users and M usage events, inserted in bulk."""

import datetime as dt
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Membership, Organization, User
from asksage_admin.lib.months import current_month, previous_month
from tokens.models import BLOCK, DailyUsage, MonthlyUsage, Purchase, UsageEvent
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
            org, admin_email, made = self._seed(slug, users, events, random.Random(seed))
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

    def _seed(self, slug: str, n_users: int, n_events: int, rng: random.Random):
        """Bulk-insert one organization at scale: users, memberships, purchases, usage.

        Long on purpose: a straight script of bulk inserts whose steps share most of their
        locals (the users, the months, the random source); split into steps, each would take
        and return nearly all of them, and the order of the inserts would be harder to see.
        """
        now = timezone.now()
        this_month, last_month = current_month(), previous_month()
        domain = f"{slug}.example.com"
        created = dt.datetime.combine(last_month, dt.time(), tzinfo=dt.UTC)
        org = Organization.objects.create(
            name=f"Scale test {slug}",
            slug=slug,
            billing_address="1 Benchmark Way, Springfield",
            status=Organization.Status.ACTIVE,
            created_at=created,
            activated_at=created,
        )

        max_inf = [rng.choice(INFERENCE_CHOICES) for _ in range(n_users)]
        max_emb = [rng.choice(EMBEDDING_CHOICES) for _ in range(n_users)]
        for kind, maxima in (("inference", max_inf), ("embedding", max_emb)):
            # The pool covers every allocation with about 10 % left unallocated.
            pool = -(-sum(maxima) * 11 // 10 // BLOCK) * BLOCK or BLOCK
            Purchase.objects.create(
                organization=org,
                kind=kind,
                tokens_per_month=pool,
                start_month=last_month,
                payment_reference=f"SCALE-{slug[:20].upper()}",
                created_at=created,
            )

        emails = [f"user{i:07d}@{domain}" for i in range(n_users)]
        emails[0] = f"admin@{domain}"

        def user_rows():
            for i, email in enumerate(emails):
                joined = created + dt.timedelta(seconds=i)
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
        made = {"users": bulk_insert(User, user_fields, user_rows())}
        id_by_email = dict(
            User.objects.filter(email__endswith=f"@{domain}").values_list("email", "id")
        )
        user_ids = [id_by_email[email] for email in emails]

        # About one admin per 10,000 users, the first user always.
        admins = {0, *range(10_000, n_users, 10_000)}
        made["memberships"] = bulk_insert(
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
                (uid, org.pk, "admin" if i in admins else "member", max_inf[i], max_emb[i], created)
                for i, uid in enumerate(user_ids)
            ),
        )

        # used[kind][month][user index], kept ≤ the user's max as the usage API enforces.
        used = {kind: {m: [0] * n_users for m in (last_month, this_month)} for kind in KINDS}
        limits = {"inference": max_inf, "embedding": max_emb}
        span = (now - created).total_seconds()
        this_start = dt.datetime.combine(this_month, dt.time(), tzinfo=dt.UTC)
        # Tokens per event sized so that an average user fills about half their max.
        mean_max = sum(max_inf) / n_users
        cap = max(100, int(mean_max * n_users / max(n_events, 1)))

        daily: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])

        def event_rows():
            for i in range(n_events):
                # Times increase with ids, as real events arrive; some users are much busier.
                at = created + dt.timedelta(seconds=span * (i + rng.random()) / n_events)
                month = this_month if at >= this_start else last_month
                kind = "embedding" if rng.random() < 0.2 else "inference"
                for _ in range(20):
                    u = int(n_users * rng.random() ** 2)
                    room = limits[kind][u] - used[kind][month][u]
                    if room > 0:
                        break
                    kind = "inference"
                else:
                    raise CommandError(
                        "The users' maxima cannot hold that many events; use more --users."
                    )
                tokens = min(rng.randint(1, cap), room)
                used[kind][month][u] += tokens
                models_ = INFERENCE_MODELS if kind == "inference" else EMBEDDING_MODELS
                model = rng.choice(models_)
                row = daily[(u, kind, model, at.date())]
                row[0] += tokens
                row[1] += 1
                yield (org.pk, user_ids[u], kind, tokens, model, at, "", "")

        made["events"] = bulk_insert(
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
            event_rows(),
        )
        # The daily rollups the statistics read, as the usage API maintains them.
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
        return org, emails[0], made
