"""Usage API under load, compared with PostgreSQL's own rate for the same conditional UPDATE.

Run with (PostgreSQL; the database is created if missing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/asksage_bench_usage \\
        .venv/bin/python benchmarks/usage_api.py

It migrates, seeds an organization of 1,000 users (one in ten with a small max, so refusals
happen), starts the app under gunicorn on 127.0.0.1 (DEBUG off), then for BENCH_SECONDS
drives `POST /api/v1/usage` from BENCH_CLIENTS concurrent keep-alive connections (a bounded
asyncio loop, a fresh Idempotency-Key per request) and reports requests/s, p50/p95/p99 and
errors. It then checks that no user's usage exceeds their max and that events, daily
rollups and monthly totals agree, and runs `pgbench` for as long with a custom script doing
the same single-row `UPDATE … SET used = used + n WHERE … AND used + n <= max` on the same
table, reporting our throughput as a percentage of pgbench's. For scale, it also measures
the same server answering a database-free JSON document for 10 s.

Knobs (environment): BENCH_SECONDS=30, BENCH_CLIENTS=32, BENCH_USERS=1000,
BENCH_WORKERS=<2 × CPUs + 1>, BENCH_THREADS=1 (gunicorn gthread threads per worker),
BENCH_PORT=8765.
"""

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asksage_admin.settings")

SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "32"))
USERS = int(os.environ.get("BENCH_USERS", "1000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", str(2 * (os.cpu_count() or 1) + 1)))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
PORT = int(os.environ.get("BENCH_PORT", "8765"))
SLUG = "bench-usage-api"
BIG_MAX = 5_000_000
SMALL_MAX = 3_000  # one user in ten: they reach it within the run, and are refused after


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in DATABASE_URL when it does not exist."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def seed():
    """The organization, its users and an API key; usage from earlier runs is cleared."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Membership, Organization, User
    from asksage_admin.lib.months import current_month
    from tokens import usage
    from tokens.models import ApiKey, DailyUsage, MonthlyUsage, UsageEvent

    org, _ = Organization.objects.get_or_create(
        slug=SLUG,
        defaults={
            "name": "Bench Usage API",
            "billing_address": "1 Bench Road",
            "status": Organization.Status.ACTIVE,
            "activated_at": timezone.now(),
        },
    )
    existing = Membership.objects.filter(organization=org).count()
    if existing < USERS + 1:
        with transaction.atomic():
            start = existing
            users = User.objects.bulk_create(
                User(
                    email=f"bench-usage-{i}@example.com",
                    name=f"Bench User {i}",
                    password="!",  # unusable: these users never log in
                    terms_accepted_at=timezone.now(),
                )
                for i in range(start, USERS + 1)
            )
            Membership.objects.bulk_create(
                Membership(
                    user=user,
                    organization=org,
                    role="admin" if user.email == "bench-usage-0@example.com" else "member",
                    max_inference_tokens=SMALL_MAX if i % 10 == 0 else BIG_MAX,
                )
                for i, user in enumerate(users, start=start)
            )
    members = Membership.objects.filter(organization=org)
    # Every run starts from the same maxes, whatever an earlier run or version left.
    members.update(max_inference_tokens=BIG_MAX)
    small = [f"bench-usage-{i}@example.com" for i in range(0, USERS + 1, 10)]
    members.filter(user__email__in=small).update(max_inference_tokens=SMALL_MAX)
    user_ids = list(members.values_list("user_id", flat=True))
    with transaction.atomic():
        UsageEvent.objects.filter(organization=org).delete()
        DailyUsage.objects.filter(organization=org).delete()
        MonthlyUsage.objects.filter(organization=org).delete()
        ApiKey.objects.filter(organization=org).delete()
        # Mid-month: most users have used part of their max (below the 80 % alerts).
        rng = random.Random(7)
        MonthlyUsage.objects.bulk_create(
            MonthlyUsage(
                organization=org,
                user_id=user_id,
                kind="inference",
                month=current_month(),
                used=rng.randint(0, BIG_MAX * 6 // 10),
            )
            for user_id, limit in members.values_list("user_id", "max_inference_tokens")
            if limit == BIG_MAX
        )
    admin = members.get(role="admin").user
    secret = usage.api_key_create(actor=admin, org=org, name="bench")[1]
    emails = list(
        User.objects.filter(pk__in=user_ids)
        .exclude(email="bench-usage-0@example.com")
        .values_list("email", flat=True)
    )
    return org, secret, emails


def start_gunicorn(env: dict) -> subprocess.Popen:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    args = [
        gunicorn,
        "asksage_admin.wsgi",
        "--bind",
        f"127.0.0.1:{PORT}",
        "--workers",
        str(WORKERS),
        "--log-level",
        "warning",
    ]
    if THREADS > 1:
        args += ["--worker-class", "gthread", "--threads", str(THREADS)]
    process = subprocess.Popen(args, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            import urllib.request

            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v1/openapi.json", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("gunicorn did not start")


class Connection:
    """A minimal HTTP/1.1 client: the load generator must cost far less CPU than the app."""

    def __init__(self):
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", PORT)
        self.writer.write(raw)
        status_line = await self.reader.readline()
        if not status_line:  # the server closed an idle keep-alive connection: reconnect
            self.close()
            return await self.request(raw)
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def load(secret: str, emails: list[str], seconds: float, record: bool):
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: Counter = Counter()
    accepted_tokens = 0
    deadline = time.monotonic() + seconds
    rng = random.Random(42)

    async def client():
        nonlocal accepted_tokens
        conn = Connection()
        while time.monotonic() < deadline:
            tokens = rng.randint(50, 2_000)
            body = json.dumps(
                {
                    "user": rng.choice(emails),
                    "kind": "inference",
                    "tokens": tokens,
                    "model": rng.choice(["gpt-4o", "claude-3-5-sonnet", "llama-3-70b"]),
                }
            ).encode()
            raw = (
                b"POST /api/v1/usage HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                b"Authorization: Bearer " + secret.encode() + b"\r\n"
                b"Idempotency-Key: " + uuid.uuid4().hex.encode() + b"\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            start = time.perf_counter()
            try:
                status, _ = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                conn.close()
                errors[type(exc).__name__] += 1
                continue
            if status == 200:
                accepted_tokens += tokens  # warm-up included: the checks compare totals
            if record:
                latencies.append(time.perf_counter() - start)
                statuses[status] += 1
        conn.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return latencies, statuses, errors, accepted_tokens


async def baseline(seconds: float) -> float:
    """Requests/s of a database-free JSON answer (the OpenAPI document) on the same server:
    what this Django stack serves at best, for reading the usage API's figure."""
    deadline = time.monotonic() + seconds
    count = 0
    raw = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    async def client():
        nonlocal count
        conn = Connection()
        while time.monotonic() < deadline:
            status, _ = await conn.request(raw)
            count += status == 200
        conn.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return count / seconds


def percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def verify(org, seeded_usage: int) -> dict:
    """No acceptance over a max; events, daily rollups and monthly totals agree."""
    from django.db.models import Count, Sum

    from accounts.models import Membership
    from tokens.models import DailyUsage, MonthlyUsage, UsageEvent

    maxes = dict(
        Membership.objects.filter(organization=org).values_list("user_id", "max_inference_tokens")
    )
    over = sum(
        1
        for user_id, used in MonthlyUsage.objects.filter(organization=org).values_list(
            "user_id", "used"
        )
        if used > maxes[user_id]
    )
    monthly = MonthlyUsage.objects.filter(organization=org).aggregate(t=Sum("used"))["t"] or 0
    monthly -= seeded_usage
    events = UsageEvent.objects.filter(organization=org).aggregate(t=Sum("tokens"), n=Count("id"))
    daily = DailyUsage.objects.filter(organization=org).aggregate(t=Sum("tokens"), n=Sum("events"))
    full = (
        MonthlyUsage.objects.filter(
            organization=org, user__membership__max_inference_tokens=SMALL_MAX
        )
        .filter(used__gt=SMALL_MAX - 2_000)
        .count()
    )
    return {
        "over_limit_users": over,
        "monthly_tokens": monthly,
        "event_tokens": events["t"] or 0,
        "events": events["n"],
        "daily_tokens": daily["t"] or 0,
        "daily_events": daily["n"] or 0,
        "small_max_users_full": full,
    }


