"""OrgDailyUsage gets a shard column, part of its unique key (see the model): concurrent usage
statements of one organization no longer queue on the same rollup rows. Existing rows are
shard 0 (a database default, so raw INSERTs that name no shard write 0), so the rollup's sums are unchanged."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0011_membership_total_updates_stay_hot"),
        ("tokens", "0026_usage_keys_claimed_per_statement"),
    ]

    operations = [
        migrations.AddField(
            model_name="orgdailyusage",
            name="shard",
            field=models.SmallIntegerField(db_default=0),
        ),
        migrations.AddConstraint(
            model_name="orgdailyusage",
            constraint=models.UniqueConstraint(
                fields=("organization", "day", "kind", "model", "shard"),
                name="org_daily_usage_one_row_per_shard",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="orgdailyusage",
            name="org_daily_usage_one_row",
        ),
    ]
