"""The audit trail moves from `analytics` to its own app, without moving a byte.

The tables keep their names (`analytics_auditlog`, `analytics_auditchain`, set in the models'
`Meta.db_table`), so this only tells Django's state that the models now belong to `audit`
(`analytics` 0005 forgets them there). The content types are relabelled in place, so their ids,
and with them the permissions (`view_auditlog` held by the "Sales lead" group) and the admin's
history entries, carry over.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MOVED = ("auditlog", "auditchain")


def relabel_content_types(apps, schema_editor, old="analytics", new="audit"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MOVED:
        if ContentType.objects.using(db).filter(app_label=new, model=model).exists():
            continue  # already there (nothing to carry over)
        ContentType.objects.using(db).filter(app_label=old, model=model).update(app_label=new)
    ContentType.objects.clear_cache()


def relabel_back(apps, schema_editor):
    relabel_content_types(apps, schema_editor, old="audit", new="analytics")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0001_initial"),
        # After the staff groups were made (they created the content types relabelled here).
        ("accounts", "0003_staff_groups"),
        ("analytics", "0004_audit_chain_seq_unique"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="AuditChain",
                    fields=[
                        ("key", models.CharField(max_length=40, primary_key=True, serialize=False)),
                        ("last_seq", models.BigIntegerField(default=0)),
                        (
                            "last_hash",
                            models.CharField(
                                default="0000000000000000000000000000000000000000000000000000000000000000",
                                max_length=64,
                            ),
                        ),
                    ],
                    options={"db_table": "analytics_auditchain"},
                ),
                migrations.CreateModel(
                    name="AuditLog",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("actor_label", models.CharField(blank=True, max_length=100)),
                        ("action", models.CharField(max_length=50)),
                        ("column", models.CharField(blank=True, max_length=30)),
                        ("old_value", models.CharField(blank=True, max_length=100)),
                        ("new_value", models.CharField(blank=True, max_length=100)),
                        ("batch_id", models.UUIDField(blank=True, null=True)),
                        ("details", models.JSONField(blank=True, default=dict)),
                        ("ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("chain", models.CharField(default="", editable=False, max_length=40)),
                        ("seq", models.BigIntegerField(default=0, editable=False)),
                        ("prev_hash", models.CharField(default="", editable=False, max_length=64)),
                        ("hash", models.CharField(default="", editable=False, max_length=64)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "organization",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="accounts.organization",
                            ),
                        ),
                        (
                            "target_user",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "analytics_auditlog",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["organization", "created_at"],
                                name="analytics_a_organiz_db4618_idx",
                            ),
                            models.Index(
                                fields=["organization", "action", "created_at"],
                                name="analytics_a_organiz_2a53c0_idx",
                            ),
                            models.Index(
                                fields=["target_user", "created_at"],
                                name="analytics_a_target__4ae0e0_idx",
                            ),
                            models.Index(fields=["batch_id"], name="analytics_a_batch_i_9a3a58_idx"),
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("chain", "seq"), name="audit_chain_seq_unique"
                            )
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(relabel_content_types, relabel_back),
    ]
