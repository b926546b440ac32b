"""The model catalogue (sales) and each organization's model grants; sales may view, add and
change catalogue models (re-sync the staff groups with accounts.staff_roles).

No grant is created: organizations stay unrestricted (accounts 0005), so every model they
used keeps working.
"""

import django.db.models.deletion
import django.utils.timezone
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

from accounts.staff_roles import SALES, SALES_LEAD, sync_staff_groups

# The groups as they were when this migration was written (accounts 0008 re-syncs to later
# ones: the permissions it adds do not exist yet here).
_SALES_AT_0023 = [
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
    "tokens.view_platformmodel",
    "tokens.add_platformmodel",
    "tokens.change_platformmodel",
]
GROUPS_AT_0023 = {
    SALES: _SALES_AT_0023,
    SALES_LEAD: [
        *_SALES_AT_0023,
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
        # apps; restore what was there (as tokens 0014 does).
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    sync_staff_groups(
        apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), GROUPS_AT_0023
    )


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0007_organization_models_restricted'),
        ('tokens', '0022_membership_total_used_backfill'),
    ]

    operations = [
        migrations.CreateModel(
            name='PlatformModel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text='Exactly as the gateway reports it, e.g. gpt-4o.', max_length=100, unique=True)),
                ('display_name', models.CharField(help_text='What people read, e.g. GPT-4o.', max_length=100)),
                ('kind', models.CharField(choices=[('inference', 'Inference'), ('embedding', 'Embedding')], default='inference', max_length=10)),
                ('active', models.BooleanField(default=True, help_text='Offered to organizations. Deactivating withdraws it from every organization that enabled it by name.')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'verbose_name': 'model',
                'verbose_name_plural': 'models (catalogue)',
                'ordering': ['kind', 'display_name'],
                'constraints': [models.CheckConstraint(condition=models.Q(('kind__in', ['inference', 'embedding'])), name='platform_model_kind_valid')],
            },
        ),
        migrations.CreateModel(
            name='ModelGrant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('audience', models.CharField(blank=True, max_length=20)),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organization')),
                ('model', models.ForeignKey(db_column='model', db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='grants', to='tokens.platformmodel', to_field='name')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('organization', 'model', 'audience'), name='model_grant_unique')],
            },
        ),
        migrations.RunPython(sync_groups, migrations.RunPython.noop),
    ]
