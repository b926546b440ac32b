"""The fast path's own PostgreSQL connections: a small psycopg pool per worker process,
autocommit, statements prepared once with generic plans; behind a pooler in transaction mode
(DATABASE_POOLER) neither: each statement in a transaction of its own (see `Database`)."""

import select

import psycopg
from django.conf import settings
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from tokens.usage_api.postgres import TRANSACTION_SETTINGS

# Connection-level failures: the database is down, restarting, or the pool has no
# connection to give within its timeout. Nothing was recorded (or the retry says so).
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
RECONNECT_TIMEOUT = 2.0  # seconds; see Database

# Options of Django's database settings that are not libpq's.
_DJANGO_ONLY_OPTIONS = {
    "assume_role",
    "context",
    "cursor_factory",
    "isolation_level",
    "pool",
    "prepare_threshold",
    "server_side_binding",
}


def conninfo_from_django(conf: dict | None = None) -> str:
    """libpq connection string of Django's database settings (by default the "default"
    database's, which under tests name the test database once it exists)."""
    conf = settings.DATABASES["default"] if conf is None else conf
    options = {
        k: v for k, v in (conf.get("OPTIONS") or {}).items() if k not in _DJANGO_ONLY_OPTIONS
    }
    parts = {
        "dbname": conf.get("NAME"),
        "user": conf.get("USER"),
        "password": conf.get("PASSWORD"),
        "host": conf.get("HOST"),
        "port": conf.get("PORT"),
        **options,
    }
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in parts.items() if v})


_SESSION_SETTINGS = (
    "plan_cache_mode = force_generic_plan",
    "jit = off",  # also in Django's settings; here for a fast path given its own conninfo
    "enable_seqscan = off",
    "enable_hashjoin = off",
    "enable_mergejoin = off",
)


class Database:
    """The fast path's connections: a few per process, autocommit, statements prepared once
    with generic plans (planning this statement costs more than running it: 1.5 ms).

    `pooler=True` (DATABASE_POOLER=transaction: the conninfo is PgBouncer's in transaction
    mode): nothing kept in a session. No prepared statements (PgBouncer 1.18 cannot route
    them), and each statement runs in a transaction of its own that first sets what
    `_configure` sets per connection otherwise, all sent at once (a pipeline: one round trip).
    """

    def __init__(self, conninfo: str, *, size: int, timeout: float, pooler: bool = False):
        self.pooler = pooler
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=size,
            timeout=timeout,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": None if pooler else 0},
            configure=None if pooler else self._configure,
            # New connections now and then plan again, from the tables' current size.
            max_lifetime=600,
            # A lost connection is retried with a delay doubling from 1 s for up to
            # reconnect_timeout (psycopg_pool's default: 5 minutes): after a 35 s outage the
            # next attempt came 15-30 s after the database's return, and every report
            # waiting meanwhile answered 503. Giving up after RECONNECT_TIMEOUT keeps the
            # delays at about 1 s; the next report that finds no connection starts a new
            # attempt at once.
            reconnect_timeout=RECONNECT_TIMEOUT,
            name="usage-fast-path",
        )
        self.size = size
        self._opened = False
        self.statements = 0  # for tests and curiosity: how many round trips recorded usage

    @staticmethod
    async def _configure(conn: psycopg.AsyncConnection) -> None:
        # The statement looks up a few rows by unique keys: nested loops over index scans
        # are right whatever the statistics say. A generic plan made while a table looked
        # empty (a new deployment, a freshly vacuumed table) must not scan it for good.
        for setting in _SESSION_SETTINGS:
            await conn.execute(f"SET {setting}", prepare=False)

    async def execute(self, sql: str, params: dict) -> list[tuple]:
        if not self._opened:
            self._opened = True
            await self.pool.open()  # connects in the background; a request waits `timeout`
        self.statements += 1
        for _ in range(self.size + 1):
            async with self.pool.connection() as conn:
                if _closed_by_server(conn):
                    await conn.close()  # the pool replaces it with a new connection
                    continue
                if self.pooler:
                    return await _in_one_transaction(conn, sql, params)
                cursor = await conn.execute(sql, params)
                return await cursor.fetchall() if cursor.description else []
        raise psycopg.OperationalError("the server closed every connection of the pool")

    async def close(self) -> None:
        if self._opened:
            await self.pool.close()


async def _in_one_transaction(conn: psycopg.AsyncConnection, sql: str, params: dict) -> list:
    """The settings and the statement in one round trip: a pipeline ended by one Sync, which
    is one implicit transaction (committed at the Sync, rolled back if the statement fails),
    so the settings' `set_config(…, true)` hold for the statement and end with it.

    Not `conn.transaction()` inside the pipeline: psycopg then sends BEGIN, COMMIT and
    several Syncs (four, in PgBouncer's trace), and PgBouncer 1.18 (transaction mode) now and
    then kept a server connection linked to the client after the last one (idle after COMMIT
    on the server, "active" in PgBouncer for minutes), so the pool's other clients waited
    out `query_wait_timeout`. One Sync also saves round trips: a small statement ran 2-3x as
    often per second through PgBouncer.
    """
    async with conn.pipeline():
        await conn.execute(TRANSACTION_SETTINGS)
        cursor = await conn.execute(sql, params)
    return await cursor.fetchall() if cursor.description else []


def _closed_by_server(conn: psycopg.AsyncConnection) -> bool:
    """Whether the server closed this idle connection (a restart, an outage no report saw):
    a poll, no round trip. An idle connection has nothing to read; a readable one was closed,
    or holds a notice, then it is replaced all the same. Nothing was sent on it yet, so the
    batch safely goes on another one instead of answering 503."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))
