"""The "Sales lead" group reads the audit log under its new label, `audit.view_auditlog`.

`audit` 0001 relabelled the content type in place, so on an existing database the group
already holds the same permission row; this re-syncs the groups with `accounts.staff_roles`
all the same (and on a fresh database creates the permissions first, as 0003 does).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.staff_roles import SALES, SALES_LEAD, sync_staff_groups

# The groups as they were when this migration was written (tokens 0014 re-syncs to later
# ones): 0003's, with the audit log under its new label.
_SALES_AT_0004 = [
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
GROUPS_AT_0004 = {
    SALES: _SALES_AT_0004,
    SALES_LEAD: [
        *_SALES_AT_0004,
        "accounts.reset_second_factor",
        "accounts.set_user_password",
        "audit.view_auditlog",
    ],
}


def sync_groups(apps, schema_editor):
    for label in ("accounts", "tokens", "audit"):
        app_config = apps.get_app_config(label)
        # A historical app config has no models module, and create_permissions skips such
        # apps; restore what was there (a test runs this with the live app registry).
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    sync_staff_groups(
        apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), GROUPS_AT_0004
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_staff_groups"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(sync_groups, migrations.RunPython.noop),
    ]
