"""PostgreSQL: the usage events and their idempotency keys become tables partitioned by UTC
month (`tokens.partitions` keeps them; SQLite keeps plain tables and this does nothing there).

Each table is rebuilt under its own name: the old one renamed aside, a partitioned parent
created with the same columns, defaults and checks, a partition per month that holds rows
(plus the current month and the next two, and a DEFAULT partition as a safety net), the rows
copied, the old table dropped, then the primary key, indexes and foreign keys recreated with
their old names (the events' primary key becomes (id, created_at): PostgreSQL wants the
partition key in it). The events' id sequence carries on from where it was (an owned
sequence: PostgreSQL 15 has no identity columns on partitioned tables). Last, the trigger
that claims each event's Idempotency-Key in `tokens_usagekey` (see `UsageEventKey`).

One transaction, so a failure leaves the old tables as they were. It copies every event:
plan the upgrade's downtime by the table's size. The reverse rebuilds plain tables the same way.
"""

import re

from django.db import migrations
from django.utils import timezone

from asksage_admin.lib.months import add_months, month_start

EVENTS, KEYS = "tokens_usageevent", "tokens_usagekey"
TRIGGER, FUNCTION = "usage_event_claims_its_key", "tokens_usage_event_claim_key"
KEY_COLUMNS = (
    "idempotency_key, organization_id, month, id, created_at, request_hash, used_after, max_after"
)

# Claim the key in the event's month, and in the previous month too on a month's first UTC
# day: a report of the 31st at 23:59 and its retry on the 1st then collide on one row. Plain
# INSERT … VALUES: measured, about a third of the cost of one INSERT … SELECT over an array.
CLAIM_SQL = f"""
CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  first date := date_trunc('month', NEW.created_at AT TIME ZONE 'UTC')::date;
BEGIN
  INSERT INTO {KEYS} ({KEY_COLUMNS}) VALUES (NEW.idempotency_key, NEW.organization_id, first,
      NEW.id, NEW.created_at, NEW.request_hash, NEW.used_after, NEW.max_after);
  IF NEW.created_at AT TIME ZONE 'UTC' < first + 1 THEN
    INSERT INTO {KEYS} ({KEY_COLUMNS}) VALUES (NEW.idempotency_key, NEW.organization_id,
        (first - interval '1 month')::date, NEW.id, NEW.created_at, NEW.request_hash,
        NEW.used_after, NEW.max_after);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER {TRIGGER} BEFORE INSERT ON {EVENTS}
  FOR EACH ROW WHEN (NEW.idempotency_key <> '') EXECUTE FUNCTION {FUNCTION}();
"""
DROP_CLAIM_SQL = f"DROP TRIGGER {TRIGGER} ON {EVENTS}; DROP FUNCTION {FUNCTION}();"


def _rows(cursor, sql, params=()):
    cursor.execute(sql, params)
    return cursor.fetchall()


def _months(cursor, table, month_sql, first, last):
    months = {m for (m,) in _rows(cursor, f"SELECT DISTINCT {month_sql} FROM {table}")}
    month = first
    while month <= last:
        months.add(month)
        month = add_months(month, 1)
    return sorted(months)


def _rebuild(cursor, table, *, partition=None, primary_key=None, sequence=False):
    """Long because it is the whole rebuild, step by step, in the order the names allow.

    `partition`: (column, month SQL, bound format, first month, last month), or None to
    rebuild a plain table. `primary_key`: the new key's columns (None keeps them)."""
    aside = f"{table}_rebuilt_from"
    cursor.execute(f"ALTER TABLE {table} RENAME TO {aside}")
    oid = f"'{aside}'::regclass"
    pk_name, pk_def = _rows(
        cursor,
        f"SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        f"WHERE conrelid = {oid} AND contype = 'p'",
    )[0]
    if primary_key:
        pk_def = f"PRIMARY KEY ({primary_key})"
    foreign = _rows(
        cursor,
        f"SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        f"WHERE conrelid = {oid} AND contype = 'f'",
    )
    indexes = _rows(
        cursor,
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        f"JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = {oid} AND NOT i.indisprimary",
    )
    if sequence:
        (seq,) = _rows(cursor, "SELECT pg_get_serial_sequence(%s, 'id')", [aside])[0]
        last_value, is_called = _rows(cursor, f"SELECT last_value, is_called FROM {seq}")[0]
    like = f"(LIKE {aside} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    if partition is None:
        cursor.execute(f"CREATE TABLE {table} {like}")
    else:
        column, month_sql, bound, first, last = partition
        cursor.execute(f"CREATE TABLE {table} {like} PARTITION BY RANGE ({column})")
        for month in _months(cursor, aside, month_sql, first, last):
            low, high = bound.format(month), bound.format(add_months(month, 1))
            cursor.execute(
                f"CREATE TABLE {table}_{month:%Y_%m} PARTITION OF {table} "
                f"FOR VALUES FROM ('{low}') TO ('{high}')"
            )
        cursor.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    if sequence:
        cursor.execute(f"ALTER TABLE {table} ALTER id DROP DEFAULT")
    cursor.execute(f"INSERT INTO {table} SELECT * FROM {aside}")
    cursor.execute(f"DROP TABLE {aside} CASCADE")
    if sequence:
        seq = f"{table}_id_seq"
        cursor.execute(f"CREATE SEQUENCE {seq} AS bigint OWNED BY {table}.id")
        cursor.execute("SELECT setval(%s, %s, %s)", [seq, last_value, is_called])
        cursor.execute(f"ALTER TABLE {table} ALTER id SET DEFAULT nextval('{seq}')")
    cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {pk_name} {pk_def}")
    for _name, definition in indexes:
        cursor.execute(re.sub(rf" ON (ONLY )?(\S+\.)?{aside} ", f" ON {table} ", definition))
    for name, definition in foreign:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    now = month_start(timezone.now())
    utc_month = "date_trunc('month', created_at AT TIME ZONE 'UTC')::date"
    with schema_editor.connection.cursor() as cursor:
        _rebuild(
            cursor,
            EVENTS,
            partition=("created_at", utc_month, "{} 00:00:00+00", now, add_months(now, 2)),
            primary_key="id, created_at",
            sequence=True,
        )
        _rebuild(
            cursor, KEYS, partition=("month", "month", "{}", add_months(now, -1), add_months(now, 2))
        )
        cursor.execute(CLAIM_SQL)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(DROP_CLAIM_SQL)
        _rebuild(cursor, EVENTS, primary_key="id", sequence=True)
        _rebuild(cursor, KEYS)


class Migration(migrations.Migration):
    dependencies = [("tokens", "0017_usage_event_keys")]

    operations = [migrations.RunPython(partition, unpartition)]
