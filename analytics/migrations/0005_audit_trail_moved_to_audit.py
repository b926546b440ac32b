"""The audit trail now belongs to the `audit` app (its 0001): forget the models here, keep
the tables (they keep their names, so no data moves)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0004_audit_chain_seq_unique"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="AuditLog"),
                migrations.DeleteModel(name="AuditChain"),
            ],
        ),
    ]
