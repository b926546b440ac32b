"""Recording usage on PostgreSQL: one statement authenticates, checks and counts a whole batch.

The usage API's hot path. One round trip per batch of reports, each report counted with the
one conditional UPDATE (`used = used + n WHERE … AND used + n <= max`), its event and its
daily rollup written by the same statement, so in the same transaction:

    r        the reports (a JSON array), one row each, in arrival order
    k        each report's API key, organization and allocation policy (looked up once per
             key: a batch is mostly one gateway's)
    who      the member with that email in the key's organization (as of the statement's
             snapshot: found or not, banned, paid), with the report: each later lookup
             takes all its keys from this one row, so its plan is an index lookup on the
             full unique key whatever the statistics say; `ok`: the model is allowed (the
             organization does not restrict models, or one grant row, by the unique index,
             names the model for everyone, the user's role or the user): else nothing counts
    m        the membership rows, locked FOR NO KEY UPDATE, with their report (the writes
             below read everything from it and `counted`, no join): their max is the one
             committed now (an admin's save that lowered it either committed before the lock,
             and we see its value, or waits for our commit). The batch variant skips rows
             locked elsewhere (SKIP LOCKED, so a batch never waits on a row lock); those
             reports are recorded alone afterwards, waiting for the lock
    prior    the event already recorded under the report's Idempotency-Key (a retry), read
             from the keys' small table (`UsageEventKey`: the events are partitioned by
             month, and a lookup there would open every partition)
    counted  the conditional UPDATE of the month's row
    t        the member's lifetime total (Membership.total_used, User Management's "Total
             usage"): its row is already locked by `m`
    event    the usage event; a trigger claims its Idempotency-Key in `UsageEventKey`, whose
             unique key refuses a concurrent duplicate (also across a month's turn, see the
             model): the whole statement fails and every report is retried alone
    daily    the day's rollup per user, an upsert
    org      the day's rollup per organization (what the statistics read): the batch summed
             per (organization, kind, model) first, as one statement's upsert may touch a row
             only once, and in key order, so concurrent batches lock shared rows in one order;
             in this connection's shard (its backend's pid), so that concurrent statements do
             not wait for each other's commit on these few rows
    touch    the key's last-used time, at most once a minute, skipping a row being touched

`settle` reads a report's row into an answer (a `UsageResult`, or a `UsageError` to raise)
or says why it must run again alone; `record_one` is that alone-run, a generator of queries
so the same control flow serves the synchronous Django view and the asynchronous fast path
(`fastpath`, `batcher`). The caller deduplicates a batch: one report per user and per
idempotency key (a row can be updated only once per statement).

Table names come from the models (`_meta.db_table`), statuses and kinds are parameters. SQLite
has its own path, side by side (`sqlite`: IMMEDIATE transactions, statement by statement);
`recording.usage_record` picks the path.
"""

import datetime as dt
import json
import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from accounts.models import Membership, Organization, User
from asksage_admin.lib.months import month_start
from tokens.models import (
    ORG_DAILY_SHARDS,
    AllocationPolicy,
    ApiKey,
    DailyUsage,
    ModelGrant,
    MonthlyUsage,
    OrgDailyUsage,
    TokenKind,
    UsageEvent,
    UsageEventKey,
)
from tokens.selectors import DEFAULT_ALERT_THRESHOLDS
from tokens.services.auto_increase import policy_marks, policy_marks_reached
from tokens.usage_api.errors import (
    UsageError,
    check_user_may_use,
    invalid_key,
    key_reused,
    key_revoked,
    model_not_allowed,
    organization_inactive,
    over_limit,
    user_not_found,
)
from tokens.usage_api.keys import LAST_USED_RESOLUTION
from tokens.usage_api.results import Balance, UsageRequest, UsageResult

