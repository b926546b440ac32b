"""The staff groups "Sales" and "Sales lead" with their model permissions.

Permissions are normally created after all migrations ran (post_migrate); on a fresh database
they do not exist yet here, so they are created first for the apps the groups draw on.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.staff_roles import GROUPS, sync_staff_groups


def create_groups(apps, schema_editor):
    for label in ("accounts", "tokens", "analytics"):
        app_config = apps.get_app_config(label)
        # A migration's app configs have no models module, so create_permissions would skip
        # them; lend one for the call and give back what was there (never clear the real
        # registry's: post_migrate would then skip these apps' permissions for good).
        had_one = hasattr(app_config, "models_module")
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            if had_one:
                app_config.models_module = original
            else:
                del app_config.models_module
    sync_staff_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUPS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_auditor_role"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tokens", "0009_usage_event_balance_backfill"),
        ("analytics", "0004_audit_chain_seq_unique"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="user",
            options={
                "permissions": [
                    (
                        "reset_second_factor",
                        "Can reset the second factor of a user who is not staff",
                    ),
                    ("set_user_password", "Can set the password of a user who is not staff"),
                ]
            },
        ),
        migrations.RunPython(create_groups, remove_groups),
    ]
