"""Trigram indexes for User Management's search by name or email (PostgreSQL only).

The search is `icontains` (`UPPER(column::text) LIKE UPPER('%…%')`), which no B-tree serves:
without these, the page's count and its rows each read every user. A GIN trigram index on the
same expression answers it from the index, in milliseconds at 100,000 users. pg_trgm ships
with PostgreSQL and is a trusted extension (PostgreSQL 13+: the database's owner may create
it). SQLite has no such index and needs none at its sizes: nothing is done there.
"""

from django.db import migrations

COLUMNS = {"user_name_trgm_idx": "name", "user_email_trgm_idx": "email"}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    table = quote(apps.get_model("accounts", "User")._meta.db_table)
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for index, column in COLUMNS.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(index)} ON {table} "
            f"USING gin (UPPER({quote(column)}::text) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(index)}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_membership_total_used")]

    operations = [migrations.RunPython(create, drop)]
