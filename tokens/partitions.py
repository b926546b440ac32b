"""Monthly partitions of the usage events and of their idempotency keys, on PostgreSQL.

The events (`UsageEvent`) are partitioned by the UTC month of `created_at`, the keys
(`UsageEventKey`) by their `month` (migration 0018). Each table also has a DEFAULT partition:
a safety net, so a report never fails because no scheduler created its month in time. The
daily sweep (`partitions_sweep`, task `usage_partitions_sweep`) creates the current month and
the next `AHEAD` ones before they are needed, moves any row the DEFAULT partition caught into
its month's partition (normally none: a month created ahead never sends rows there), and drops
key partitions older than the previous month (`KEY_MONTHS`). Old event months are dropped by
`tokens.retention`.

A month is created as a table of its own (`LIKE` the parent), filled with the DEFAULT
partition's rows of that month, then attached: attaching builds its indexes and clones the
key-claiming trigger, which therefore never fires for moved rows. Every step is DDL inside
the caller's transaction: all or nothing. On SQLite there are no partitions: the sweep
deletes the keys past their window, and retention deletes old events (`tokens.retention`).
"""

import datetime as dt
import re

from django.db import connection, transaction

from asksage_admin.lib.months import add_months
from tokens.models import UsageEvent, UsageEventKey

EVENTS = UsageEvent._meta.db_table
KEYS = UsageEventKey._meta.db_table
# The partitioning column of each table, and how a month's bound is written for it.
_COLUMNS = {EVENTS: ("created_at", "{} 00:00:00+00"), KEYS: ("month", "{}")}
# Months created ahead of the current one; key months kept (the current and the previous).
AHEAD = 2
KEY_MONTHS = 2
# How long DDL may wait for the usage statements' locks before giving up (the run is recorded
# as failed and the next night tries again): a waiting ALTER would hold every report behind it.
LOCK_TIMEOUT = "5s"


def partition_name(table: str, month: dt.date) -> str:
    return f"{table}_{month:%Y_%m}"


def default_name(table: str) -> str:
    return f"{table}_default"


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def is_partitioned(table: str = EVENTS) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def month_partitions(table: str) -> dict[dt.date, str]:
    """The table's month partitions by month (the DEFAULT one aside)."""
    pattern = re.compile(rf"^{re.escape(table)}_(\d{{4}})_(\d{{2}})$")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [table],
        )
        names = [name for (name,) in cursor.fetchall()]
    found = {}
    for name in names:
        if match := pattern.match(name):
            found[dt.date(int(match[1]), int(match[2]), 1)] = name
    return found


def _bounds(table: str, month: dt.date) -> tuple[str, str, str]:
    column, literal = _COLUMNS[table]
    low = literal.format(month.isoformat())
    high = literal.format(add_months(month, 1).isoformat())
    return column, low, high


def _lock_timeout(cursor) -> None:
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])


@transaction.atomic
def month_create(table: str, month: dt.date) -> bool:
    """Create the table's partition for `month` unless it exists, with the DEFAULT
    partition's rows of that month moved into it. Returns whether it was created."""
    if month in month_partitions(table):
        return False
    column, low, high = _bounds(table, month)
    name, parent, default = (
        _quote(n) for n in (partition_name(table, month), table, default_name(table))
    )
    with connection.cursor() as cursor:
        _lock_timeout(cursor)
        like = f"LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
        cursor.execute(f"CREATE TABLE {name} ({like})")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE {column} >= %s AND {column} < %s "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            [low, high],
        )
        cursor.execute(
            f"ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            [low, high],
        )
    return True


@transaction.atomic
def month_drop(table: str, month: dt.date) -> None:
    """Detach the month's partition, then drop it: no row is deleted one by one."""
    name = _quote(partition_name(table, month))
    with connection.cursor() as cursor:
        # Foreign-key checks deferred to the commit would refuse the drop: run them now (a
        # month this old has none pending, unless written in this very transaction).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        _lock_timeout(cursor)
        cursor.execute(f"ALTER TABLE {_quote(table)} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")


def months_in_default(table: str) -> list[dt.date]:
    """Months of the rows the DEFAULT partition caught (normally none)."""
    column, _ = _COLUMNS[table]
    month = f"date_trunc('month', {column} AT TIME ZONE 'UTC')::date"
    if table == KEYS:
        month = column
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT {month} FROM {_quote(default_name(table))}")
        return sorted(row[0] for row in cursor.fetchall())


def months_ensure(first: dt.date, last: dt.date) -> list[str]:
    """Partitions of both tables for every month from `first` to `last` (seeding a range of
    past months, say). Returns the names created."""
    if not is_partitioned():
        return []
    created = []
    month = first
    while month <= last:
        for table in (EVENTS, KEYS):
            if month_create(table, month):
                created.append(partition_name(table, month))
        month = add_months(month, 1)
    return created


def partitions_sweep(*, month: dt.date) -> dict[str, list[str]]:
    """The daily maintenance for the UTC month `month` (see the module): returns the
    partitions created and the key partitions dropped."""
    oldest_key = add_months(month, -(KEY_MONTHS - 1))
    if not is_partitioned():  # SQLite: the keys past the window are deleted instead
        old = UsageEventKey.objects.filter(month__lt=oldest_key)
        count = old._raw_delete(old.db)
        return {"created": [], "dropped": [f"{count} key row(s)"] if count else []}
    created = months_ensure(add_months(month, -(KEY_MONTHS - 1)), add_months(month, AHEAD))
    for table in (EVENTS, KEYS):
        for stray in months_in_default(table):
            if month_create(table, stray):
                created.append(partition_name(table, stray))
    dropped = []
    for key_month in sorted(month_partitions(KEYS)):
        if key_month < oldest_key:
            month_drop(KEYS, key_month)
            dropped.append(partition_name(KEYS, key_month))
    return {"created": created, "dropped": dropped}
