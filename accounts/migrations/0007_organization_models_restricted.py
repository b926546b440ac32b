"""Organizations may restrict which models their members use (issue 20).

Every existing organization gets `models_restricted = False`: every model stays allowed, as
before, and the usage API reads no grant row for them, until an admin narrows the list on the
Admin Panel's Models page.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_user_search_trigram_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='organization',
            name='models_restricted',
            field=models.BooleanField(default=False, help_text="Only the models the organization's admins enabled may be used."),
        ),
    ]
