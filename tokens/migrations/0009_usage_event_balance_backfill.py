"""Events recorded before 0004 kept no balance: give those a retry could still name (they have
an Idempotency-Key) the balance their retry used to be answered with (the month's usage and
the user's max as they are now), so every path answers a retry from the event alone."""

from django.db import migrations
from django.db.models import Q

CHUNK = 1000


def backfill(apps, schema_editor):
    UsageEvent = apps.get_model("tokens", "UsageEvent")
    MonthlyUsage = apps.get_model("tokens", "MonthlyUsage")
    Membership = apps.get_model("accounts", "Membership")
    legacy = (
        UsageEvent.objects.filter(Q(used_after=None) | Q(max_after=None))
        .exclude(idempotency_key="")
        .order_by("pk")
    )
    # A chunk at a time, three queries each: its events, their members' maxes, their months.
    while chunk := list(legacy[:CHUNK]):
        users = {event.user_id for event in chunk}
        maxes = {
            m["user_id"]: m
            for m in Membership.objects.filter(user_id__in=users).values(
                "user_id", "max_inference_tokens", "max_embedding_tokens"
            )
        }
        used = {
            (row["user_id"], row["kind"], row["month"]): row["used"]
            for row in MonthlyUsage.objects.filter(user_id__in=users).values(
                "user_id", "kind", "month", "used"
            )
        }
        for event in chunk:
            month = event.created_at.date().replace(day=1)
            member = maxes.get(event.user_id, {})
            event.used_after = used.get((event.user_id, event.kind, month)) or 0
            event.max_after = member.get(f"max_{event.kind}_tokens") or 0
        UsageEvent.objects.bulk_update(chunk, ["used_after", "max_after"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_auditor_role"),
        ("tokens", "0008_idempotency_index_key_first"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
