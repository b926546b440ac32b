"""Recording a usage on SQLite: the recording transaction statement by statement.

One short IMMEDIATE transaction (SQLite serializes writers, so no row locks are needed) that

1. finds the member in the key's organization (`members.membership_for`) and checks they may
   use tokens and the model (`members.model_allowed`);
2. adds the tokens with one conditional UPDATE: `used = used + n WHERE … AND used + n <= max`
   (the database enforces the limit: no read-modify-write race), creating the month's row
   when it is the first usage of the month, and adds them to the member's lifetime total
   (Membership.total_used, User Management's "Total usage");
3. inserts the usage event and claims its Idempotency-Key (`UsageEventKey`, in its month, and
   in the previous one on a month's first day): the keys' unique key refuses a concurrent
   retry, which is answered from the recorded event (`answer_replay`); a later retry is
   found before anything is written;
4. adds the tokens to the day's rollups with upserts: the user's (DailyUsage) and the
   organization's (OrgDailyUsage, what the statistics read).

PostgreSQL does the same in one statement (`postgres`). The usage events are the audit of
usage: no AuditLog row per event (it would double the write cost of the hot path).
"""

import datetime as dt

from django.db import connection, transaction

from accounts.models import Membership, Organization
from asksage_admin.lib.months import month_start
from tokens.models import (
    DailyUsage,
    MonthlyUsage,
    OrgDailyUsage,
    UsageEvent,
    UsageEventKey,
    column_for_kind,
)
from tokens.usage_api.errors import check_user_may_use, key_reused, model_not_allowed, over_limit
from tokens.usage_api.members import membership_for, model_allowed
from tokens.usage_api.results import Balance, UsageRequest, UsageResult
from tokens.usage_api.tables import table


def _write_in_steps(
    *,
    org_id: int,
    user_id: int,
    usage: UsageRequest,
    now: dt.datetime,
    month: dt.date,
    limit: int,
    idempotency_key: str,
) -> tuple[int, int] | None:
    """Count the tokens, record the event, add to the day; None when the UPDATE matched
    nothing (no row for the month yet, or over the max) and nothing was written.

    A reused idempotency key raises IntegrityError at its claim.
    """
    adapt = connection.ops
    with connection.cursor() as cursor:
        # The one conditional UPDATE: the limit is enforced by the database, not by a read.
        cursor.execute(
            f"UPDATE {table(MonthlyUsage)} SET used = used + %s "
            "WHERE user_id = %s AND kind = %s AND month = %s AND organization_id = %s "
            "AND used + %s <= %s RETURNING used",
            [usage.tokens, user_id, usage.kind, adapt.adapt_datefield_value(month), org_id]
            + [usage.tokens, limit],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        # The member's lifetime total (User Management's "Total usage"), as PostgreSQL's `t`.
        cursor.execute(
            f"UPDATE {table(Membership)} SET total_used = total_used + %s "
            "WHERE user_id = %s AND organization_id = %s",
            [usage.tokens, user_id, org_id],
        )
        cursor.execute(
            f"INSERT INTO {table(UsageEvent)} (organization_id, user_id, kind, tokens, model, "
            "created_at, idempotency_key, request_hash, used_after, max_after) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [org_id, user_id, usage.kind, usage.tokens, usage.model]
            + [adapt.adapt_datetimefield_value(now), idempotency_key]
            + [usage.fingerprint if idempotency_key else "", row[0], limit],
        )
        event_id = cursor.fetchone()[0]
        if idempotency_key:
            _claim_key(
                cursor, idempotency_key, org_id, event_id, now, usage.fingerprint, row[0], limit
            )
        cursor.execute(
            f"INSERT INTO {_DAILY} (organization_id, user_id, kind, model, day, tokens, events) "
            f"VALUES (%s, %s, %s, %s, %s, %s, 1) {_DAILY_CONFLICT}",
            [org_id, user_id, usage.kind, usage.model]
            + [adapt.adapt_datefield_value(_utc_day(now)), usage.tokens],
        )
        cursor.execute(
            f"INSERT INTO {_ORG_DAILY} (organization_id, day, kind, model, tokens, events) "
            f"VALUES (%s, %s, %s, %s, %s, 1) {_ORG_DAILY_CONFLICT}",
            [org_id, adapt.adapt_datefield_value(_utc_day(now)), usage.kind, usage.model]
            + [usage.tokens],
        )
    return row[0], event_id


def _claim_key(cursor, key: str, org_id: int, event_id: int, now: dt.datetime, *answer) -> None:
    """The event's key in each month it claims (`UsageEventKey.months_claimed`), in one
    statement; `answer`: the body's hash, the balance's used and max."""
    adapt = connection.ops
    months = UsageEventKey.months_claimed(now)
    cursor.execute(
        f"INSERT INTO {_KEYS} (idempotency_key, organization_id, month, id, created_at, "
        "request_hash, used_after, max_after) VALUES "
        + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(months)),
        [
            value
            for month in months
            for value in [key, org_id, adapt.adapt_datefield_value(month), event_id]
            + [adapt.adapt_datetimefield_value(now), *answer]
        ],
    )


