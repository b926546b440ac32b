"""Membership.total_used, the member's lifetime usage in the organization (backfilled by
tokens 0021), and indexes that serve each User Management sort: (organization, column, user),
the user being the table's tiebreak."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_staff_groups_audit_app'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='membership',
            name='membership_org_maxinf_idx',
        ),
        migrations.RemoveIndex(
            model_name='membership',
            name='membership_org_maxemb_idx',
        ),
        migrations.AddField(
            model_name='membership',
            name='total_used',
            field=models.BigIntegerField(db_default=0, default=0, help_text='Tokens used in this organization, ever.'),
        ),
        migrations.AddIndex(
            model_name='membership',
            index=models.Index(fields=['organization', 'max_inference_tokens', 'user'], name='membership_org_maxinf_idx'),
        ),
        migrations.AddIndex(
            model_name='membership',
            index=models.Index(fields=['organization', 'max_embedding_tokens', 'user'], name='membership_org_maxemb_idx'),
        ),
        migrations.AddIndex(
            model_name='membership',
            index=models.Index(fields=['organization', 'total_used', 'user'], name='membership_org_total_idx'),
        ),
        migrations.AddConstraint(
            model_name='membership',
            constraint=models.CheckConstraint(condition=models.Q(('total_used__gte', 0)), name='membership_total_used_non_negative'),
        ),
    ]
