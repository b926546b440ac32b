"""Events recorded before 0004 kept no balance: give those a retry could still name (they have
an Idempotency-Key) the balance their retry used to be answered with (the month's usage and
the user's max as they are now), so every path answers a retry from the event alone."""

from django.db import migrations
from django.db.models import Q


def backfill(apps, schema_editor):
    UsageEvent = apps.get_model("tokens", "UsageEvent")
    MonthlyUsage = apps.get_model("tokens", "MonthlyUsage")
    Membership = apps.get_model("accounts", "Membership")
    legacy = UsageEvent.objects.filter(Q(used_after=None) | Q(max_after=None)).exclude(
        idempotency_key=""
    )
    for event in legacy.iterator(chunk_size=1000):
        month = event.created_at.date().replace(day=1)
        used = (
            MonthlyUsage.objects.filter(user_id=event.user_id, kind=event.kind, month=month)
            .values_list("used", flat=True)
            .first()
        )
        limit = (
            Membership.objects.filter(user_id=event.user_id)
            .values_list(f"max_{event.kind}_tokens", flat=True)
            .first()
        )
        UsageEvent.objects.filter(pk=event.pk).update(used_after=used or 0, max_after=limit or 0)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_auditor_role"),
        ("tokens", "0008_idempotency_index_key_first"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
