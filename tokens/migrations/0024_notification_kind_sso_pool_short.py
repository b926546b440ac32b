"""Notification kind `sso_pool_short`: the admins' alert when a newcomer's first single sign-on is
refused because the pool cannot cover the floor (it reused `usage_alert` before)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tokens", "0023_model_catalogue"),
    ]

    operations = [
        migrations.AlterField(
            model_name="notification",
            name="kind",
            field=models.CharField(
                choices=[
                    ("request_approved", "Request approved"),
                    ("request_denied", "Request denied"),
                    ("limit_changed", "Limit changed"),
                    ("usage_alert", "Usage alert"),
                    ("sso_pool_short", "Single sign-on refused"),
                ],
                max_length=20,
            ),
        ),
    ]
