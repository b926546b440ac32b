"""The usage API's fast path: `POST /api/v1/usage` on PostgreSQL, without Django's request
stack, reports recorded in batches of one statement each.

Why: the platform's gateway reports every completion here, so this endpoint sets the
product's throughput. Through Django's middleware and view a report costs about 7 ms of CPU
(five queries); here it is one HTTP parse, the validation the view does
(`tokens.api`, `tokens.usage.parse_usage`), and a share of one statement: reports that
arrive while a batch is in flight wait for the next one, which records them all in one round
trip and one commit (`tokens.recording`). Under load that is a few reports per statement; a
lone report goes at once.

It is ASGI middleware (`asksage_admin.asgi`): everything else, and everything when the
database is not PostgreSQL or `USAGE_FAST_PATH` is off, goes to Django, which answers the
same requests the same way (tests/tokens/test_usage_fastpath.py compares the two). So do
requests Django would refuse or redirect before its view: a host outside ALLOWED_HOSTS,
plain HTTP under SECURE_SSL_REDIRECT.

One `Batcher` and one small psycopg pool per worker process, created on the first request
in that process's event loop. The policy hook (auto-increase, alerts) is Django code: it
runs in a thread, only for usage at or above the organization's lowest mark.
"""

import asyncio
import json
import logging
import select
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.signals import setting_changed
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host
from django.utils import timezone
from django.utils.csp import build_policy
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from tokens import api, recording
from tokens.recording import Again, Report, Row, _after_usage_recorded
from tokens.usage import (
    UsageError,
    UsageResult,
    api_key_hash,
    parse_usage,
)

logger = logging.getLogger(__name__)

PATH = "/api/v1/usage"
HOOK_QUIET_SECONDS = 30

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

# Connection-level failures: the database is down, restarting, or the pool has no
# connection to give within its timeout. Nothing was recorded (or the retry says so).
_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
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
    with generic plans (planning this statement costs more than running it: 1.5 ms)."""

    def __init__(self, conninfo: str, *, size: int, timeout: float):
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=size,
            timeout=timeout,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0},
            configure=self._configure,
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
                cursor = await conn.execute(sql, params)
                return await cursor.fetchall() if cursor.description else []
        raise psycopg.OperationalError("the server closed every connection of the pool")

    async def close(self) -> None:
        if self._opened:
            await self.pool.close()


def _closed_by_server(conn: psycopg.AsyncConnection) -> bool:
    """Whether the server closed this idle connection (a restart, an outage no report saw):
    a poll, no round trip. An idle connection has nothing to read; a readable one was closed,
    or holds a notice, then it is replaced all the same. Nothing was sent on it yet, so the
    batch safely goes on another one instead of answering 503."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))


async def run_async(flow: recording.Flow, database: Database) -> UsageResult:
    """Drive a `tokens.recording` flow on the fast path's connections."""
    try:
        query = next(flow)
        while True:
            try:
                rows = await database.execute(*query)
            except psycopg.Error as exc:
                if not recording.is_duplicate_report(exc):
                    raise
                query = flow.throw(recording.DuplicateReport())
            else:
                query = flow.send(rows)
    except StopIteration as stop:
        return stop.value


@dataclass(slots=True)
class _Waiting:
    """A report waiting for its batch, and for its answer."""

    report: Report
    answer: asyncio.Future
    passes: int = 0  # batches it already went through (a first usage of the month: one)


