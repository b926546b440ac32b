"""The usage API's fast path: `POST /api/v1/usage` on PostgreSQL, without Django's request
stack, reports recorded in batches of one statement each.

Why: the platform's gateway reports every completion here, so this endpoint sets the
product's throughput. Through Django's middleware and view a report costs about 7 ms of CPU
(five queries); here it is one HTTP parse, the validation the view does
(`protocol`, the same code), and a share of one statement: reports that arrive while a batch
is in flight wait for the next one, which records them all in one round trip and one commit
(`batcher`, `postgres`). Under load that is a few reports per statement; a
lone report goes at once.

It is ASGI middleware (`asksage_admin.asgi`): everything else, and everything when the
database is not PostgreSQL or `USAGE_FAST_PATH` is off, goes to Django, which answers the
same requests the same way (tests/tokens/test_usage_fastpath.py compares the two). So do
requests Django would refuse or redirect before its view: a host outside ALLOWED_HOSTS,
plain HTTP under SECURE_SSL_REDIRECT: Django's own code decides (`gate`), and puts the
same security headers on the answers.

One `Batcher` and one small psycopg pool per worker process, created on the first request
in that process's event loop (`pool`). The policy hook (`hook.after_usage_recorded`, as on
the view) is Django code: it runs in a thread, only for usage at or above the organization's
lowest mark.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.signals import setting_changed
from django.db import close_old_connections

from tokens.usage_api import protocol
from tokens.usage_api.batcher import Batcher
from tokens.usage_api.errors import UsageError, database_unavailable
from tokens.usage_api.gate import Gate
from tokens.usage_api.hook import after_usage_recorded
from tokens.usage_api.keys import api_key_hash, bearer_lacks_usage
from tokens.usage_api.pool import UNAVAILABLE, Database, conninfo_from_django
from tokens.usage_api.postgres import Report
from tokens.usage_api.results import UsageResult

logger = logging.getLogger(__name__)

PATH = "/api/v1/usage"
HOOK_QUIET_SECONDS = 30

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def _policy_hook(result: UsageResult) -> UsageResult:
    """The policy hook (`hook.after_usage_recorded`, as the view runs it), in a thread, with
    Django's connection handled as a request would."""
    close_old_connections()
    try:
        return after_usage_recorded(result)
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
            gate = self.config.gate
            headers = _headers(scope["headers"], gate.header_names)
            admitted, secure = gate.decide(scope, headers)
            # A key without the usage scope (rare: an admin-API key) is Django's to refuse.
            if admitted and not bearer_lacks_usage(headers.get("authorization", "")):
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
                pooler=settings.DATABASE_POOLER != "none",
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
        code = ""
        try:
            result = await self._record(headers, receive)
            status, body = 200, protocol.encode(result.as_dict())
            if result.replayed:
                extra["Idempotent-Replayed"] = "true"
        except UsageError as error:
            status, body, extra = protocol.error_answer(error)
            code = error.code
        except UNAVAILABLE as exc:
            logger.warning("usage fast path: database unavailable: %s", exc)
            error = database_unavailable()
            status, body, extra = protocol.error_answer(error)
            code = error.code
        except _ClientGone:
            return
        except Exception:
            logger.exception("usage fast path failed")
            status = 500
            body = protocol.encode({"error": "server_error", "detail": "Something went wrong."})
        protocol.report_counted(status, replayed="Idempotent-Replayed" in extra, code=code)
        extra["Cache-Control"] = protocol.CACHE_CONTROL
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", protocol.CONTENT_TYPE.encode()),
                    *((k.lower().encode(), v.encode()) for k, v in extra.items()),
                    *self.config.gate.response_headers(secure),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _record(self, headers: dict[str, str], receive: Receive) -> UsageResult:
        """What the view (`views.usage_create`) does, in the same order: key shape, body, key."""
        raw_key = protocol.bearer_key(headers.get("authorization", ""))
        body = await _read_body(receive, headers.get("content-length"))
        usage, idempotency_key = protocol.usage_report(body, headers.get("idempotency-key", ""))
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
    if protocol.declared_too_large(content_length):
        raise protocol.body_too_large()
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > protocol.MAX_BODY_BYTES:
            raise protocol.body_too_large()
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


_HEADERS_READ = frozenset({b"authorization", b"content-length", b"idempotency-key"})


def _headers(raw: Iterable[tuple[bytes, bytes]], also: frozenset[bytes]) -> dict[str, str]:
    """The request headers the fast path reads (and those the gate reads), by lowercase
    name; repeated ones joined as Django joins them."""
    headers: dict[str, str] = {}
    for name, value in raw:
        name = name.lower()
        if name in _HEADERS_READ or name in also:
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
        self.gate = Gate()
