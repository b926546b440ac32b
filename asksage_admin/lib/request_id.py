"""The request id: one per request, on every log line written while serving it.

Bound in structlog's contextvars, which the log formatter (asksage_admin.ops.logging) merges
into each line, whichever logger wrote it. An id that came with the request (X-Request-ID, set
by a proxy or the caller) is kept when it is short and plain, so a request can be followed
across services; anything else (too long, spaces, control characters that could forge log
lines) is replaced by a fresh one. Also for code outside Django's middleware (the usage API's
fast path): `bind_request_id(header_value)` then `unbind_request_id(tokens)`.
"""

import re
import uuid
from collections.abc import Mapping
from contextvars import Token

import structlog

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_from(incoming: str | None) -> str:
    """`incoming` when it is well formed (1-128 of letters, digits and . _ : -), else a new id."""
    if incoming and _WELL_FORMED.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def bind_request_id(incoming: str | None) -> tuple[str, Mapping[str, Token]]:
    """Bind the request's id for the log lines that follow; returns it and the reset tokens."""
    request_id = request_id_from(incoming)
    return request_id, structlog.contextvars.bind_contextvars(request_id=request_id)


def unbind_request_id(tokens: Mapping[str, Token]) -> None:
    structlog.contextvars.reset_contextvars(**tokens)


def current_request_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("request_id")
