"""Cumulative usage through each closed month (`analytics.cumulative`), backfilled from
MonthlyUsage for every month already closable, so the page reads it from the first request.

The backfill is a frozen copy of the closing (migrations keep their own history): month by
month, all organizations at once, each month's running totals the previous month's plus the
month's MonthlyUsage; then each closed month's totals per organization and kind. A month an
organization had not started yet gets nothing. Without it the page would still be right (it
reads MonthlyUsage where no month is closed), only slower until the hourly task ran.
"""

import datetime as dt

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Min, Sum
from django.utils import timezone

CLOSE_AFTER = dt.timedelta(minutes=15)
KINDS = ("inference", "embedding")


def _add_month(month, count):
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def backfill(apps, schema_editor):
    monthly = apps.get_model("tokens", "MonthlyUsage")
    cum = apps.get_model("analytics", "CumulativeUsage")
    closed = apps.get_model("analytics", "ClosedUsageMonth")
    connection = schema_editor.connection
    quote, adapt = connection.ops.quote_name, connection.ops.adapt_datefield_value
    now = (timezone.now() - CLOSE_AFTER).date()
    through = _add_month(now.replace(day=1), -1)
    starts = dict(
        monthly.objects.values_list("organization_id").annotate(m=Min("month")).order_by()
    )
    totals = {
        (org, month, kind): used
        for org, month, kind, used in monthly.objects.filter(month__lte=through)
        .values_list("organization_id", "month", "kind")
        .annotate(used=Sum("used"))
        .order_by()
    }
    sql = (
        f"INSERT INTO {quote(cum._meta.db_table)} "
        "(organization_id, user_id, kind, month, total) "
        "SELECT organization_id, user_id, kind, %s, SUM(t) FROM ("
        f"SELECT organization_id, user_id, kind, total AS t FROM {quote(cum._meta.db_table)} "
        "WHERE month = %s UNION ALL "
        f"SELECT organization_id, user_id, kind, used FROM {quote(monthly._meta.db_table)} "
        "WHERE month = %s) AS running "
        "GROUP BY organization_id, user_id, kind HAVING SUM(t) > 0"
    )
    month = min(starts.values(), default=None)
    while month is not None and month <= through:
        with connection.cursor() as cursor:
            cursor.execute(sql, [adapt(month), adapt(_add_month(month, -1)), adapt(month)])
        closed.objects.bulk_create(
            closed(organization_id=org, month=month, kind=kind, used=totals.get((org, month, kind), 0))
            for org, start in starts.items()
            if start <= month
            for kind in KINDS
        )
        month = _add_month(month, 1)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0007_organization_models_restricted'),
        ('tokens', '0023_model_catalogue'),
        ('analytics', '0006_forecast_snapshot'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ClosedUsageMonth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('month', models.DateField()),
                ('kind', models.CharField(max_length=10)),
                ('used', models.BigIntegerField()),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('organization', 'month', 'kind'), name='closed_usage_month_one_row')],
            },
        ),
        migrations.CreateModel(
            name='CumulativeUsage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(max_length=10)),
                ('month', models.DateField()),
                ('total', models.BigIntegerField()),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                ('user', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('organization', 'month', 'user', 'kind'), name='cumulative_usage_one_row')],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
