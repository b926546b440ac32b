"""Seal the rows written before the chain existed, in id order, one chain per organization."""

from django.db import migrations

from audit import chain


def seal(apps, schema_editor):
    AuditLog = apps.get_model("analytics", "AuditLog")
    AuditChain = apps.get_model("analytics", "AuditChain")
    heads = {}
    batch = []
    for row in AuditLog.objects.order_by("id").iterator(chunk_size=2000):
        row.chain = chain.chain_key(row.organization_id)
        seq, prev = heads.get(row.chain, (0, chain.GENESIS))
        chain._normalise(row)
        row.seq, row.prev_hash = seq + 1, prev
        row.hash = chain.row_hash(row)
        heads[row.chain] = (row.seq, row.hash)
        batch.append(row)
        if len(batch) == 2000:
            AuditLog.objects.bulk_update(batch, ["chain", "seq", "prev_hash", "hash", "ip", "details"])
            batch = []
    if batch:
        AuditLog.objects.bulk_update(batch, ["chain", "seq", "prev_hash", "hash", "ip", "details"])
    AuditChain.objects.bulk_create(
        AuditChain(key=key, last_seq=seq, last_hash=last) for key, (seq, last) in heads.items()
    )


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0002_audit_chain'),
    ]

    operations = [
        migrations.RunPython(seal, migrations.RunPython.noop),
    ]
