"""Deployment checks (`manage.py check --deploy`): what production needs from the environment;
and one of the database (`migrate`, `check --database default`)."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import connections


@register(Tags.security, deploy=True)
def site_url_is_https(app_configs, **kwargs) -> list[Error]:
    """Emails link to SITE_URL: without it they say "See your limits at /"."""
    if settings.SITE_URL.startswith("https://"):
        return []
    return [
        Error(
            "SITE_URL is not set to the console's https address.",
            hint="Set SITE_URL=https://admin.example.gov: links in emails are built from it.",
            id="ops.E001",
        )
    ]


@register(Tags.database)
def jit_off_behind_a_pooler(app_configs, databases=None, **kwargs) -> list[Warning]:
    """Behind a pooler (DATABASE_POOLER) no connection asks for `jit = off` at start-up:
    the database must say so itself, else a query whose estimated cost grows past
    jit_above_cost is compiled on each run (60 ms for the usage statement)."""
    if settings.DATABASE_POOLER == "none" or "default" not in (databases or ()):
        return []
    connection = connections["default"]
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit'), current_database()")
        jit, name = cursor.fetchone()
    if jit == "off":
        return []
    return [
        Warning(
            "JIT compilation is on for this database, and DATABASE_POOLER sends no "
            "start-up option to turn it off.",
            hint=(
                f'Run once on the server: ALTER DATABASE "{name}" SET jit = off; then RECONNECT '
                "in PgBouncer's admin console: its open server connections keep the old value."
            ),
            id="ops.W002",
        )
    ]
