"""Token Statistics and CSV exports at scale.

Run on PostgreSQL (it seeds with COPY):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/asksage_bench \
        .venv/bin/python benchmarks/exports.py

It migrates, seeds one organization with `seed_scale` (BENCH_USERS users, BENCH_EVENTS usage
events, by default 20,000 and 1,000,000) and rolls the events up into DailyUsage once, then
reports:
  (a) the statistics page's median time and query count (30 and 90 days);
  (b) the usage-events CSV export of every event: rows per second and the peak memory (RSS)
      of a fresh process doing only that;
  (c) the same for PostgreSQL's own `COPY (SELECT …) TO STDOUT WITH CSV` through psycopg,
      and the export's speed as a share of COPY's;
  (e) the same usage-events export as XLSX (XlsxWriter, constant-memory mode): rows per
      second and peak RSS of a fresh process;
  (d) the audit chain: appending BENCH_AUDIT rows in batches of 1,000 with `audit_bulk`, then
      `verify_audit` of that organization's chain.
"""

import datetime as dt
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asksage_admin.settings")
os.environ.setdefault("DEBUG", "1")  # a developer's tool: the development settings
os.environ.setdefault("MFA_REQUIRED", "0")  # the admin's client logs in with force_login

import django  # noqa: E402
from common import median_ms  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Membership, Organization  # noqa: E402
from asksage_admin.lib.months import month_start  # noqa: E402
from audit import chain, integrity  # noqa: E402
from audit.models import AuditLog  # noqa: E402
from audit.services import audit_bulk  # noqa: E402
from tokens.models import DailyUsage, MonthlyUsage, UsageEvent  # noqa: E402
from tokens.partitions import months_ensure  # noqa: E402
from tokens.rollup import org_daily_usage_rebuild  # noqa: E402

USERS = int(os.environ.get("BENCH_USERS", "20000"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
SLUG = os.environ.get("BENCH_ORG", "bench-stats")
AUDIT_ROWS = int(os.environ.get("BENCH_AUDIT", "200000"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def admin_client(org: Organization) -> Client:
    admin = Membership.objects.filter(organization=org, role="admin").select_related("user")
    client = Client()
    client.force_login(admin.first().user)
    return client


def seed_events(org: Organization, count: int) -> None:
    """COPY `count` usage events over the last 60 days, then roll them into MonthlyUsage.

    Written here rather than by `seed_scale --events` so the benchmark does not depend on
    the seeding of the usage tables' latest columns.
    """
    rng = random.Random(5)
    users = list(Membership.objects.filter(organization=org).values_list("user_id", flat=True))
    models = {"inference": ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet"], "embedding": ["e3"]}
    now = timezone.now()
    span = 60 * 86400
    months_ensure(month_start(now - dt.timedelta(seconds=span)), month_start(now))
    table = UsageEvent._meta.db_table
    columns = "organization_id, user_id, kind, tokens, model, created_at, idempotency_key"
    fields = [f.column for f in UsageEvent._meta.concrete_fields]
    extra = [c for c in ("request_hash",) if c in fields]
    sql = f"COPY {table} ({columns}{''.join(', ' + c for c in extra)}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.copy(sql) as copy:
        for i in range(count):
            kind = "embedding" if rng.random() < 0.2 else "inference"
            at = now - dt.timedelta(seconds=span * (count - i) / count)
            row = [org.pk, rng.choice(users), kind, rng.randint(1, 4000)]
            row += [rng.choice(models[kind]), at, ""] + [""] * len(extra)
            copy.write_row(row)
    month_table = MonthlyUsage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {month_table} (organization_id, user_id, kind, month, used) "
            f"SELECT organization_id, user_id, kind, "
            f"date_trunc('month', created_at AT TIME ZONE 'UTC')::date, SUM(tokens) "
            f"FROM {table} WHERE organization_id = %s GROUP BY 1, 2, 3, 4 "
            f"ON CONFLICT (user_id, kind, month, organization_id) "
            f"DO UPDATE SET used = EXCLUDED.used",
            [org.pk],
        )


def rollup(org: Organization) -> None:
    """DailyUsage and the organization rollup from the seeded events (the usage API
    maintains both as events arrive)."""
    if DailyUsage.objects.filter(organization=org).exists():
        return
    table, events = DailyUsage._meta.db_table, UsageEvent._meta.db_table
    day = (
        "(created_at AT TIME ZONE 'UTC')::date"
        if connection.vendor == "postgresql"
        else ("date(created_at)")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (organization_id, user_id, kind, model, day, tokens, events) "
            f"SELECT organization_id, user_id, kind, model, {day}, SUM(tokens), COUNT(*) "
            f"FROM {events} WHERE organization_id = %s "
            f"GROUP BY organization_id, user_id, kind, model, {day}",
            [org.pk],
        )
    org_daily_usage_rebuild(organization_ids=[org.pk])


def export_only() -> None:
    """Child process: stream the usage-events export, report rows/s and peak RSS."""
    org = Organization.objects.get(slug=SLUG)
    client = admin_client(org)
    before = peak_rss_mb()
    start = time.perf_counter()
    response = client.get("/panel/exports/usage-events.csv?range=90")
    assert response.status_code == 200, response.content
    lines = size = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
        size += len(chunk)
    seconds = time.perf_counter() - start
    rows = lines - 1
    print(f"{rows} {seconds:.3f} {size} {before:.1f} {peak_rss_mb():.1f}")


def xlsx_only() -> None:
    """Child process: stream the usage-events export as XLSX, report rows/s and peak RSS."""
    org = Organization.objects.get(slug=SLUG)
    client = admin_client(org)
    before = peak_rss_mb()
    start = time.perf_counter()
    response = client.get("/panel/exports/usage-events.xlsx?range=90")
    assert response.status_code == 200, response.content
    size = sum(len(chunk) for chunk in response.streaming_content)
    seconds = time.perf_counter() - start
    rows = UsageEvent.objects.filter(organization=org).count()
    print(f"{rows} {seconds:.3f} {size} {before:.1f} {peak_rss_mb():.1f}")


def copy_only() -> None:
    """Child process: PostgreSQL's COPY of the same rows, read through psycopg."""
    org = Organization.objects.get(slug=SLUG)
    before = peak_rss_mb()
    # The export's rows: the last 90 UTC days, today included (range=90).
    since = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=89)
    sql = (
        f"COPY (SELECT e.created_at, u.email, e.kind, e.model, e.tokens "
        f"FROM {UsageEvent._meta.db_table} e JOIN accounts_user u ON u.id = e.user_id "
        f"WHERE e.organization_id = {int(org.pk)} "
        f"AND e.created_at >= '{since.isoformat()}T00:00:00+00:00' ORDER BY e.created_at, e.id) "
        f"TO STDOUT WITH CSV HEADER"
    )
    start = time.perf_counter()
    lines = size = 0
    with connection.cursor() as cursor, cursor.connection.cursor().copy(sql) as copy:
        for data in copy:
            lines += bytes(data).count(b"\n")
            size += len(data)
    seconds = time.perf_counter() - start
    print(f"{lines - 1} {seconds:.3f} {size} {before:.1f} {peak_rss_mb():.1f}")


def child(mode: str) -> tuple[int, float, int, float, float]:
    out = subprocess.run(
        [sys.executable, __file__, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), float(out[1]), int(out[2]), float(out[3]), float(out[4])


def main() -> None:
    print(f"database: {connection.vendor}")
    call_command("migrate", verbosity=0)
    if not Organization.objects.filter(slug=SLUG).exists():
        start = time.perf_counter()
        call_command("seed_scale", users=USERS, events=0, org_slug=SLUG, verbosity=0)
        seed_events(Organization.objects.get(slug=SLUG), EVENTS)
        print(f"seeded {USERS:,} users, {EVENTS:,} events in {time.perf_counter() - start:.1f} s")
    org = Organization.objects.get(slug=SLUG)
    rollup(org)
    events = UsageEvent.objects.filter(organization=org).count()
    daily = DailyUsage.objects.filter(organization=org).count()
    print(f"organization {org.slug}: {events:,} usage events, {daily:,} DailyUsage rows")

    client = admin_client(org)
    for days in ("30", "90"):

        def page(d=days):
            assert client.get("/panel/statistics/", {"range": d}).status_code == 200

        ms, queries = median_ms(page, RUNS)
        print(
            f"(a) statistics page, {days} days: median {ms:.1f} ms over {RUNS} runs, "
            f"{queries} queries"
        )

    rows, seconds, size, before, peak = child("--export-only")
    print(
        f"(b) usage-events export: {rows:,} rows, {size / 1e6:.0f} MB in {seconds:.1f} s = "
        f"{rows / seconds:,.0f} rows/s; peak RSS {peak:.0f} MB (process started at {before:.0f} MB)"
    )
    if connection.vendor == "postgresql":
        c_rows, c_seconds, c_size, c_before, c_peak = child("--copy-only")
        print(
            f"(c) COPY TO STDOUT: {c_rows:,} rows, {c_size / 1e6:.0f} MB in {c_seconds:.1f} s "
            f"= {c_rows / c_seconds:,.0f} rows/s; peak RSS {c_peak:.0f} MB"
        )
        print(f"    export speed = {100 * (rows / seconds) / (c_rows / c_seconds):.0f} % of COPY's")
    x_rows, x_seconds, x_size, x_before, x_peak = child("--xlsx-only")
    print(
        f"(e) usage-events XLSX: {x_rows:,} rows, {x_size / 1e6:.0f} MB in {x_seconds:.1f} s = "
        f"{x_rows / x_seconds:,.0f} rows/s; peak RSS {x_peak:.0f} MB (started at {x_before:.0f} MB)"
    )
    audit_chain(org)


def audit_chain(org: Organization) -> None:
    key = chain.chain_key(org.pk)
    have = AuditLog.objects.filter(chain=key).count()
    if have < AUDIT_ROWS:
        start = time.perf_counter()
        for offset in range(have, AUDIT_ROWS, 1000):
            audit_bulk(
                [
                    AuditLog(
                        organization=org,
                        action="allocation.changed",
                        new_value=str(n),
                        details={"n": n},
                    )
                    for n in range(offset, min(offset + 1000, AUDIT_ROWS))
                ]
            )
        added = AUDIT_ROWS - have
        seconds = time.perf_counter() - start
        print(
            f"(d) appended {added:,} audit rows in {seconds:.1f} s = {added / seconds:,.0f} rows/s"
        )
    start = time.perf_counter()
    verdict = integrity.verify(key)
    seconds = time.perf_counter() - start
    print(
        f"(d) verify_audit of {verdict.checked:,} rows: {seconds:.1f} s = "
        f"{verdict.checked / seconds:,.0f} rows/s ({'intact' if verdict.intact else verdict})"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--export-only"]:
        export_only()
    elif sys.argv[1:] == ["--xlsx-only"]:
        xlsx_only()
    elif sys.argv[1:] == ["--copy-only"]:
        copy_only()
    else:
        main()
