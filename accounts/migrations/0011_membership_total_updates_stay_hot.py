"""Every usage report adds to its member's `total_used`. While that column was in an index
(membership_org_total_idx, for User Management's sort by Total usage), each of those updates
wrote a new entry in every index of the table (non-HOT: 2k of 318k HOT in a benchmark run).
Unindexed, they are HOT updates, and PostgreSQL's pages keep room for them (fillfactor 80).
User Management's sort by Total usage now sorts the organization's members: at 100,000 its
query takes 47 ms instead of 2 ms (benchmarks/README.md, 2026-12-02)."""

from django.db import migrations


def leave_room_for_updates(apps, schema_editor):
    """PostgreSQL: pages keep 20 % free, so an update fits next to its row (HOT)."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE accounts_membership SET (fillfactor = 80)")


def fill_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE accounts_membership RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0010_sso_and_deactivation_wording"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="membership",
            name="membership_org_total_idx",
        ),
        migrations.RunPython(leave_room_for_updates, fill_pages),
    ]
