"""The staff groups "Sales" and "Sales lead" with their model permissions.

Permissions are normally created after all migrations ran (post_migrate); on a fresh database
they do not exist yet here, so they are created first for the apps the groups draw on.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.staff_roles import GROUPS, SALES, SALES_LEAD, sync_staff_groups

# The groups as they were when this migration was written: the audit log was then
# `analytics.auditlog` (it moved to `audit`; accounts 0004 re-syncs to today's groups).
_SALES_AT_0003 = [
    "accounts.view_organization",
    "accounts.add_organization",
    "accounts.change_organization",
    "accounts.view_membership",
    "accounts.add_membership",
    "accounts.change_membership",
    "accounts.delete_membership",
    "accounts.view_user",
    "accounts.add_user",
    "accounts.change_user",
    "tokens.view_purchase",
    "tokens.add_purchase",
    "tokens.view_purchaserequest",
    "tokens.change_purchaserequest",
    "tokens.view_monthlyusage",
    "tokens.view_usageevent",
    "tokens.view_tokenrequest",
    "tokens.view_allocationpolicy",
]
GROUPS_AT_0003 = {
    SALES: _SALES_AT_0003,
    SALES_LEAD: [
        *_SALES_AT_0003,
        "accounts.reset_second_factor",
        "accounts.set_user_password",
        "analytics.view_auditlog",
    ],
}


def create_groups(apps, schema_editor):
    for label in ("accounts", "tokens", "analytics"):
        app_config = apps.get_app_config(label)
        # A historical app config has no models module, and create_permissions skips such
        # apps; restore what was there (a test runs this with the live app registry).
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    sync_staff_groups(
        apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), GROUPS_AT_0003
    )


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
