"""The request id: one per request, on every log line written while serving it.

Bound in structlog's contextvars, which the log formatter (asksage_admin.ops.logging) merges
into each line, whichever logger wrote it. An id that came with the request (X-Request-ID, set
by a proxy or the caller) is kept when it is short and plain, so a request can be followed
across services; anything else (too long, spaces, control characters that could forge log
lines) is replaced by a fresh one. Also for code outside Django's middleware (the usage API's
fast path): `bind_request_id(header_value)` then `unbind_request_id(tokens)`.
"""

import os
import re
from collections.abc import Mapping
from contextvars import Token

import structlog

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_from(incoming: str | None) -> str:
    """`incoming` when it is well formed (1-128 of letters, digits and . _ : -), else a new id."""
    if incoming and _WELL_FORMED.fullmatch(incoming):
        return incoming
    return new_request_id()


# Fresh ids: 128 random bits as 32 hex digits, drawn from os.urandom 256 at a time. One
# getrandom call per id (uuid4) was the usage API's single largest own cost per request
# (about 5 % of a worker's CPU); unpredictable all the same. A forked worker starts empty,
# so no two processes hand out the same ids.
_BATCH = 256
_fresh: list[str] = []
os.register_at_fork(after_in_child=_fresh.clear)


def new_request_id() -> str:
    if not _fresh:
        digits = os.urandom(16 * _BATCH).hex()
        _fresh.extend(digits[i : i + 32] for i in range(0, len(digits), 32))
    return _fresh.pop()


def bind_request_id(incoming: str | None) -> tuple[str, Mapping[str, Token]]:
    """Bind the request's id for the log lines that follow; returns it and the reset tokens."""
    request_id = request_id_from(incoming)
    return request_id, structlog.contextvars.bind_contextvars(request_id=request_id)


def unbind_request_id(tokens: Mapping[str, Token]) -> None:
    structlog.contextvars.reset_contextvars(**tokens)


def current_request_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("request_id")
