"""Seeding a benchmark database at one size, fast: COPY, indexes built once, set-based rollups.

Two organizations, one per kind of figure:
  - `bench-users`: 100,000 users (User Management and the Django admin changelist anchor),
    with `seed_scale` (COPY on PostgreSQL) and 200,000 events of their own;
  - `bench-stats`: 20,000 users and the size's events (1,000,000 or 10,000,000), spread
    evenly over the last 365 days (Token Statistics, exports), written here with COPY.

The events are generated in Python and sent as COPY text in large chunks; the usage events'
two secondary indexes are dropped during the load and built once after it, and the
foreign-key triggers are skipped for the load when the role may (a superuser: the rows
reference users just created, so there is nothing to check). The daily and monthly rollups
are then one INSERT … SELECT each, as the usage API would have maintained them (the daily
table's indexes and unique constraint, too, built once after).
"""

import datetime as dt
import random
import time

from common import record_seed
from django.core.management import call_command
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import Membership, Organization, User
from asksage_admin.lib.months import month_start
from tokens.management.commands.seed_scale import EMBEDDING_MODELS, INFERENCE_MODELS
from tokens.models import DailyUsage, MonthlyUsage, OrgDailyUsage, UsageEvent
from tokens.partitions import months_ensure
from tokens.rollup import org_daily_usage_rebuild

VERSION = 2  # bump when the seeded data changes: databases seeded before are seeded again
USERS_SLUG, STATS_SLUG = "bench-users", "bench-stats"
TABLE_USERS, TABLE_EVENTS, STATS_USERS = 100_000, 200_000, 20_000
DAYS = 365
CHUNK = 100_000  # rows per COPY write
MAX_EVENT_TOKENS = 4_000  # 500 events a user a year at 10M: ~85,000 a month, under any max


def wanted(events: int) -> dict:
    """What a database seeded at this size holds; compared with what it recorded."""
    return {
        "version": VERSION,
        "events": events,
        "stats_users": STATS_USERS,
        "table_users": TABLE_USERS,
        "table_events": TABLE_EVENTS,
    }


def seed(events: int, log=print) -> dict:
    """Seed an empty, migrated database; returns what it recorded, timings included."""
    seconds = {}
    start = time.perf_counter()
    call_command(
        "seed_scale", users=TABLE_USERS, events=TABLE_EVENTS, org_slug=USERS_SLUG, verbosity=0
    )
    seconds["users org (seed_scale)"] = took = time.perf_counter() - start
    log(f"  {TABLE_USERS:,} users and {TABLE_EVENTS:,} events (seed_scale): {took:.0f} s")

    start = time.perf_counter()
    call_command("seed_scale", users=STATS_USERS, events=0, org_slug=STATS_SLUG, verbosity=0)
    org = Organization.objects.get(slug=STATS_SLUG)
    copy_events(org, events, log)
    seconds["events (COPY + indexes)"] = time.perf_counter() - start

    start = time.perf_counter()
    rollups(org, log)
    seconds["rollups + VACUUM ANALYZE"] = time.perf_counter() - start
    log(f"  rollups and VACUUM ANALYZE: {seconds['rollups + VACUUM ANALYZE']:.0f} s")

    meta = {**wanted(events), "seeded_at": timezone.now().isoformat(), "seconds": seconds}
    with connection.cursor() as cursor:
        record_seed(cursor, meta)
    return meta


def _event_lines(org_id: int, user_ids: list[int], count: int, rng: random.Random):
    """COPY text for `count` events, in chunks, times rising with ids as real events arrive."""
    first = timezone.now() - dt.timedelta(days=DAYS)
    step = DAYS * 86_400 / max(count, 1)
    base = first.timestamp()
    inference = [m.encode() for m in INFERENCE_MODELS]
    embedding = [m.encode() for m in EMBEDDING_MODELS]
    prefix = f"{org_id}\t".encode()
    for low in range(0, count, CHUNK):
        high = min(low + CHUNK, count)
        users = rng.choices(user_ids, k=high - low)
        lines = []
        for i, user in zip(range(low, high), users, strict=True):
            at = dt.datetime.fromtimestamp(base + step * i, dt.UTC).isoformat().encode()
            if rng.random() < 0.2:
                kind, model = b"embedding", rng.choice(embedding)
            else:
                kind, model = b"inference", rng.choice(inference)
            tokens = 1 + int(rng.random() * MAX_EVENT_TOKENS)
            lines.append(b"%s%d\t%s\t%d\t%s\t%s\t\t\n" % (prefix, user, kind, tokens, model, at))
        yield b"".join(lines), high