class Batcher:
    """Collects reports and records them a batch per statement, `concurrency` batches at a
    time. A batch takes everything waiting (up to `size`), one report per user and per
    idempotency key; the rest wait for the next batch. A batch starts at once when none is
    running (a lone report never waits); another one only when `min_fill` reports are
    waiting, else they join the batch that starts when the running one ends: bigger
    batches, fewer statements for the same reports (measured: +15 % reports/s).

    Reports a batch cannot settle: the first usages of a month get their rows in one
    statement and go into the next batch (at midnight UTC on the 1st, every user's first
    report is one); reports whose member row was locked elsewhere, or that met a concurrent
    duplicate, are recorded alone, waiting for locks, without holding up the batches."""

    def __init__(self, database: Database, *, size: int, concurrency: int, min_fill: int = 1):
        self.database = database
        self.size = size
        self.concurrency = concurrency
        self.min_fill = min_fill
        self.pending: deque[_Waiting] = deque()
        self.running = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task] = set()

    def record(self, report: Report) -> asyncio.Future:
        """A future of the report's UsageResult (or its UsageError)."""
        waiting = _Waiting(report, asyncio.get_running_loop().create_future())
        self.pending.append(waiting)
        self._kick()
        return waiting.answer

    def _kick(self) -> None:
        # Start on the next loop turn, so reports arriving in this one join the batch.
        if self.pending and not self._scheduled and self.running < self.concurrency:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        while self.pending and self.running < self.concurrency:
            if self.running and len(self.pending) < self.min_fill:
                break  # the running batch's end starts the next one, fuller
            batch = self._take()
            if batch:
                self.running += 1
                self._spawn(self._run(batch))

    def _take(self) -> list[_Waiting]:
        batch, later, users, keys = [], [], set(), set()
        while self.pending and len(batch) < self.size:
            waiting = self.pending.popleft()
            report = waiting.report
            if waiting.answer.done():  # the client went away before its turn
                continue
            key = (report.key_hash, report.idempotency_key)
            if report.usage.email in users or (report.idempotency_key and key in keys):
                later.append(waiting)
                continue
            users.add(report.usage.email)
            keys.add(key)
            batch.append(waiting)
        self.pending.extendleft(reversed(later))
        return batch

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # a reference, or the loop may drop a running task
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Waiting]) -> None:
        try:
            now = timezone.now()
            reports = [waiting.report for waiting in batch]
            try:
                rows = await self.database.execute(
                    recording.BATCH_SQL, recording.params(reports, now)
                )
            except psycopg.Error as exc:
                rolled_back = isinstance(exc, psycopg.errors.TransactionRollback)
                if isinstance(exc, _UNAVAILABLE) and not rolled_back:
                    raise
                # A concurrent duplicate refused one event, or a deadlock with another
                # writer: nothing of the batch was written; each report goes alone.
                for waiting in batch:
                    self._spawn(self._alone(waiting))
                return
            first_of_month = []
            for waiting, values in zip(batch, rows, strict=True):
                if waiting.answer.done():
                    continue
                row = Row._make(values)
                try:
                    result = recording.settle(waiting.report, row, now=now, waited=False)
                except Again as again:
                    if again.why == Again.NO_MONTH_ROW and waiting.passes == 0:
                        first_of_month.append((waiting, row.user_id))
                    else:
                        self._spawn(self._alone(waiting))
                except UsageError as error:
                    waiting.answer.set_exception(error)
                else:
                    waiting.answer.set_result(result)
            if first_of_month:
                await self._next_batch_with_month_rows(first_of_month, now)
        except Exception as exc:  # unavailable database, or a bug: every report hears of it
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
        finally:
            self.running -= 1
            self._kick()

    async def _next_batch_with_month_rows(self, first: list, now) -> None:
        pairs = {(user_id, waiting.report.usage.kind) for waiting, user_id in first}
        await self.database.execute(
            recording.ENSURE_MONTH_SQL, recording.ensure_month_params(sorted(pairs), now)
        )
        for waiting, _ in reversed(first):
            waiting.passes += 1
            self.pending.appendleft(waiting)

    async def _alone(self, waiting: _Waiting) -> None:
        answer = waiting.answer
        try:
            flow = recording.record_one(waiting.report, timezone.now())
            result = await run_async(flow, self.database)
        except Exception as exc:
            if not answer.done():
                answer.set_exception(exc)
        else:
            if not answer.done():
                answer.set_result(result)


def _policy_hook(result: UsageResult) -> UsageResult:
    """The auto-increase hook, with Django's connection handled as a request would."""
    close_old_connections()
    try:
        return _after_usage_recorded(result)
    finally:
        close_old_connections()


