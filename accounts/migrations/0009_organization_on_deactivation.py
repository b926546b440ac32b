"""What a deactivation does to a member's allocation (issue 17): by default it goes back to
the pool, as the issue asks; sales may choose to keep it per organization."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0008_identity_providers'),
    ]

    operations = [
        migrations.AddField(
            model_name='organization',
            name='on_deactivation',
            field=models.CharField(choices=[('return', 'Return the allocation to the pool'), ('keep', 'Keep the allocation')], default='return', help_text="Return: a banned member's maxima go to 0 and the tokens back to the pool; re-activation gives the floors again, if the pool covers them.", max_length=10, verbose_name='when a member is deactivated'),
        ),
    ]