def _utc_day(now: dt.datetime) -> dt.date:
    return now.astimezone(dt.UTC).date()


_KEYS = table(UsageEventKey)
_DAILY = table(DailyUsage)
_DAILY_CONFLICT = (
    "ON CONFLICT (user_id, kind, model, day, organization_id) DO UPDATE "
    f"SET tokens = {_DAILY}.tokens + excluded.tokens, events = {_DAILY}.events + 1"
)
_ORG_DAILY = table(OrgDailyUsage)
_ORG_DAILY_CONFLICT = (
    "ON CONFLICT (organization_id, day, kind, model, shard) DO UPDATE "
    f"SET tokens = {_ORG_DAILY}.tokens + excluded.tokens, events = {_ORG_DAILY}.events + 1"
)


def _month_used(*, org_id: int, user_id: int, kind: str, month: dt.date) -> int | None:
    row = MonthlyUsage.objects.filter(
        organization_id=org_id, user_id=user_id, kind=kind, month=month
    ).values_list("used", flat=True)
    return next(iter(row), None)


def answer_replay(
    *, org: Organization, usage: UsageRequest, idempotency_key: str
) -> UsageResult | None:
    """The recorded answer for a retried key; 409 when the key came with another body."""
    if not idempotency_key:
        return None
    event = (
        UsageEventKey.objects.filter(organization=org, idempotency_key=idempotency_key)
        .only("id", "created_at", "request_hash", "used_after", "max_after")
        .first()
    )
    if event is None:
        return None
    if event.request_hash != usage.fingerprint:
        raise key_reused()
    membership = membership_for(org, usage.email)
    # The balance the first answer gave: a retry answers exactly what was first said.
    used, limit = event.used_after or 0, event.max_after or 0
    return UsageResult(
        event_id=event.id,
        request=usage,
        month=month_start(event.created_at),
        balance=Balance(usage.kind, limit, used),
        replayed=True,
        user_id=membership.user_id,
    )


@transaction.atomic
def record_in_steps(
    *, org: Organization, usage: UsageRequest, idempotency_key: str, now: dt.datetime
) -> UsageResult:
    """SQLite: the recording transaction statement by statement (see the module's steps)."""
    membership = membership_for(org, usage.email, lock=True)
    user = membership.user
    # A retry answers what was first said, even to a user since banned or at the max, or for
    # a model since disabled. Looked up first: a key is unique within a month only
    # (`UsageEventKey`).
    replay = answer_replay(org=org, usage=usage, idempotency_key=idempotency_key)
    if replay is not None:
        return replay
    check_user_may_use(user)
    if not model_allowed(membership, usage.model):
        raise model_not_allowed(usage.model)
    limit = getattr(membership, column_for_kind(usage.kind))
    month = month_start(now)
    write = _write_in_steps
    args = {
        "org_id": org.pk,
        "user_id": user.pk,
        "usage": usage,
        "now": now,
        "month": month,
        "limit": limit,
        "idempotency_key": idempotency_key,
    }
    written = write(**args)
    if written is None:
        current = _month_used(org_id=org.pk, user_id=user.pk, kind=usage.kind, month=month)
        if current is None:
            # First usage of the month: create the row; a concurrent creator is not an error.
            MonthlyUsage.objects.bulk_create(
                [MonthlyUsage(organization=org, user=user, kind=usage.kind, month=month)],
                ignore_conflicts=True,
            )
            written = write(**args)
            current = 0
    if written is None:
        raise over_limit(usage, Balance(usage.kind, limit, current))
    used, event_id = written
    return UsageResult(
        event_id=event_id,
        request=usage,
        month=month,
        balance=Balance(usage.kind, limit, used),
        user_id=user.pk,
    )