class UsageFastPath:
    """ASGI middleware serving `POST /api/v1/usage` on PostgreSQL; the rest goes to `app`."""

    def __init__(self, app, *, conninfo: str | None = None):
        self.app = app
        self._conninfo = conninfo
        self.batcher: Batcher | None = None
        self._hook_runs: dict[tuple, float] = {}
        self._config: _Config | None = None
        setting_changed.connect(self._forget_config, weak=False)

    def _forget_config(self, **kwargs) -> None:
        self._config = None

    @property
    def config(self) -> "_Config":
        if self._config is None:
            self._config = _Config(self._conninfo)
        return self._config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and scope["method"] == "POST" and self._ours(scope):
            config = self.config
            headers = _headers(scope["headers"])
            secure = config.is_secure(scope, headers)
            if config.admits(secure, headers):
                await self._usage(secure, headers, receive, send)
            else:
                await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def _ours(self, scope: Scope) -> bool:
        path = scope["path"]
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root) :]
        return path == PATH and self.config.enabled

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Django does not speak lifespan: answer it here, closing the pool at shutdown."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        if self.batcher is not None:
            await self.batcher.database.close()
            self.batcher = None

    def _batcher(self) -> Batcher:
        if self.batcher is None:
            database = Database(
                self.config.conninfo or conninfo_from_django(),
                size=settings.USAGE_API_POOL_SIZE,
                timeout=settings.USAGE_API_POOL_TIMEOUT,
            )
            self.batcher = Batcher(
                database,
                size=settings.USAGE_API_BATCH_SIZE,
                concurrency=settings.USAGE_API_BATCH_CONCURRENCY,
                min_fill=settings.USAGE_API_BATCH_MIN_FILL,
            )
        return self.batcher

    async def _usage(
        self, secure: bool, headers: dict[str, str], receive: Receive, send: Send
    ) -> None:
        extra: dict[str, str] = {}
        try:
            result = await self._record(headers, receive)
            status, data = 200, result.as_dict()
            if result.replayed:
                extra["Idempotent-Replayed"] = "true"
        except UsageError as error:
            status, data, extra = error.status, error.as_dict(), api.error_headers(error)
        except _UNAVAILABLE as exc:
            logger.warning("usage fast path: database unavailable: %s", exc)
            error = api.database_unavailable()
            status, data, extra = error.status, error.as_dict(), api.error_headers(error)
        except _ClientGone:
            return
        except Exception:
            logger.exception("usage fast path failed")
            status, data = 500, {"error": "server_error", "detail": "Something went wrong."}
        body = json.dumps(data, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *self.config.response_headers(secure),
                    *((k.lower().encode(), v.encode()) for k, v in extra.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _record(self, headers: dict[str, str], receive: Receive) -> UsageResult:
        """What `tokens.api.usage_create` does, in the same order: key shape, body, key."""
        raw_key = api.bearer_key(headers.get("authorization", ""))
        body = await _read_body(receive, headers.get("content-length"))
        usage = parse_usage(api.decode_json(body))
        idempotency_key = api.idempotency_key(headers.get("idempotency-key", ""))
        report = Report(api_key_hash(raw_key), usage, idempotency_key)
        result = await self._batcher().record(report)
        if not result.replayed and result.policy_may_act and self._hook_due(result):
            result = await sync_to_async(_policy_hook)(result)
        return result

    def _hook_due(self, result: UsageResult) -> bool:
        """Whether the policy hook should run for this usage: not again within
        HOOK_QUIET_SECONDS for a user it already ran for at the same max and the same marks
        reached. A user past 80 % keeps reporting usage all month; each hook run costs
        queries, and it acts only when a new mark is reached (new key) or a cooldown ends
        (then within HOOK_QUIET_SECONDS)."""
        key = (result.user_id, result.request.kind, result.balance.max, result.marks_reached)
        now = asyncio.get_running_loop().time()
        last = self._hook_runs.get(key)
        if last is not None and now - last < HOOK_QUIET_SECONDS:
            return False
        if len(self._hook_runs) > 10_000:  # bounded: one entry per active user and mark
            self._hook_runs.clear()
        self._hook_runs[key] = now
        return True


class _ClientGone(Exception):
    """The client disconnected before sending its whole body: nobody to answer."""


async def _read_body(receive: Receive, content_length: str | None) -> bytes:
    """The request body, refused past the cap before reading it when its length says so,
    and as soon as the cap is passed when it does not."""
    if api.declared_too_large(content_length):
        raise api.body_too_large()
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > api.MAX_BODY_BYTES:
            raise api.body_too_large()
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


_HEADERS_READ = {
    b"authorization",
    b"content-length",
    b"host",
    b"idempotency-key",
    b"x-forwarded-host",
}


def _headers(raw: Iterable[tuple[bytes, bytes]], wanted=_HEADERS_READ) -> dict[str, str]:
    """The request headers the fast path reads, by lowercase name; repeated ones joined as
    Django joins them."""
    headers: dict[str, str] = {}
    for name, value in raw:
        name = name.lower()
        if name in wanted:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


class _Config:
    """The settings the fast path reads on every request, read once (and again after a
    test changes one: `setting_changed`)."""

    def __init__(self, conninfo: str | None):
        self.conninfo = conninfo
        engine = settings.DATABASES["default"]["ENGINE"]
        self.enabled = bool(getattr(settings, "USAGE_FAST_PATH", True)) and (
            conninfo is not None or "postgresql" in engine
        )
        self.ssl_redirect = settings.SECURE_SSL_REDIRECT
        self.forwarded_host = settings.USE_X_FORWARDED_HOST
        self.proxy_ssl_header = None
        if settings.SECURE_PROXY_SSL_HEADER:
            meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
            name = meta_name.removeprefix("HTTP_").replace("_", "-").lower()
            self.proxy_ssl_header = (name, secure_value)
        self.allowed_hosts = settings.ALLOWED_HOSTS
        if settings.DEBUG and not self.allowed_hosts:
            self.allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
        self._hosts: dict[str, bool] = {}
        self._headers = {secure: self._response_headers(secure) for secure in (False, True)}

    def is_secure(self, scope: Scope, headers: dict[str, str]) -> bool:
        """HTTPS, directly or as the proxy says (SECURE_PROXY_SSL_HEADER), as Django decides."""
        if self.proxy_ssl_header is not None:
            name, secure_value = self.proxy_ssl_header
            if name not in _HEADERS_READ:
                headers = _headers(scope["headers"], {name.encode()})
            value = headers.get(name)
            if value is not None:
                return value.split(",", 1)[0].strip() == secure_value
        return scope.get("scheme") == "https"

    def admits(self, secure: bool, headers: dict[str, str]) -> bool:
        """What Django's middleware would let through to the view."""
        if self.ssl_redirect and not secure:
            return False  # Django redirects to HTTPS
        return self._host_allowed(headers)  # else Django answers 400

    def _host_allowed(self, headers: dict[str, str]) -> bool:
        if self.forwarded_host and "x-forwarded-host" in headers:
            host = headers["x-forwarded-host"]
        else:
            host = headers.get("host", "")
        allowed = self._hosts.get(host)
        if allowed is None:
            domain, _ = split_domain_port(host)
            allowed = bool(domain) and validate_host(domain, self.allowed_hosts)
            if len(self._hosts) > 100:  # bounded: hosts are chosen by clients
                self._hosts.clear()
            self._hosts[host] = allowed
        return allowed

    def response_headers(self, secure: bool) -> list[tuple[bytes, bytes]]:
        return self._headers[secure]

    @staticmethod
    def _response_headers(secure: bool) -> list[tuple[bytes, bytes]]:
        """The headers Django's middleware puts on the view's answers (see settings)."""
        pairs = {"Cache-Control": "no-store", "X-Frame-Options": settings.X_FRAME_OPTIONS}
        if settings.SECURE_CONTENT_TYPE_NOSNIFF:
            pairs["X-Content-Type-Options"] = "nosniff"
        if settings.SECURE_REFERRER_POLICY:
            pairs["Referrer-Policy"] = settings.SECURE_REFERRER_POLICY
        if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
            pairs["Cross-Origin-Opener-Policy"] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
        if getattr(settings, "SECURE_CSP", None):
            pairs["Content-Security-Policy"] = build_policy(settings.SECURE_CSP)
        if secure and settings.SECURE_HSTS_SECONDS:
            hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
            if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
                hsts += "; includeSubDomains"
            if settings.SECURE_HSTS_PRELOAD:
                hsts += "; preload"
            pairs["Strict-Transport-Security"] = hsts
        return [(k.lower().encode(), v.encode()) for k, v in pairs.items()]
