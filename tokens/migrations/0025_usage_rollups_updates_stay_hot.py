"""The rows every usage report updates in place (its month's MonthlyUsage row, its day's
organization rollup) change only unindexed columns, so their updates can be HOT, when the
page has room for the new version: pages keep some free (fillfactor), as DailyUsage's do
since 0007. OrgDailyUsage has a few rows a day, each updated by every batch: 70, as
DailyUsage; MonthlyUsage one row per member and month: 80."""

from django.db import migrations

_FILLFACTORS = {"tokens_monthlyusage": 80, "tokens_orgdailyusage": 70}


def leave_room_for_updates(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table, fillfactor in _FILLFACTORS.items():
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {fillfactor})")


def fill_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in _FILLFACTORS:
            schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("tokens", "0024_notification_kind_sso_pool_short"),
    ]

    operations = [
        migrations.RunPython(leave_room_for_updates, fill_pages),
    ]
