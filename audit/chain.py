"""The audit hash chain: each row hashes its content and the previous row of its chain.

One chain per organization (`org:<id>`) and one for rows without an organization (`global`).
Rows are sealed in Python just before they are inserted, with the chain's head row locked,
so a batch of any size costs the same few queries. `audit.integrity.verify` walks a chain
and reports the first row that was altered, removed or inserted out of turn.

This module seals; it imports no model. The models call it with their own classes
(`audit.models` → `audit.chain`, never the reverse), so the two need no import inside a
function to break a cycle.
"""

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.db import connections, transaction
from django.utils import timezone

GENESIS = "0" * 64
GLOBAL = "global"


def chain_key(organization_id: int | None) -> str:
    return f"org:{organization_id}" if organization_id else GLOBAL


def _normalise(row) -> None:
    """Put every field in the form the database gives back, so the hash survives a reload."""
    row.actor_label = str(row.actor_label or "")
    row.action = str(row.action or "")
    row.column = str(row.column or "")
    row.old_value = "" if row.old_value is None else str(row.old_value)
    row.new_value = "" if row.new_value is None else str(row.new_value)
    if row.batch_id is not None and not isinstance(row.batch_id, uuid.UUID):
        row.batch_id = uuid.UUID(str(row.batch_id))
    row.details = json.loads(json.dumps(row.details or {}))
    row.ip = type(row)._meta.get_field("ip").get_prep_value(row.ip) or None
    if row.created_at is None:
        row.created_at = timezone.now()
    elif timezone.is_naive(row.created_at):
        row.created_at = timezone.make_aware(row.created_at, dt.UTC)


# The fields a row's hash covers, in order: everything but the id and the hash itself.
HASHED = [
    "chain",
    "seq",
    "prev_hash",
    "organization_id",
    "actor_id",
    "actor_label",
    "action",
    "target_user_id",
    "column",
    "old_value",
    "new_value",
    "batch_id",
    "details",
    "ip",
    "created_at",
]
_BATCH, _CREATED = HASHED.index("batch_id"), HASHED.index("created_at")


def values_content(values: Sequence) -> str:
    """The canonical text of a row's HASHED values, in that order (the checker reads them
    straight from the database, without building rows)."""
    values = list(values)
    values[_BATCH] = str(values[_BATCH]) if values[_BATCH] else None
    values[_CREATED] = values[_CREATED].astimezone(dt.UTC).isoformat(timespec="microseconds")
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def content(row) -> str:
    """The canonical text of a row: every field but the hash itself."""
    return values_content([getattr(row, name) for name in HASHED])


def row_hash(row) -> str:
    return hashlib.sha256(content(row).encode()).hexdigest()


def _locked_heads(heads_model, keys: set[str], using: str) -> dict[str, tuple[int, str]]:
    """Each chain's (last seq, last hash), its head row locked until the transaction ends.

    One upsert creates a chain's head on its first row and otherwise locks it (ON CONFLICT
    DO UPDATE takes the row lock; a concurrent writer waits, then reads the new head).
    Locked in key order so two writers of the same two chains cannot deadlock.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    table = quote(heads_model._meta.db_table)
    ordered = sorted(keys)
    values = ", ".join(["(%s, 0, %s)"] * len(ordered))
    sql = (
        f"INSERT INTO {table} ({quote('key')}, {quote('last_seq')}, {quote('last_hash')}) "
        f"VALUES {values} ON CONFLICT ({quote('key')}) "
        f"DO UPDATE SET {quote('last_seq')} = {table}.{quote('last_seq')} "
        f"RETURNING {quote('key')}, {quote('last_seq')}, {quote('last_hash')}"
    )
    params = [item for key in ordered for item in (key, GENESIS)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {key: (seq, last) for key, seq, last in cursor.fetchall()}


@contextmanager
def appending(rows: Sequence, heads_model, using: str = "default") -> Iterator[None]:
    """Seal `rows` onto their chains; the caller inserts them inside the block.

    `heads_model` is the model of the chains' heads (`AuditChain`, or a migration's own).

    The block runs in a transaction (joined if one is open) holding the heads' locks until it
    commits, and moves the heads forward after the insert.
    """
    with transaction.atomic(using=using, savepoint=False):
        for row in rows:
            row.chain = chain_key(row.organization_id)
        heads = _locked_heads(heads_model, {row.chain for row in rows}, using)
        for row in rows:
            seq, last = heads[row.chain]
            _normalise(row)
            row.seq, row.prev_hash = seq + 1, last
            row.hash = row_hash(row)
            heads[row.chain] = (row.seq, row.hash)
        yield
        for key, (seq, last) in heads.items():
            heads_model.objects.using(using).filter(key=key).update(last_seq=seq, last_hash=last)