def run_pgbench(db_url: str, org, month) -> tuple[float, float]:
    """pgbench's tps and mean latency for the same conditional UPDATE, as many clients."""
    from accounts.models import Membership

    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise SystemExit("pgbench is not installed (apt-get install postgresql-client)")
    ids = sorted(
        Membership.objects.filter(organization=org, max_inference_tokens=BIG_MAX).values_list(
            "user_id", flat=True
        )
    )
    from tokens.models import MonthlyUsage

    MonthlyUsage.objects.bulk_create(
        [MonthlyUsage(organization=org, user_id=i, kind="inference", month=month) for i in ids],
        ignore_conflicts=True,
    )
    # A random index into the big-max users' ids (a small lookup table, as cheap as the
    # key lookup the API does); the UPDATE itself is the API's conditional UPDATE.
    script = (
        "\\set n random(50, 2000)\n"
        f"\\set i random(0, {len(ids) - 1})\n"
        "UPDATE tokens_monthlyusage SET used = used + :n "
        "WHERE user_id = (SELECT id FROM bench_usage_ids WHERE i = :i) "
        f"AND kind = 'inference' AND month = '{month.isoformat()}' "
        f"AND used + :n <= {BIG_MAX};\n"
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_usage_ids")
        cursor.execute("CREATE TABLE bench_usage_ids (i int PRIMARY KEY, id bigint NOT NULL)")
        cursor.executemany(
            "INSERT INTO bench_usage_ids (i, id) VALUES (%s, %s)", list(enumerate(ids))
        )
        cursor.execute("ANALYZE bench_usage_ids")
    parts = urlsplit(db_url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
    env = {**os.environ}
    if parts.password:
        env["PGPASSWORD"] = parts.password
    args = [
        pgbench,
        "-n",
        "-M",
        "prepared",
        "-c",
        str(CLIENTS),
        "-j",
        str(min(CLIENTS, os.cpu_count() or 1)),
        "-T",
        str(int(SECONDS)),
        "-f",
        handle.name,
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "postgres",
        parts.path.lstrip("/"),
    ]
    run = subprocess.run(args, capture_output=True, text=True, env=env)
    if run.returncode:
        raise SystemExit(f"pgbench failed:\n{run.stdout}\n{run.stderr}")
    output = run.stdout
    os.unlink(handle.name)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_usage_ids")
    tps = latency = 0.0
    for line in output.splitlines():
        if line.startswith("tps ="):
            tps = float(line.split()[2])
        elif line.startswith("latency average"):
            latency = float(line.split("=")[1].split()[0])
    return tps, latency


def main() -> None:
    db_url = os.environ.get("DATABASE_URL", "")
    if not db_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL=postgres://…: this benchmark compares with pgbench.")
    ensure_database(db_url)

    import django

    django.setup()
    from django.core.management import call_command

    from asksage_admin.lib.months import current_month

    call_command("migrate", verbosity=0)
    org, secret, emails = seed()
    from django.db.models import Sum

    from tokens.models import MonthlyUsage

    seeded = MonthlyUsage.objects.filter(organization=org).aggregate(t=Sum("used"))["t"] or 0
    print(
        f"{len(emails):,} users (one in ten with a max of {SMALL_MAX:,}); "
        f"gunicorn {WORKERS} workers × {THREADS} thread(s); {CLIENTS} clients; {SECONDS:.0f} s; "
        f"{os.cpu_count()} CPUs shared by the app, PostgreSQL and the load generator"
    )

    env = {
        **os.environ,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "ERROR",
    }
    # The key was hashed with this process's SECRET_KEY: the server must use the same one.
    from django.conf import settings

    env["SECRET_KEY"] = settings.SECRET_KEY
    server = start_gunicorn(env)
    try:
        # Warm up workers and their connections; its usage counts in the totals checked after.
        _, _, _, warm_accepted = asyncio.run(load(secret, emails, 2, record=False))
        start = time.perf_counter()
        latencies, statuses, errors, accepted = asyncio.run(load(secret, emails, SECONDS, True))
        elapsed = time.perf_counter() - start
        accepted += warm_accepted
        floor_rate = asyncio.run(baseline(min(SECONDS, 10)))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    latencies.sort()
    total = len(latencies)
    rate = total / elapsed
    bad = {s: n for s, n in statuses.items() if s not in (200, 402)}
    print("\nPOST /api/v1/usage")
    print(f"  requests            {total:,} in {elapsed:.1f} s = {rate:,.0f} requests/s")
    print(f"  answers             {dict(sorted(statuses.items()))}  (402 = over the max)")
    print(
        f"  latency ms          p50 {percentile(latencies, 50) * 1000:.1f}   "
        f"p95 {percentile(latencies, 95) * 1000:.1f}   p99 {percentile(latencies, 99) * 1000:.1f}"
        f"   mean {sum(latencies) / total * 1000:.1f}"
    )
    print(
        f"  errors              {sum(bad.values()) + sum(errors.values())} "
        f"{bad or ''}{dict(errors) or ''}"
    )

    checks = verify(org, seeded)
    print("\nconsistency after the run")
    print(f"  users over their max          {checks['over_limit_users']}")
    print(
        f"  small-max users filled up     {checks['small_max_users_full']} "
        f"of {len(emails) // 10 + 1}"
    )
    agree = (
        checks["monthly_tokens"] == checks["event_tokens"] == checks["daily_tokens"] == accepted
        and checks["events"] == checks["daily_events"]
    )
    print(
        f"  accepted tokens               {accepted:,} (client) = {checks['monthly_tokens']:,} "
        f"(monthly, less the seeded usage) = {checks['event_tokens']:,} (events) = "
        f"{checks['daily_tokens']:,} (daily): "
        f"{'agree' if agree else 'DISAGREE'}"
    )

    tps, pg_latency = run_pgbench(db_url, org, current_month())
    print("\npgbench, same conditional UPDATE, same table, same clients")
    print(f"  {tps:,.0f} transactions/s, mean latency {pg_latency:.2f} ms")
    print(f"\nusage API / pgbench: {100 * rate / tps:.1f} %")
    print(
        f"usage API / the same server answering GET /api/v1/openapi.json (no database, "
        f"{floor_rate:,.0f}/s): {100 * rate / floor_rate:.0f} %"
    )
    if checks["over_limit_users"] or not agree:
        raise SystemExit("consistency check failed")


if __name__ == "__main__":
    main()
