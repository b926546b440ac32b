"""The app behind PgBouncer in transaction mode (DATABASE_POOLER=transaction), for real.

PgBouncer (Debian's package; `.ci/run` installs it) runs on a free loopback port in front of
a PostgreSQL cluster of the test's own (initdb, as tests/test_database_outage.py does: the
suite needs no server running), with fewer server connections than the app opens: every
transaction may land on a server connection another client used last. The app runs as
deployed (gunicorn, uvicorn's worker, `asksage_admin.asgi`) on a throwaway database reached
only through PgBouncer, whatever database the rest of the suite uses.

What transaction pooling breaks, and these tests catch: a startup `options` parameter
(PgBouncer 1.18 refuses the connection), psycopg's server-side prepared statements ("prepared
statement … does not exist" on another server connection), session-level SETs (they stay on
a server connection and leak into other clients' transactions) and Django's named cursors.
"""

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest
from psycopg._pipeline_base import BasePipeline

from tests.test_database_outage import (
    ROOT,
    SET_UP,
    App,
    Cluster,
    Server,
    django_env,
    free_port,
)
from tokens.usage_api.pool import Database

pytestmark = pytest.mark.pooler

SERVER_CONNECTIONS = 3  # PgBouncer's pool per database: fewer than the app's connections
REPORTS = 48  # concurrent usage reports per test
QUERY_WAIT_SECONDS = 30  # a client's longest wait for a server connection (default 120)
# A few panel pages, and exports (read with QuerySet.iterator: a named cursor without a pooler).
PAGES = (
    "/panel/users/",
    "/panel/distribution/",
    "/panel/requests/",
    "/panel/api-keys/",
    "/panel/statistics/",
    "/panel/activity/",
    "/panel/exports/users.csv",
    "/panel/exports/usage-events.csv",
    "/readyz",
)


