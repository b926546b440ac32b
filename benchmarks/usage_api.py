"""Usage API under load, compared with PostgreSQL's own rate for the same conditional UPDATE.

Run with (PostgreSQL, the database is created if missing; and wrk: apt-get install -y wrk):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/asksage_bench_usage \\
        .venv/bin/python benchmarks/usage_api.py

It migrates, seeds an organization of 1,000 users (one in ten with a small max, so refusals
happen) and serves the app as deployed: gunicorn with uvicorn's worker on
`asksage_admin.asgi` (DEBUG off, on 127.0.0.1, its output in a log file). wrk drives
`POST /api/v1/usage` from BENCH_CLIENTS keep-alive connections (random user, tokens and
model, a fresh Idempotency-Key each; the Lua script is usage_load.lua.tmpl filled in): 2 s
of warm-up, then BENCH_SECONDS measured. wrk, not a Python client, because on 2 CPUs the load
generator must leave them to the app and PostgreSQL; the CPU seconds each used are reported.

It reports requests/s, p50/p95/p99, answers and errors; checks that no user's usage exceeds
their max and that the tokens and answers the client saw accepted agree with the events, daily
rollups and monthly totals (exit status 1 if not); runs `pgbench` with as many clients,
doing the same single-row `UPDATE … SET used = used + n WHERE … AND used + n <= max` on the
same table, for half as long before the usage API's run and half after it (on a shared host
the machine's speed drifts; the mean of the two brackets the run), and gives our throughput
as a share of that mean; measures for scale the same server answering a database-free
document through Django (5 s); and gives a verdict on the goals (≥ 30 % of pgbench, p99 <
50 ms, no acceptance over a max), where a MISS does not fail the run.

Knobs (environment): BENCH_SECONDS=30, BENCH_CLIENTS=32, BENCH_USERS=1000, BENCH_WORKERS=2
(gunicorn workers), BENCH_WORKER_CLASS=uvicorn_worker.UvicornWorker (gunicorn's own: asgi),
BENCH_PORT=8765, BENCH_FAST_PATH=1 (USAGE_FAST_PATH for the server; 0 measures the plain
Django view under the same server).
"""

import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asksage_admin.settings")
os.environ.setdefault("DEBUG", "1")  # a developer's tool: the development settings

SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "32"))
USERS = int(os.environ.get("BENCH_USERS", "1000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
PORT = int(os.environ.get("BENCH_PORT", "8765"))
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "uvicorn_worker.UvicornWorker")
FAST_PATH = os.environ.get("BENCH_FAST_PATH", "1").strip().lower() not in ("0", "false", "no", "")
SLUG = "bench-usage-api"
BIG_MAX = 5_000_000
SMALL_MAX = 3_000  # one user in ten: they reach it within the run, and are refused after
WARM_UP = 2.0
DRAIN = 2  # seconds of wrk's -d after the window, for the answers in flight to arrive
BASELINE = 5
PGBENCH_SECONDS = max(1, round(SECONDS / 2))  # once before the usage API's run, once after
CPUS = len(os.sched_getaffinity(0))
LUA_TEMPLATE = Path(__file__).with_name("usage_load.lua.tmpl")
GOAL_RATIO, GOAL_P99_MS = 30.0, 50.0


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
    from tokens.models import ApiKey, DailyUsage, MonthlyUsage, UsageEvent
    from tokens.services import api_keys as api_key_services

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
    vacuum("tokens_usageevent", "tokens_dailyusage", "tokens_monthlyusage", full=True)
    admin = members.get(role="admin").user
    secret = api_key_services.api_key_create(actor=admin, org=org, name="bench")[1]
    emails = list(
        User.objects.filter(pk__in=user_ids)
        .exclude(email="bench-usage-0@example.com")
        .values_list("email", flat=True)
    )
    return org, secret, emails


def vacuum(*tables: str, full: bool = False) -> None:
    """Start from tables without the dead rows of earlier runs or phases, analyzed: the
    server may run without autovacuum (this machine's does), and then nobody else would."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM {'(FULL, ANALYZE)' if full else '(ANALYZE)'} {table}")


def start_gunicorn(env: dict, log) -> subprocess.Popen:
    """The app as deployed; its output goes to `log`, so errors cannot flood the terminal."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", PORT)) == 0:  # we would measure that server instead
            raise SystemExit(f"127.0.0.1:{PORT} is already in use: stop it or set BENCH_PORT.")
    args = [
        str(Path(sys.executable).parent / "gunicorn"),
        "asksage_admin.asgi:application",
        "-k",
        WORKER_CLASS,
        "--workers",
        str(WORKERS),
        "--worker-connections",
        "1000",
        # A listening socket per worker: the kernel spreads connections over the workers
        # (sharing one, a few long keep-alive connections can all land on one worker).
        "--reuse-port",
        "--bind",
        f"127.0.0.1:{PORT}",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v1/openapi.json", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    stop_gunicorn(process)
    raise SystemExit("gunicorn did not start")


def stop_gunicorn(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(path: str, lines: int = 20) -> str:
    with open(path, errors="replace") as handle:
        return "".join(handle.readlines()[-lines:])


def lua_string(text: str) -> str:
    """A Lua string literal. JSON's escapes are Lua's too, except \\uXXXX: ASCII only."""
    if not text.isascii():
        raise ValueError(f"not ASCII: {text!r}")
    return json.dumps(text)


def write_lua_script(secret: str, emails: list[str]) -> str:
    """The wrk script, with the API key and the users (as JSON strings) embedded."""
    users = ",\n".join(f"   {lua_string(json.dumps(email))}" for email in emails)
    script = (
        LUA_TEMPLATE.read_text()
        .replace("@@API_KEY@@", lua_string(secret))
        .replace("@@USERS@@", "{\n" + users + ",\n}")
    )
    with tempfile.NamedTemporaryFile("w", prefix="usage_load-", suffix=".lua", delete=False) as f:
        f.write(script)
    return f.name


@dataclass
class Load:
    """What one wrk run saw, from the lines its script's done() prints."""

    requests: int
    seconds: float
    latency_ms: dict[str, float]  # p50, p95, p99, mean
    socket_errors: dict[str, int]  # connect, read, write, timeout
    statuses: Counter
    accepted_tokens: int
    unanswered: int  # sent, never answered: lost with a broken connection, or still in flight

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        bad = sum(n for status, n in self.statuses.items() if status not in (200, 402))
        return bad + sum(self.socket_errors.values())


def run_wrk(wrk: str, script: str, window: float) -> Load:
    """POST /api/v1/usage for `window` seconds; wrk runs DRAIN s more for the last answers."""
    args = [
        wrk,
        f"-t{min(2, CLIENTS)}",
        f"-c{CLIENTS}",
        f"-d{math.ceil(window) + DRAIN}s",
        "--timeout",
        "10s",
        "-s",
        script,
        f"http://127.0.0.1:{PORT}/",
        "--",
        str(window),
        uuid.uuid4().hex[:12],  # the run's id, in every Idempotency-Key
    ]
    run = subprocess.run(args, capture_output=True, text=True)
    lines = [line[3:].split() for line in run.stdout.splitlines() if line.startswith("@@ ")]
    if run.returncode or not lines:
        raise SystemExit(f"wrk failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    latency, socket_errors, statuses, values = {}, {}, Counter(), {}
    for key, *rest in lines:
        if key == "latency_us":
            latency[rest[0]] = int(rest[1]) / 1000
        elif key == "socket_errors":
            socket_errors[rest[0]] = int(rest[1])
        elif key == "status":
            statuses[int(rest[0])] += int(rest[1])
        else:
            values[key] = int(rest[0])
    return Load(
        requests=values["requests"],
        seconds=values["duration_us"] / 1e6,
        latency_ms=latency,
        socket_errors=socket_errors,
        statuses=statuses,
        accepted_tokens=values["accepted_tokens"],
        unanswered=values["unanswered"],
    )


def baseline(wrk: str) -> tuple[float, int]:
    """Requests/s of a database-free JSON answer (the OpenAPI document, through Django) on the
    same server, and how many were not 2xx: what this stack serves at best without the fast
    path, for reading the usage API's figure."""
    run = subprocess.run(
        [
            wrk,
            f"-t{min(2, CLIENTS)}",
            f"-c{CLIENTS}",
            f"-d{BASELINE}s",
            "--timeout",
            "10s",
            f"http://127.0.0.1:{PORT}/api/v1/openapi.json",
        ],
        capture_output=True,
        text=True,
    )
    rate, failed = 0.0, 0
    for line in run.stdout.splitlines():
        label, _, value = line.strip().partition(":")
        if label == "Requests/sec":
            rate = float(value)
        elif label == "Non-2xx or 3xx responses":
            failed = int(value)
    if run.returncode or not rate:
        raise SystemExit(f"wrk failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    return rate, failed


def _cpu_ticks(stat: bytes) -> tuple[int, int]:
    """(parent pid, utime + stime + cutime + cstime) from /proc/<pid>/stat. The children's
    part keeps a process that exits between two samples counted, in its reaping parent."""
    fields = stat[stat.rindex(b")") + 2 :].split()  # the name in parentheses may hold spaces
    return int(fields[1]), sum(int(field) for field in fields[11:15])


@dataclass
class CpuSample:
    """CPU seconds used so far, read from /proc (no dependency): the server's process tree;
    PostgreSQL's processes, every database's (they share the CPUs), per pid; the wrk runs
    already finished (this process's reaped children: the server is reaped only at the end);
    and the whole machine."""

    app: float
    postgres: dict[int, float]
    wrk: float
    machine: float

    @classmethod
    def take(cls, server_pid: int) -> "CpuSample":
        hz = os.sysconf("SC_CLK_TCK")
        children: dict[int, list[int]] = {}
        used: dict[int, int] = {}
        postgres: dict[int, float] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                with open(f"/proc/{pid}/stat", "rb") as handle:
                    stat = handle.read()
                ppid, used[pid] = _cpu_ticks(stat)
                name = stat[stat.index(b"(") + 1 : stat.rindex(b")")]
                if not name.startswith(b"postgres"):
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        name = handle.read(64)
            except (OSError, ValueError):  # gone meanwhile
                continue
            children.setdefault(ppid, []).append(pid)
            if name.startswith(b"postgres"):
                postgres[pid] = used[pid] / hz
        app, tree = 0, [server_pid]
        for pid in tree:  # grows as it goes: the master, its workers, anything they started
            app += used.get(pid, 0)
            tree.extend(children.get(pid, []))
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat") as handle:  # "cpu user nice system idle iowait irq softirq steal"
            total = [int(n) for n in handle.readline().split()[1:9]]
        return cls(
            app=app / hz,
            postgres=postgres,
            wrk=(int(fields[13]) + int(fields[14])) / hz,  # cutime + cstime
            machine=(sum(total) - total[3] - total[4]) / hz,
        )


def cpu_used(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """CPU seconds between two samples: app, postgres, wrk; and, to tell whether the machine
    was ours alone, other_databases (PostgreSQL backends of other databases, by
    pg_stat_activity after the run) and other (everything else)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname <> current_database()")
        elsewhere = {pid for (pid,) in cursor.fetchall()}

    def postgres(pids) -> float:
        return sum(after.postgres[pid] - before.postgres.get(pid, 0) for pid in pids)

    used = {
        "app": after.app - before.app,
        # The processes gone meanwhile are in their parent's share (the postmaster's).
        "postgres": sum(after.postgres.values()) - sum(before.postgres.values()),
        "wrk": after.wrk - before.wrk,
        "other_databases": postgres(elsewhere & after.postgres.keys()),
    }
    mine = used["app"] + used["postgres"] + used["wrk"]
    used["other"] = max(0.0, after.machine - before.machine - mine)
    return used


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


def run_pgbench(db_url: str, org, month, seconds: int) -> tuple[float, float]:
    """pgbench's tps and mean latency for the same conditional UPDATE, as many clients."""
    from accounts.models import Membership
    from tokens.models import MonthlyUsage

    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise SystemExit("pgbench is not installed (apt-get install postgresql-client)")
    ids = sorted(
        Membership.objects.filter(organization=org, max_inference_tokens=BIG_MAX).values_list(
            "user_id", flat=True
        )
    )
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

    vacuum("tokens_monthlyusage")  # pgbench starts as clean as the usage API did
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
        str(seconds),
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
    os.unlink(handle.name)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_usage_ids")
    if run.returncode:
        raise SystemExit(f"pgbench failed:\n{run.stdout}\n{run.stderr}")
    tps = latency = 0.0
    for line in run.stdout.splitlines():
        if line.startswith("tps ="):
            tps = float(line.split()[2])
        elif line.startswith("latency average"):
            latency = float(line.split("=")[1].split()[0])
    return tps, latency


def main() -> None:
    db_url = os.environ.get("DATABASE_URL", "")
    if not db_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL=postgres://…: this benchmark compares with pgbench.")
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    ensure_database(db_url)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from asksage_admin.lib.months import current_month

    org = seed()[0]
    # pgbench brackets the API's run: half before it (the seed below undoes its updates),
    # half after, and the share is of their mean, so a steady drift of the host cancels.
    pgbench_before = run_pgbench(db_url, org, current_month(), PGBENCH_SECONDS)
    org, secret, emails = seed()
    from django.db.models import Sum

    from tokens.models import MonthlyUsage

    seeded = MonthlyUsage.objects.filter(organization=org).aggregate(t=Sum("used"))["t"] or 0
    path = (
        "usage fast path on (USAGE_FAST_PATH=1)"
        if FAST_PATH
        else "usage fast path off (USAGE_FAST_PATH=0): the plain Django view"
    )
    print(
        f"{len(emails):,} users (one in ten with a max of {SMALL_MAX:,}); "
        f"gunicorn -k {WORKER_CLASS}, {WORKERS} workers; {path}; wrk, {CLIENTS} connections; "
        f"{SECONDS:g} s; "
        f"{CPUS} CPUs shared by the app, PostgreSQL and wrk"
    )

    env = {
        **os.environ,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "ERROR",
        "USAGE_FAST_PATH": "1" if FAST_PATH else "0",
        # The 80 % alerts are sent (their work is measured); not printed into the log.
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    }
    # The key was hashed with this process's SECRET_KEY: the server must use the same one.
    from django.conf import settings

    env["SECRET_KEY"] = settings.SECRET_KEY
    script = write_lua_script(secret, emails)
    failed = True
    with tempfile.NamedTemporaryFile(
        "w", prefix="usage_api-gunicorn-", suffix=".log", delete=False
    ) as log:
        try:
            server = start_gunicorn(env, log)
            try:
                # Warm up workers and their connections; its usage counts in the totals checked.
                warm = run_wrk(wrk, script, WARM_UP)
                before, start = CpuSample.take(server.pid), time.monotonic()
                load = run_wrk(wrk, script, SECONDS)
                after, wall = CpuSample.take(server.pid), time.monotonic() - start
                cpu = cpu_used(before, after), CPUS * wall
                floor = baseline(wrk)
            finally:
                stop_gunicorn(server)
            failed = report(db_url, org, seeded, emails, warm, load, cpu, floor, pgbench_before)
        finally:
            os.unlink(script)
            if failed:
                print(f"\nlast lines of the server's log, {log.name}:\n{log_tail(log.name)}")
            else:
                os.unlink(log.name)


def report(db_url, org, seeded, emails, warm: Load, load: Load, cpu, floor, pgbench_before) -> bool:
    """Print the run's figures, the consistency checks, pgbench and the verdict. True when
    anything went wrong (errors), so the server's log is shown; SystemExit when the data is
    inconsistent."""
    from asksage_admin.lib.months import current_month

    latency = load.latency_ms
    bad = {status: n for status, n in load.statuses.items() if status not in (200, 402)}
    socket_errors = {kind: n for kind, n in load.socket_errors.items() if n}
    print(f"\nPOST /api/v1/usage, {'fast path' if FAST_PATH else 'plain Django view'}")
    print(
        f"  requests            {load.requests:,} in {load.seconds:.1f} s = "
        f"{load.rate:,.0f} requests/s"
    )
    print(f"  answers             {dict(sorted(load.statuses.items()))}  (402 = over the max)")
    print(
        f"  latency ms          p50 {latency['p50']:.1f}   p95 {latency['p95']:.1f}   "
        f"p99 {latency['p99']:.1f}   mean {latency['mean']:.1f}"
    )
    details = " ".join(str(what) for what in (bad, socket_errors) if what)
    print(f"  errors              {load.errors} {details}".rstrip())
    used, available = cpu
    print(
        f"  CPU seconds during the run: app {used['app']:.1f}, PostgreSQL {used['postgres']:.1f}"
        f", wrk {used['wrk']:.1f} (of {available:.1f} available)"
    )
    print(
        f"  not this benchmark's: {used['other_databases']:.1f} of PostgreSQL's (backends of "
        f"other databases), and {used['other']:.1f} by other processes"
    )

    checks = verify(org, seeded)
    accepted = warm.accepted_tokens + load.accepted_tokens
    answers = warm.statuses[200] + load.statuses[200]
    unanswered = warm.unanswered + load.unanswered
    print("\nconsistency after the run (warm-up included)")
    print(f"  users over their max          {checks['over_limit_users']}")
    print(
        f"  small-max users filled up     {checks['small_max_users_full']} "
        f"of {len(emails) // 10 + 1}"
    )
    tokens_agree = (
        accepted == checks["monthly_tokens"] == checks["event_tokens"] == checks["daily_tokens"]
    )
    print(
        f"  accepted tokens               {accepted:,} (client) = "
        f"{checks['monthly_tokens']:,} (monthly, less the seeded usage) = "
        f"{checks['event_tokens']:,} (events) = {checks['daily_tokens']:,} (daily): "
        f"{'agree' if tokens_agree else 'DISAGREE'}"
    )
    events_agree = answers == checks["events"] == checks["daily_events"]
    print(
        f"  events                        {answers:,} (client, 200 answers) = "
        f"{checks['events']:,} (events) = {checks['daily_events']:,} (daily): "
        f"{'agree' if events_agree else 'DISAGREE'}"
    )
    if unanswered:
        print(f"  requests never answered       {unanswered} (their outcome is unknown to us)")

    pgbench_after = run_pgbench(db_url, org, current_month(), PGBENCH_SECONDS)
    tps = (pgbench_before[0] + pgbench_after[0]) / 2
    ratio = 100 * load.rate / tps
    print(
        f"\npgbench, same conditional UPDATE, same table, same clients: {PGBENCH_SECONDS} s "
        "before the usage API's run and as long after it"
    )
    for when, (when_tps, when_latency) in (("before", pgbench_before), ("after", pgbench_after)):
        print(f"  {when:6}  {when_tps:,.0f} transactions/s, mean latency {when_latency:.2f} ms")
    print(f"  mean    {tps:,.0f} transactions/s (a steady drift of the host's speed cancels)")
    print(f"\nusage API / pgbench: {ratio:.1f} %")
    floor_rate, floor_failed = floor
    print(
        f"usage API / the same server answering GET /api/v1/openapi.json through Django, no "
        f"database ({floor_rate:,.0f}/s{f', {floor_failed} not 2xx' if floor_failed else ''}):"
        f" {100 * load.rate / floor_rate:.0f} %"
    )

    def goal(met: bool, text: str) -> None:
        print(f"  {'PASS' if met else 'MISS'}  {text}")

    print("\ngoals")
    goal(ratio >= GOAL_RATIO, f"throughput ≥ {GOAL_RATIO:g} % of pgbench's: {ratio:.1f} %")
    goal(latency["p99"] < GOAL_P99_MS, f"p99 < {GOAL_P99_MS:g} ms: {latency['p99']:.1f} ms")
    over = checks["over_limit_users"]
    goal(not over, f"no acceptance over a max: {over} users over theirs")
    if over or not tokens_agree or not events_agree:
        raise SystemExit("consistency check failed")
    return bool(load.errors or warm.errors or unanswered or floor_failed)


if __name__ == "__main__":
    main()