# Tables as {placeholders} (filled from the models below), values as %(parameters)s.
_STATEMENT = """
WITH r AS MATERIALIZED (
  SELECT (e->>0)::int AS ord, e->>1 AS kh, e->>2 AS email, e->>3 AS kind,
      (e->>4)::bigint AS tokens, e->>5 AS model, e->>6 AS idem, e->>7 AS fp
  FROM jsonb_array_elements(%(reports)s::jsonb) e
), k AS MATERIALIZED (
  SELECT ak.key_hash, ak.id AS key_id, ak.organization_id AS org_id,
      ak.revoked_at IS NOT NULL AS revoked, o.status AS org_status,
      o.status = %(active)s AND ak.revoked_at IS NULL AS usable,
      p.preset, p.step_mode, p.trigger_percent, p.alert_thresholds::text,
      o.models_restricted mr
  FROM (SELECT DISTINCT kh FROM r) h
  JOIN {apikey} ak ON ak.key_hash = h.kh
  JOIN {organization} o ON o.id = ak.organization_id
  LEFT JOIN {policy} p ON p.organization_id = o.id
), who AS (
  SELECT r.ord, k.org_id, u.mid, u.user_id, u.is_paid, u.is_banned, u.is_active,
      r.kind, r.tokens, r.model, r.idem, r.fp, NOT k.mr OR EXISTS (SELECT FROM {grant} g
      WHERE g.organization_id = k.org_id AND g.model = r.model
      AND g.audience IN ('', u.role, u.user_id::text)) ok
  FROM r JOIN k ON k.key_hash = r.kh AND k.usable
  CROSS JOIN LATERAL (
    SELECT mb.id AS mid, u.id AS user_id, u.is_paid, u.is_banned, u.is_active, mb.role
    FROM {user} u JOIN {membership} mb ON mb.user_id = u.id
    WHERE lower(u.email) = r.email AND mb.organization_id IS NOT DISTINCT FROM k.org_id
    LIMIT 1
  ) u
), m AS (
  SELECT who.*, CASE who.kind WHEN %(inference)s THEN mb.max_inference_tokens
      ELSE mb.max_embedding_tokens END AS max
  FROM who JOIN {membership} mb ON mb.id = who.mid
  FOR NO KEY UPDATE OF mb {skip_locked}
), prior AS (
  SELECT who.ord, e.* FROM who CROSS JOIN LATERAL (
    SELECT e.id, e.created_at, e.request_hash, e.used_after, e.max_after
    FROM {key} e WHERE e.idempotency_key = who.idem
      AND e.idempotency_key <> '' AND e.organization_id IS NOT DISTINCT FROM who.org_id
    LIMIT 1
  ) e
), counted AS (
  UPDATE {monthly} mu SET used = mu.used + m.tokens
  FROM m
  WHERE mu.user_id = m.user_id AND mu.kind = m.kind AND mu.month = %(month)s
    AND mu.organization_id = m.org_id AND mu.used + m.tokens <= m.max
    AND m.is_paid AND NOT m.is_banned AND m.is_active AND m.ok
    AND NOT EXISTS (SELECT FROM prior WHERE prior.ord = m.ord)
  RETURNING m.ord, m.org_id, mu.user_id, m.kind, m.tokens, m.model, m.idem, m.fp,
    m.max, mu.used
), t AS (
  UPDATE {membership} b SET total_used = total_used + tokens FROM counted c
  WHERE b.user_id = c.user_id
), event AS (
  INSERT INTO {event} (organization_id, user_id, kind, tokens, model, created_at,
      idempotency_key, request_hash, used_after, max_after)
  SELECT c.org_id, c.user_id, c.kind, c.tokens, c.model, %(now)s, c.idem,
      c.fp, c.used, c.max
  FROM counted c
  RETURNING id, user_id
), daily AS (
  INSERT INTO {daily} AS d (organization_id, user_id, kind, model, day, tokens, events)
  SELECT c.org_id, c.user_id, c.kind, c.model, %(day)s, c.tokens, 1
  FROM counted c
  ON CONFLICT (user_id, kind, model, day, organization_id)
  DO UPDATE SET tokens = d.tokens + excluded.tokens, events = d.events + 1
), org AS (
  INSERT INTO {orgdaily} AS o (organization_id, day, kind, model, shard, tokens, events)
  SELECT org_id, %(day)s, kind, model, pg_backend_pid() %% {shards}, SUM(tokens), COUNT(*)
  FROM counted GROUP BY org_id, kind, model ORDER BY org_id, kind, model
  ON CONFLICT (organization_id, day, kind, model, shard)
  DO UPDATE SET tokens = o.tokens + excluded.tokens, events = o.events + excluded.events
), touch AS (
  UPDATE {apikey} SET last_used_at = %(now)s WHERE id IN (
    SELECT id FROM {apikey} WHERE id IN (SELECT key_id FROM k WHERE usable)
      AND coalesce(last_used_at, '-infinity') < %(stale_before)s
    FOR NO KEY UPDATE SKIP LOCKED)
)
SELECT r.ord, k.key_id, k.revoked, k.org_status,
    k.preset, k.step_mode, k.trigger_percent, k.alert_thresholds,
    who.user_id, who.is_paid, who.is_banned, who.is_active, who.ok,
    m.ord IS NOT NULL, m.max, CASE WHEN c.used IS NULL THEN (
      SELECT used FROM {monthly} cur WHERE cur.user_id = who.user_id
      AND cur.kind = who.kind AND cur.month = %(month)s AND cur.organization_id = who.org_id
    ) END,
    prior.id, prior.created_at, prior.request_hash, prior.used_after, prior.max_after,
    c.used, event.id
FROM r
LEFT JOIN k ON k.key_hash = r.kh
LEFT JOIN who ON who.ord = r.ord
LEFT JOIN m ON m.ord = r.ord
LEFT JOIN prior ON prior.ord = r.ord
LEFT JOIN counted c ON c.ord = r.ord
LEFT JOIN event ON event.user_id = c.user_id
ORDER BY r.ord
"""