class PgBouncer:
    """PgBouncer in transaction mode on a free loopback port, trust auth, every database name
    routed to the cluster's port; as root, run as the `postgres` user (it refuses root)."""

    def __init__(self, backend_port: int):
        self.backend_port = backend_port
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            pytest.fail("PgBouncer is needed: apt-get install pgbouncer (.ci/run does)")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="asksage-pgbouncer-"))
        self.log = self.dir / "pgbouncer.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.dir, postgres.pw_uid, postgres.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.process: subprocess.Popen | None = None

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def direct(self, dbname: str) -> str:
        """The database itself, around PgBouncer: for the test's own checks."""
        return f"postgres://postgres@127.0.0.1:{self.backend_port}/{dbname}"

    def start(self) -> None:
        config = self.dir / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.backend_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            "auth_type = trust\nadmin_users = postgres\n"
            f"auth_file = {self.dir / 'users.txt'}\n"
            "pool_mode = transaction\nserver_round_robin = 1\n"
            f"default_pool_size = {SERVER_CONNECTIONS}\nmin_pool_size = 0\n"
            "reserve_pool_size = 0\nmax_client_conn = 200\n"
            f"query_wait_timeout = {QUERY_WAIT_SECONDS}\n"
            f"logfile = {self.log}\npidfile = {self.dir / 'pgbouncer.pid'}\n"
        )
        (self.dir / "users.txt").write_text('"postgres" ""\n')
        if self.as_user:
            for path in (config, self.dir / "users.txt"):
                shutil.chown(path, "postgres", "postgres")
        self.process = subprocess.Popen(
            [*self.as_user, self.binary, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.url("postgres"), connect_timeout=1).close()
                return
            time.sleep(0.1)
        raise RuntimeError(f"PgBouncer did not start:\n{self.log_tail()}")

    def reconnect(self) -> None:
        """New server connections from now on: they take the database's current settings."""
        subprocess.run(
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-c", "RECONNECT", "pgbouncer"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "".join(self.log.read_text(errors="replace").splitlines(True)[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Pooled(NamedTuple):
    bouncer: PgBouncer
    dbname: str
    env: dict[str, str]  # the servers' environment (DATABASE_URL: PgBouncer's)
    fast: App  # the fast path serves the usage API
    django_view: App  # USAGE_FAST_PATH=0: Django's view does


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    """A throwaway database, PgBouncer in front of it, migrated and seeded through it, and two
    app servers behind it: the fast path's, and Django's usage view (USAGE_FAST_PATH=0)."""
    dbname = f"asksage_pooler_{uuid.uuid4().hex[:12]}"
    cluster = Cluster()
    bouncer = PgBouncer(cluster.port)
    servers: list[Server] = []
    try:
        cluster.create()
        with psycopg.connect(bouncer.direct("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{dbname}"')
        bouncer.start()
        env = {**django_env(bouncer.url(dbname)), "DATABASE_POOLER": "transaction"}
        seeded = subprocess.run(
            [sys.executable, "-c", SET_UP], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert seeded.returncode == 0, f"{seeded.stderr[-3000:]}\n{bouncer.log_tail()}"
        secrets = json.loads(seeded.stdout.strip().splitlines()[-1])
        logs = tmp_path_factory.mktemp("pooler")
        servers.append(Server(env, logs / "fast.log"))
        servers.append(Server({**env, "USAGE_FAST_PATH": "0"}, logs / "django.log"))
        apps = [App(server, secrets["key"], secrets["session"]) for server in servers]
        yield Pooled(bouncer, dbname, env, *apps)
    finally:
        for server in servers:
            server.stop()
        bouncer.stop()
        cluster.destroy()


def bobs_month(bouncer: PgBouncer, dbname: str) -> tuple[int, int]:
    """Bob's inference tokens used this month and his usage events, read directly."""
    with psycopg.connect(bouncer.direct(dbname)) as conn:
        used = conn.execute(
            "SELECT COALESCE(SUM(mu.used), 0) FROM tokens_monthlyusage mu "
            "JOIN accounts_user u ON u.id = mu.user_id "
            "WHERE u.email = 'bob@example.com' AND mu.kind = 'inference'"
        ).fetchone()[0]
        events = conn.execute(
            "SELECT count(*) FROM tokens_usageevent e JOIN accounts_user u ON u.id = e.user_id "
            "WHERE u.email = 'bob@example.com'"
        ).fetchone()[0]
    return used, events


def report_concurrently(app: App, n: int) -> list[tuple[int, bytes]]:
    with ThreadPoolExecutor(max_workers=16) as workers:
        answers = list(workers.map(lambda _: app.usage(), range(n)))
    return [(status, body) for status, _, body, _ in answers]


def test_pages_and_the_fast_path_answer_correctly_through_pgbouncer(pooled):
    bouncer, dbname, _, fast, _ = pooled
    for path in PAGES:
        status, _, body, _ = fast.server.request(
            "GET", path, headers={"Cookie": f"sessionid={fast.session}"}
        )
        assert status == 200, f"{path}: {status} {body[:300]!r}\n{fast.server.log_tail()}"
    before = bobs_month(bouncer, dbname)
    answers = report_concurrently(fast, REPORTS)
    bad = [answer for answer in answers if answer[0] != 200]
    assert not bad, f"{bad[:3]}\n{fast.server.log_tail()}\n{bouncer.log_tail()}"
    balances = sorted(json.loads(body)["used"] for _, body in answers)
    assert balances == [before[0] + 10 * i for i in range(1, REPORTS + 1)]
    assert bobs_month(bouncer, dbname) == (before[0] + 10 * REPORTS, before[1] + REPORTS)


def test_the_django_usage_view_records_correctly_through_pgbouncer(pooled):
    bouncer, dbname, _, _, django_view = pooled
    before = bobs_month(bouncer, dbname)
    answers = report_concurrently(django_view, REPORTS // 2)
    bad = [answer for answer in answers if answer[0] != 200]
    assert not bad, f"{bad[:3]}\n{django_view.server.log_tail()}\n{bouncer.log_tail()}"
    assert bobs_month(bouncer, dbname) == (
        before[0] + 10 * (REPORTS // 2),
        before[1] + REPORTS // 2,
    )


def pgbouncer_shows(bouncer: PgBouncer, command: str) -> list[dict]:
    """A SHOW command of PgBouncer's admin console (simple protocol: a client-side cursor)."""
    with psycopg.connect(
        bouncer.url("pgbouncer"), autocommit=True, cursor_factory=psycopg.ClientCursor
    ) as console:
        cursor = console.execute(command)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def linked_servers(bouncer: PgBouncer, dbname: str) -> list[dict]:
    """The database's server connections PgBouncer has handed to a client right now."""
    return [
        server
        for server in pgbouncer_shows(bouncer, "SHOW SERVERS")
        if server["database"] == dbname and server["link"]
    ]


def wait_until_every_server_connection_is_back_in_the_pool(bouncer: PgBouncer, dbname: str):
    """PgBouncer's own view, which is what a waiting client gets: within 15 s of the last
    answer no server connection is linked to a client for a whole second (the app's
    after-work, its policy hook, takes one for a moment now and then). One held longer is a
    client PgBouncer believes is still in a transaction: fail with it, its client, and what
    the server says it is doing (a server idle after COMMIT there is PgBouncer lost in the
    client's Syncs: see `tokens.usage_api.pool._in_one_transaction`)."""
    deadline = time.monotonic() + 15
    quiet_since = None
    while True:
        linked = linked_servers(bouncer, dbname)
        now = time.monotonic()
        if linked:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 1.0:
            return
        if now >= deadline:
            clients = {c["ptr"]: c for c in pgbouncer_shows(bouncer, "SHOW CLIENTS")}
            with psycopg.connect(bouncer.direct(dbname), autocommit=True) as direct:
                backends = direct.execute(
                    "SELECT pid, state, state_change, left(query, 200) FROM pg_stat_activity "
                    "WHERE pid = ANY(%s)",
                    [[server["remote_pid"] for server in linked]],
                ).fetchall()
            pytest.fail(
                f"server connections still linked after 15 s: {linked}\n"
                f"their clients: {[clients.get(server['link']) for server in linked]}\n"
                f"the server's side: {backends}\n{bouncer.log_tail()}"
            )
        time.sleep(0.05)


def settings_of_every_server_connection(bouncer: PgBouncer, dbname: str) -> dict[int, tuple]:
    """Each server connection's settings as a client gets them, visited one transaction at a
    time: with `server_round_robin` PgBouncer hands out its idle server connections in turn,
    so a few dozen one-statement transactions meet every one of them, whatever the app takes
    meanwhile (holding them all at once raced with it). Keyed by backend pid."""
    with psycopg.connect(bouncer.direct(dbname), autocommit=True) as direct:
        servers = {
            pid
            for (pid,) in direct.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                [dbname],
            )
        }
    seen: dict[int, tuple] = {}
    with psycopg.connect(bouncer.url(dbname), autocommit=True, prepare_threshold=None) as conn:
        for _ in range(20 * SERVER_CONNECTIONS):
            pid, *settings = conn.execute(
                "SELECT pg_backend_pid(), current_setting('enable_seqscan'), "
                "current_setting('enable_hashjoin'), current_setting('plan_cache_mode')"
            ).fetchone()
            seen[pid] = tuple(settings)
            if servers <= seen.keys():
                break
    assert servers <= seen.keys(), f"never handed out: {servers - seen.keys()}"
    return seen


def test_no_setting_is_left_on_pgbouncers_server_connections(pooled):
    """The fast path's plan settings hold for its own transactions only: every server
    connection PgBouncer hands out afterwards has the server's defaults; and every one of
    them goes back to the pool once the reports are answered."""
    bouncer, dbname, _, fast, _ = pooled
    assert all(status == 200 for status, _ in report_concurrently(fast, REPORTS))
    wait_until_every_server_connection_is_back_in_the_pool(bouncer, dbname)
    seen = settings_of_every_server_connection(bouncer, dbname)
    assert len(seen) >= SERVER_CONNECTIONS
    assert set(seen.values()) == {("on", "on", "auto")}


def test_the_fast_paths_settings_hold_inside_its_transaction_through_pgbouncer(pooled, monkeypatch):
    """The plan settings a per-connection SET gives without a pooler, each statement gets
    from its own transaction behind one, ended by one Sync (more lost PgBouncer 1.18 its
    count now and then); a failing statement leaves nothing open; no prepared statements."""
    bouncer, dbname, *_ = pooled
    database = Database(bouncer.url(dbname), size=1, timeout=5, pooler=True)
    syncs = []
    enqueue_sync = BasePipeline._enqueue_sync
    monkeypatch.setattr(
        BasePipeline, "_enqueue_sync", lambda self: syncs.append(1) or enqueue_sync(self)
    )

    async def run() -> tuple[list[tuple], str, list[tuple]]:
        try:
            seen = await database.execute(
                "SELECT current_setting('jit'), current_setting('enable_seqscan'), "
                "current_setting('enable_hashjoin'), current_setting('enable_mergejoin')",
                {},
            )
            try:
                await database.execute("SELECT 1 / %(zero)s", {"zero": 0})
                failure = ""
            except psycopg.errors.DivisionByZero as error:
                failure = str(error)
            async with database.pool.connection() as conn:  # the pool's one connection
                after = [(conn.info.transaction_status.name,)]
                cursor = await conn.execute("SELECT current_setting('enable_seqscan')")
                after += await cursor.fetchall()
            return seen, failure, after
        finally:
            await database.close()

    # In a thread: a browser test earlier in the session leaves an event loop running here.
    with ThreadPoolExecutor(max_workers=1) as thread:
        seen, failure, after = thread.submit(asyncio.run, run()).result(timeout=60)
    assert seen == [("off", "off", "off", "off")]
    assert "division by zero" in failure
    assert after == [("IDLE",), ("on",)]
    assert len(syncs) == 2  # one per statement
    assert database.pool.kwargs["prepare_threshold"] is None


def test_migrate_warns_until_the_database_turns_jit_off(pooled):
    """Behind a pooler `-c jit=off` is not sent: `check --database default` (and migrate)
    names the server-side setting to make until the database has it."""
    bouncer, dbname, env, *_ = pooled

    def check() -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", "check", "--database", "default"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout + result.stderr

    assert f'ALTER DATABASE "{dbname}" SET jit = off' in check()
    with psycopg.connect(bouncer.direct(dbname), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" SET jit = off')
    bouncer.reconnect()
    try:
        assert "ops.W002" not in check()
    finally:
        with psycopg.connect(bouncer.direct(dbname), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname}" RESET jit')
        bouncer.reconnect()