def copy_events(org: Organization, count: int, log=print) -> None:
    """COPY `count` events of `org`'s members; the event indexes are built once, after."""
    user_ids = list(
        Membership.objects.filter(organization=org)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    table = connection.ops.quote_name(UsageEvent._meta.db_table)
    columns = "organization_id, user_id, kind, tokens, model, created_at, idempotency_key, "
    sql = f"COPY {table} ({columns}request_hash) FROM STDIN"
    indexes = UsageEvent._meta.indexes
    started = time.perf_counter()
    # The months' partitions first (the events are partitioned by month), so that no row
    # lands in the DEFAULT partition.
    now = timezone.now()
    months_ensure(month_start(now - dt.timedelta(days=DAYS)), month_start(now))
    with transaction.atomic(), connection.schema_editor(atomic=False) as editor:
        for index in indexes:
            editor.remove_index(UsageEvent, index)
        with connection.cursor() as cursor:
            bulk_session(cursor)
            with cursor.copy(sql) as copy:
                for data, done in _event_lines(org.pk, user_ids, count, random.Random(5)):
                    copy.write(data)
                    if done % 1_000_000 == 0:
                        log(f"  {done:,} events ({time.perf_counter() - started:.0f} s)")
        copied = time.perf_counter() - started
        for index in indexes:
            editor.add_index(UsageEvent, index)
    log(
        f"  {count:,} events: COPY {copied:.0f} s, indexes "
        f"{time.perf_counter() - started - copied:.0f} s"
    )


def bulk_session(cursor) -> None:
    """For this transaction: memory for big sorts and index builds, and, when the role may
    (a superuser), no foreign-key triggers: every row references users and an organization
    this seeding just created, and the usage tables' keys are DEFERRABLE, so each row would
    otherwise queue two checks until the commit."""
    cursor.execute("SET LOCAL work_mem = '256MB'")
    cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if cursor.fetchone()[0]:
        cursor.execute("SET LOCAL session_replication_role = replica")


def rollups(org: Organization, log=print) -> None:
    """Daily and monthly usage from the events, DailyUsage's indexes built after; the
    organization predates its first event. VACUUM, since autovacuum may be off.

    Rows are written in day (month) order, as the usage API writes them: a day's rows are
    created that day, so they share pages (grouped by user, one day's rows were spread over
    every page of the table, and reading a day read the whole table)."""
    events = connection.ops.quote_name(UsageEvent._meta.db_table)
    day = "(created_at AT TIME ZONE 'UTC')::date"
    month = "date_trunc('month', created_at AT TIME ZONE 'UTC')::date"
    indexes = DailyUsage._meta.indexes
    unique = [c for c in DailyUsage._meta.constraints if isinstance(c, models.UniqueConstraint)]
    started = time.perf_counter()
    with transaction.atomic(), connection.schema_editor(atomic=False) as editor:
        for index in indexes:
            editor.remove_index(DailyUsage, index)
        for constraint in unique:  # the GROUP BY makes the rows unique; checked when rebuilt
            editor.remove_constraint(DailyUsage, constraint)
        with connection.cursor() as cursor:
            bulk_session(cursor)
            cursor.execute(
                f"INSERT INTO {DailyUsage._meta.db_table} "
                "(organization_id, user_id, kind, model, day, tokens, events) "
                f"SELECT organization_id, user_id, kind, model, {day}, SUM(tokens), COUNT(*) "
                f"FROM {events} WHERE organization_id = %s GROUP BY 1, 2, 3, 4, 5 ORDER BY 5",
                [org.pk],
            )
            cursor.execute(
                f"INSERT INTO {MonthlyUsage._meta.db_table} "
                "(organization_id, user_id, kind, month, used) "
                f"SELECT organization_id, user_id, kind, {month}, SUM(tokens) "
                f"FROM {events} WHERE organization_id = %s GROUP BY 1, 2, 3, 4 ORDER BY 4",
                [org.pk],
            )
        for constraint in unique:
            editor.add_constraint(DailyUsage, constraint)
        for index in indexes:
            editor.add_index(DailyUsage, index)
        org_daily_usage_rebuild(organization_ids=[org.pk])  # the statistics page reads it
        born = timezone.now() - dt.timedelta(days=DAYS + 1)
        Organization.objects.filter(pk=org.pk).update(created_at=born, activated_at=born)
    rolled = time.perf_counter() - started
    tables = [
        m._meta.db_table
        for m in (User, Membership, UsageEvent, DailyUsage, MonthlyUsage, OrgDailyUsage)
    ]
    with connection.cursor() as cursor:  # all-visible pages and fresh statistics
        cursor.execute("VACUUM (ANALYZE) " + ", ".join(tables))
    log(f"  rollups {rolled:.0f} s, VACUUM {time.perf_counter() - started - rolled:.0f} s")
