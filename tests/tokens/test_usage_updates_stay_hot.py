"""The rows every usage report updates in place (the member's lifetime total, the month's
balance, the day's rollups) change only unindexed columns, and on PostgreSQL their pages keep
room for the new version: the updates are HOT (no index writes). accounts 0011, tokens 0007
and 0025."""

import importlib
import re
from types import SimpleNamespace

import pytest
from django.db import connection

from accounts.models import Membership
from tokens.models import DailyUsage, MonthlyUsage, OrgDailyUsage

# The columns the usage statement adds to, per table.
ADDED_TO = {
    Membership: {"total_used"},
    MonthlyUsage: {"used"},
    DailyUsage: {"tokens", "events"},
    OrgDailyUsage: {"tokens", "events"},
}
FILLFACTORS = {Membership: 80, MonthlyUsage: 80, DailyUsage: 70, OrgDailyUsage: 70}


@pytest.mark.django_db
@pytest.mark.parametrize("model", list(ADDED_TO), ids=lambda m: m.__name__)
def test_no_index_holds_a_column_each_usage_report_adds_to(model):
    table = model._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
        indexed = {
            name: set(info["columns"]) for name, info in constraints.items() if info["index"]
        }
        if connection.vendor == "postgresql":  # INCLUDE columns count for HOT too
            cursor.execute(
                "SELECT i.relname, a.attname FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid"
                " JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey)"
                " WHERE x.indrelid = %s::regclass",
                [table],
            )
            for name, column in cursor.fetchall():
                indexed.setdefault(name, set()).add(column)
    assert {
        name: cols & ADDED_TO[model] for name, cols in indexed.items() if cols & ADDED_TO[model]
    } == {}


# The migrations that set each table's fillfactor on PostgreSQL (SQLite has no such option).
FILLFACTOR_MIGRATIONS = {
    "accounts.migrations.0011_membership_total_updates_stay_hot": "leave_room_for_updates",
    "tokens.migrations.0007_daily_usage_updates_stay_hot": "leave_room_for_updates",
    "tokens.migrations.0025_usage_rollups_updates_stay_hot": "leave_room_for_updates",
}


class _RecordingEditor:
    """A schema editor that says it is PostgreSQL's and keeps the SQL it is given."""

    def __init__(self):
        self.connection = SimpleNamespace(vendor="postgresql")
        self.sql: list[str] = []

    def execute(self, sql, params=None):
        self.sql.append(sql)


def _fillfactors_the_migrations_set() -> dict[str, int]:
    editor = _RecordingEditor()
    for module, function in FILLFACTOR_MIGRATIONS.items():
        getattr(importlib.import_module(module), function)(None, editor)
    found = {}
    for sql in editor.sql:
        if match := re.fullmatch(r"ALTER TABLE (\w+) SET \(fillfactor = (\d+)\)", sql):
            found[match[1]] = int(match[2])
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("model", list(FILLFACTORS), ids=lambda m: m.__name__)
def test_pages_keep_room_for_the_updated_rows_on_postgresql(model):
    """What the migrations tell PostgreSQL (checked on either database) and, on PostgreSQL,
    what the table holds."""
    table = model._meta.db_table
    assert _fillfactors_the_migrations_set()[table] == FILLFACTORS[model]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [table])
            options = cursor.fetchone()[0] or []
        assert f"fillfactor={FILLFACTORS[model]}" in options
