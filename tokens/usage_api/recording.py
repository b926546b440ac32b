"""Recording one usage through Django's connection: the view's entry point.

It picks the database's path (`postgres`: the shared statement; `sqlite`: the steps), then
runs the policy hook (`hook.after_usage_recorded`) outside the usage transaction and its lock.
"""

import datetime as dt
from contextlib import nullcontext

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tokens.usage_api import postgres, sqlite
from tokens.usage_api.errors import invalid_key
from tokens.usage_api.hook import after_usage_recorded
from tokens.usage_api.keys import (
    api_key_authenticate,
    api_key_hash,
    api_key_lacks_usage,
    api_key_well_formed,
)
from tokens.usage_api.results import UsageRequest, UsageResult


def usage_record(*, raw_key: str, usage: UsageRequest, idempotency_key: str) -> UsageResult:
    """Count a usage for the key's organization if it stays within the user's max, once per
    idempotency key.

    Not atomic itself: the count commits in `_record`, then the policy runs, outside the
    usage transaction and its lock.

    Raises UsageError: 401 unknown or revoked key, 403 organization inactive, 404 unknown or
    other organization's user, 403 banned/disabled/paid off, 402 over the max (with the
    balance), 409 idempotency key reused with another body.
    """
    result = _record(
        raw_key=raw_key, usage=usage, idempotency_key=idempotency_key, now=timezone.now()
    )
    if not result.replayed:
        result = after_usage_recorded(result)
    return result


def _record(
    *, raw_key: str, usage: UsageRequest, idempotency_key: str, now: dt.datetime
) -> UsageResult:
    """The recording transaction: the shared statement on PostgreSQL, steps on SQLite."""
    if connection.vendor == "postgresql":
        if not api_key_well_formed(raw_key):
            raise invalid_key()
        if api_key_lacks_usage(raw_key):
            api_key_authenticate(raw_key)  # 401 or 403 scope_missing: never counted
        report = postgres.Report(api_key_hash(raw_key), usage, idempotency_key)
        return postgres.run(postgres.record_one(report, now), _execute)
    org = api_key_authenticate(raw_key).organization
    try:
        return sqlite.record_in_steps(
            org=org, usage=usage, idempotency_key=idempotency_key, now=now
        )
    except IntegrityError:
        # Only the idempotency index can refuse the event: a request with this key committed
        # first (concurrently, or earlier). Its transaction is over: answer what it recorded.
        replay = sqlite.answer_replay(org=org, usage=usage, idempotency_key=idempotency_key)
        if replay is None:
            raise
        return replay


def _execute(sql: str, params: dict) -> list[tuple]:
    """One statement on Django's connection; its own transaction (autocommit), or a
    savepoint inside an enclosing one, which a refused statement must not abort.

    Behind a pooler (DATABASE_POOLER) the connection has no startup options: the statement's
    transaction turns JIT off for itself (and takes the fast path's plan settings)."""
    pooler = settings.DATABASE_POOLER != "none"
    scope = transaction.atomic() if connection.in_atomic_block or pooler else nullcontext()
    with scope, connection.cursor() as cursor:
        if pooler:
            cursor.execute(postgres.TRANSACTION_SETTINGS)
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []
