"""Backfill Membership.total_used from MonthlyUsage: the member's usage in their
organization, both kinds, every month.

From MonthlyUsage rather than UsageEvent: it is what User Management's "Total usage" summed
until now (rows seeded without events included), so the page's numbers do not change; and
each of its rows is written in the same transaction as the events it counts.
`manage.py verify_usage_rollup` checks the result against the events.
"""

from django.db import migrations


def backfill(apps, schema_editor):
    membership = apps.get_model("accounts", "Membership")
    monthly = apps.get_model("tokens", "MonthlyUsage")
    quote = schema_editor.connection.ops.quote_name
    members, usage = quote(membership._meta.db_table), quote(monthly._meta.db_table)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {members} SET total_used = COALESCE((SELECT SUM(mu.used) FROM {usage} mu "
            f"WHERE mu.user_id = {members}.user_id "
            f"AND mu.organization_id = {members}.organization_id), 0)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_membership_total_used"),
        ("tokens", "0021_notifications"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