# The statement runs as a generic plan (planning it costs more than running it), made once
# per connection from the statistics of that moment, which may say a table is empty when it
# has since grown: a plan that scans a table it thought empty would slow down as it grows.
# So the per-report lookups are LATERAL … LIMIT 1 (run once per report, never flattened into
# a join the planner could turn around), each with one index to use: the user by email, the
# membership by user (both unique), the retry by its idempotency key (the keys' primary
# key, the key first, in each of the few months kept; `<> ''` is left from a partial index),
# the model's grant by its unique (organization, model, audience) index, and only for an
# organization that restricts its models (`NOT k.mr OR EXISTS …` stops at the flag). The
# organization is compared with IS NOT DISTINCT FROM, which no index serves: an index on the
# organization could otherwise look as cheap and read all of its rows.
# One line, under psycopg's 4 KiB limit for caching a query's parsing.
_TABLES = {
    name: '"' + model._meta.db_table + '"'
    for name, model in {
        "apikey": ApiKey,
        "organization": Organization,
        "policy": AllocationPolicy,
        "user": User,
        "membership": Membership,
        "event": UsageEvent,
        "key": UsageEventKey,
        "monthly": MonthlyUsage,
        "daily": DailyUsage,
        "orgdaily": OrgDailyUsage,
        "grant": ModelGrant,
    }.items()
}


def _one_line(sql: str) -> str:
    """The statement on one line, without the spaces after commas, around operators and
    parentheses (its only string literals, '' and '-infinity', hold none of them), and
    without the optional AS before a column's name (PostgreSQL ≥ 14 takes bare labels; a
    table's AS, followed by "(" or a CTE's, stays): it keeps under the 4 KiB limit."""
    line = " ".join(sql.split())
    for spaced in (", ", " = ", "( ", " )", " + ", " <= ", " <> ", " < ", " (", ") "):
        line = line.replace(spaced, spaced.strip())
    return re.sub(r" AS (\w+)(?=,| FROM )", r" \1", line)


BATCH_SQL = _one_line(
    _STATEMENT.format(skip_locked="SKIP LOCKED", shards=ORG_DAILY_SHARDS, **_TABLES)
)
ONE_SQL = _one_line(_STATEMENT.format(skip_locked="", shards=ORG_DAILY_SHARDS, **_TABLES))
assert "--" not in _STATEMENT and len(BATCH_SQL) < 4096

