"""Backfill the organization rollup from DailyUsage, grouped in one INSERT … SELECT.

From DailyUsage rather than UsageEvent: DailyUsage is written in the same transaction as
each event, keyed by the same (organization, UTC day, kind, model) plus the user, so its sum
over users is exactly the events' sum; and it is what the statistics page showed until now
(rows seeded without events included), so the page's numbers do not change. It reads one row
per user and day, not one per event. `manage.py verify_usage_rollup` checks the result.
"""

from django.db import migrations


def backfill(apps, schema_editor):
    daily = apps.get_model("tokens", "DailyUsage")
    rollup = apps.get_model("tokens", "OrgDailyUsage")
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quote(rollup._meta.db_table)}")
        cursor.execute(
            f"INSERT INTO {quote(rollup._meta.db_table)} "
            "(organization_id, day, kind, model, tokens, events) "
            "SELECT organization_id, day, kind, model, SUM(tokens), SUM(events) "
            f"FROM {quote(daily._meta.db_table)} GROUP BY organization_id, day, kind, model"
        )


class Migration(migrations.Migration):
    dependencies = [("tokens", "0015_org_daily_usage_rollup")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
