"""Sales see the email outbox (failed deliveries) and sales leads the periodic runs (the
nightly audit verification among them): re-sync the staff groups with accounts.staff_roles."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.staff_roles import SALES, SALES_LEAD, sync_staff_groups

# The groups as they were when this migration was written (tokens 0020 re-syncs to later ones).
_SALES_AT_0014 = [
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
    "tokens.view_emaildelivery",
]
GROUPS_AT_0014 = {
    SALES: _SALES_AT_0014,
    SALES_LEAD: [
        *_SALES_AT_0014,
        "accounts.reset_second_factor",
        "accounts.set_user_password",
        "audit.view_auditlog",
        "tokens.view_periodicrun",
    ],
}


def sync_groups(apps, schema_editor):
    for label in ("accounts", "tokens", "audit"):
        app_config = apps.get_app_config(label)
        # A historical app config has no models module, and create_permissions skips such
        # apps; restore what was there (as accounts 0004 does).
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    sync_staff_groups(
        apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), GROUPS_AT_0014
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_staff_groups_audit_app"),
        ("tokens", "0013_background_work"),
    ]

    operations = [
        migrations.RunPython(sync_groups, migrations.RunPython.noop),
    ]