# The first usages of a month: their rows, created race-free (a concurrent creator wins
# quietly). `pairs` is a JSON array of [user id, kind].
ENSURE_MONTH_SQL = """
INSERT INTO {monthly} (organization_id, user_id, kind, month, used)
SELECT mb.organization_id, mb.user_id, e->>1, %(month)s, 0
FROM json_array_elements(%(pairs)s::json) e
JOIN {membership} mb ON mb.user_id = (e->>0)::bigint
ON CONFLICT (user_id, kind, month, organization_id) DO NOTHING
""".format(**_TABLES)


def ensure_month_params(pairs: Sequence[tuple[int, str]], now: dt.datetime) -> dict:
    return {"pairs": json.dumps(list(pairs)), "month": month_start(now)}


class Row(NamedTuple):
    """One report's row of the statement, in its SELECT order."""

    ord: int
    key_id: int | None
    revoked: bool | None
    org_status: str | None
    preset: str | None
    step_mode: str | None
    trigger_percent: int | None
    alert_thresholds: str | None
    user_id: int | None
    is_paid: bool | None
    is_banned: bool | None
    is_active: bool | None
    model_ok: bool | None
    locked: bool
    max: int | None
    seen_used: int | None
    prior_id: int | None
    prior_created_at: dt.datetime | None
    prior_hash: str | None
    prior_used: int | None
    prior_max: int | None
    used: int | None
    event_id: int | None


@dataclass(frozen=True, slots=True)
class Report:
    """One usage report, validated, with its key already hashed."""

    key_hash: str
    usage: UsageRequest
    idempotency_key: str


class Again(Exception):
    """The report was not settled by this run; `why` says what the alone-run must do."""

    LOCKED = "member row locked elsewhere"
    NO_MONTH_ROW = "first usage of the month"
    STALE = "refused, but the snapshot's balance would have allowed it"

    def __init__(self, why: str):
        self.why = why
        super().__init__(why)


class DuplicateReport(Exception):
    """The idempotency index refused the event: a report with this key committed first."""


def is_duplicate_report(exc: BaseException) -> bool:
    """Whether a database error is the keys' unique key refusing an event's claim (psycopg's
    own error, or Django's IntegrityError wrapping it). Reported by the month's partition
    (`tokens_usagekey_2026_12`), hence the prefix."""
    for error in (exc, exc.__cause__):
        diag = getattr(error, "diag", None)
        if (
            diag is not None
            and diag.sqlstate == "23505"
            and (diag.table_name or "").startswith(UsageEventKey._meta.db_table)
        ):
            return True
    return False


# The literals the statement compares with, as parameters: the models' own values.
_STATUSES = {"active": Organization.Status.ACTIVE.value, "inference": TokenKind.INFERENCE.value}


def params(reports: Sequence[Report], now: dt.datetime) -> dict:
    """The statement's parameters: the reports as one JSON array of arrays (one parameter
    is far cheaper for the driver to send than an array per column)."""
    rows = [
        [
            i,
            r.key_hash,
            r.usage.email,
            r.usage.kind,
            r.usage.tokens,
            r.usage.model,
            r.idempotency_key,
            r.usage.fingerprint if r.idempotency_key else "",
        ]
        for i, r in enumerate(reports)
    ]
    return {
        "reports": json.dumps(rows, separators=(",", ":")),
        "now": now,
        "stale_before": now - LAST_USED_RESOLUTION,
        "month": month_start(now),
        "day": now.astimezone(dt.UTC).date(),
        **_STATUSES,
    }


