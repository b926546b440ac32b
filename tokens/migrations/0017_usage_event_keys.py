"""Idempotency keys move to a table of their own (`UsageEventKey`, see its docstring): the
events are about to be partitioned by month (0018), and a partitioned table's unique index
must hold the partition key. The keys of the current and the previous month's events are
copied over, so a retry of a report recorded before the upgrade is still answered."""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

from asksage_admin.lib.months import add_months, month_start

_COLUMNS = "idempotency_key, organization_id, month, id, created_at, request_hash, used_after, max_after"


def copy_recent_keys(apps, schema_editor):
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    events = quote(apps.get_model("tokens", "UsageEvent")._meta.db_table)
    keys = quote(apps.get_model("tokens", "UsageEventKey")._meta.db_table)
    since = add_months(month_start(timezone.now()), -1)
    if connection.vendor == "postgresql":
        month = "date_trunc('month', created_at AT TIME ZONE 'UTC')::date"
        since_value = f"{since.isoformat()} 00:00:00+00"
    else:  # SQLite stores UTC times as text
        month = "date(created_at, 'start of month')"
        since_value = f"{since.isoformat()} 00:00:00"
    select = _COLUMNS.replace("month", month, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {keys} ({_COLUMNS}) SELECT {select} FROM {events} "
            "WHERE idempotency_key <> '' AND created_at >= %s",
            [since_value],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_staff_groups_audit_app"),
        ("tokens", "0016_org_daily_usage_backfill"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageEventKey",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "idempotency_key",
                        "organization",
                        "month",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("idempotency_key", models.CharField(max_length=200)),
                (
                    "organization",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="accounts.organization",
                    ),
                ),
                ("month", models.DateField()),
                ("id", models.BigIntegerField(help_text="The usage event's id.")),
                ("created_at", models.DateTimeField()),
                ("request_hash", models.CharField(blank=True, max_length=64)),
                ("used_after", models.BigIntegerField(blank=True, null=True)),
                ("max_after", models.BigIntegerField(blank=True, null=True)),
            ],
            options={"db_table": "tokens_usagekey"},
        ),
        migrations.RunPython(copy_recent_keys, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="usageevent", name="event_idempotency_unique"),
    ]
