"""Table names for hand-written SQL, from the models (`_meta.db_table`), never spelled out."""

from django.db import connection


def table(model) -> str:
    """The model's table, quoted for Django's connection (PostgreSQL and SQLite quote alike)."""
    return connection.ops.quote_name(model._meta.db_table)