def settle(report: Report, row: Row, *, now: dt.datetime, waited: bool) -> UsageResult:
    """The answer to one report from its row: a result, or UsageError (refused) or Again.

    The checks come in the order of the API's contract: the key, the organization, the
    user's membership, a retry's recorded answer, the user's standing, then the count.
    `waited`: the row came from the statement that waits for row locks (`ONE_SQL`).
    """
    usage = report.usage
    if row.key_id is None:
        raise invalid_key()
    if row.revoked:
        raise key_revoked()
    if row.org_status != Organization.Status.ACTIVE:
        raise organization_inactive(row.org_status)
    if row.user_id is None:
        raise user_not_found()
    if row.prior_id is not None:
        if row.prior_hash != usage.fingerprint:
            raise key_reused()
        return UsageResult(
            event_id=row.prior_id,
            request=usage,
            month=month_start(row.prior_created_at),
            # A legacy event may have no recorded balance (`prior` reads it as stored).
            balance=Balance(usage.kind, row.prior_max or 0, row.prior_used or 0),
            replayed=True,
            user_id=row.user_id,
        )
    check_user_may_use(row)
    if not row.model_ok:
        raise model_not_allowed(usage.model)
    if not row.locked:
        # Waiting for the lock found the row gone (deleted meanwhile), or SKIP LOCKED passed it.
        if waited:
            raise user_not_found()
        raise Again(Again.LOCKED)
    if row.used is not None:
        return UsageResult(
            event_id=row.event_id,
            request=usage,
            month=month_start(now),
            balance=Balance(usage.kind, row.max, row.used),
            user_id=row.user_id,
            marks_reached=policy_marks_reached(_marks(row), row.used, row.max),
        )
    seen = row.seen_used
    if seen is None and usage.tokens <= row.max:
        raise Again(Again.NO_MONTH_ROW)
    if seen is not None and seen + usage.tokens <= row.max:
        raise Again(Again.STALE)
    raise over_limit(usage, Balance(usage.kind, row.max, seen or 0))


def _marks(row: Row) -> list[int]:
    if row.preset is None:  # the organization never chose a policy: Manual's alerts
        return list(DEFAULT_ALERT_THRESHOLDS)
    return policy_marks(
        preset=row.preset,
        step_mode=row.step_mode,
        trigger_percent=row.trigger_percent,
        alert_thresholds=json.loads(row.alert_thresholds or "[]"),
    )


Query = tuple[str, dict]
Flow = Generator[Query, list[tuple], UsageResult]

# Each pass either settles the report or fixes what stopped it (a month's row created, a
# concurrent duplicate committed, a fresher snapshot); three passes cover any one of those.
_PASSES = 3


def record_one(report: Report, now: dt.datetime) -> Flow:
    """Record one report alone, waiting for its member's row lock: the queries it needs, as a
    generator (send each query's rows back; throw DuplicateReport into it when the
    idempotency index refused the event). Returns the result or raises UsageError."""
    row = last = None
    for _ in range(_PASSES):
        try:
            rows = yield ONE_SQL, params([report], now)
        except DuplicateReport:
            continue  # the next pass finds the committed event and answers it
        row = Row._make(rows[0])
        try:
            return settle(report, row, now=now, waited=True)
        except Again as again:
            last = again
            if again.why == Again.NO_MONTH_ROW:
                yield ENSURE_MONTH_SQL, ensure_month_params([(row.user_id, report.usage.kind)], now)
    if row is not None and last is not None and last.why == Again.STALE:
        # Refused each time against a balance that kept moving: answer what the last pass saw.
        raise over_limit(report.usage, Balance(report.usage.kind, row.max, row.seen_used or 0))
    raise UsageError(
        503,
        "database_unavailable",
        "The usage could not be recorded for now; nothing was recorded. Retry later.",
    )


def run(flow: Flow, execute: Callable[[str, dict], list[tuple]]) -> UsageResult:
    """Drive a flow synchronously; `execute` runs one statement and returns its rows (none
    for a statement without results)."""
    try:
        query = next(flow)
        while True:
            try:
                rows = execute(*query)
            except Exception as exc:
                if not is_duplicate_report(exc):
                    raise
                query = flow.throw(DuplicateReport())
            else:
                query = flow.send(rows)
    except StopIteration as stop:
        return stop.value


# Behind a pooler in transaction mode, the same settings for one transaction (SET LOCAL):
# the next transaction may run on another server connection. plan_cache_mode is moot there,
# as nothing is prepared.
TRANSACTION_SETTINGS = (
    "SELECT set_config('jit', 'off', true), set_config('enable_seqscan', 'off', true),"
    " set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
)
