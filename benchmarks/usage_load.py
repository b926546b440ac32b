"""The load side of the usage API's benchmark: the server, wrk, pgbench and CPU accounting.

Split from usage_api.py (which seeds, checks and reports); the knobs are read here, from the
environment, and documented there.
"""

import json
import math
import os
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
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "32"))
USERS = int(os.environ.get("BENCH_USERS", "1000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
PORT = int(os.environ.get("BENCH_PORT", "8765"))
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "uvicorn_worker.UvicornWorker")
FAST_PATH = os.environ.get("BENCH_FAST_PATH", "1").strip().lower() not in ("0", "false", "no", "")
BIG_MAX = 5_000_000
WARM_UP = 2.0
DRAIN = 2  # seconds of wrk's -d after the window, for the answers in flight to arrive
BASELINE = 5
PGBENCH_SECONDS = max(1, round(SECONDS / 2))  # once before the usage API's run, once after
CPUS = len(os.sched_getaffinity(0))
LUA_TEMPLATE = Path(__file__).with_name("usage_load.lua.tmpl")
FULL_VACUUM_ROWS = 1_000_000  # above this, VACUUM FULL would rewrite a seeded table each run


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


def vacuum(*tables: str, full: bool = False) -> None:
    """Start from tables without the dead rows of earlier runs or phases, analyzed: the
    server may run without autovacuum (this machine's does), and then nobody else would.
    FULL only on tables of under FULL_VACUUM_ROWS rows: in a database seeded with millions
    of events, rewriting them before every run would take minutes."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
            rows = (cursor.fetchone() or [0])[0]
            small = full and rows < FULL_VACUUM_ROWS
            cursor.execute(f"VACUUM {'(FULL, ANALYZE)' if small else '(ANALYZE)'} {table}")


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
    _ids_table(ids)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
    vacuum("tokens_monthlyusage")  # pgbench starts as clean as the usage API did
    try:
        return _pgbench(pgbench, db_url, handle.name, seconds)
    finally:
        os.unlink(handle.name)
        _ids_table(None)


def _ids_table(ids: list[int] | None) -> None:
    """The lookup table pgbench's script reads (created with `ids`, dropped with None)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_usage_ids")
        if ids is None:
            return
        cursor.execute("CREATE TABLE bench_usage_ids (i int PRIMARY KEY, id bigint NOT NULL)")
        cursor.executemany(
            "INSERT INTO bench_usage_ids (i, id) VALUES (%s, %s)", list(enumerate(ids))
        )
        cursor.execute("ANALYZE bench_usage_ids")


def _pgbench(pgbench: str, db_url: str, script: str, seconds: int) -> tuple[float, float]:
    parts = urlsplit(db_url)
    env = {**os.environ}
    if parts.password:
        env["PGPASSWORD"] = parts.password
    args = [
        pgbench, "-n", "-M", "prepared", "-c", str(CLIENTS),
        "-j", str(min(CLIENTS, os.cpu_count() or 1)), "-T", str(seconds), "-f", script,
        "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
        "-U", parts.username or "postgres", parts.path.lstrip("/"),
    ]  # fmt: skip
    run = subprocess.run(args, capture_output=True, text=True, env=env)
    if run.returncode:
        raise SystemExit(f"pgbench failed:\n{run.stdout}\n{run.stderr}")
    tps = latency = 0.0
    for line in run.stdout.splitlines():
        if line.startswith("tps ="):
            tps = float(line.split()[2])
        elif line.startswith("latency average"):
            latency = float(line.split("=")[1].split()[0])
    return tps, latency
