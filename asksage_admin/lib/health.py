"""Readiness: can this process serve requests? For /readyz (asksage_admin.ops.views).

Built in: the database answers, and every migration on disk is applied. Other parts add
theirs with `register_readiness_check(name, check)` (layer 0: any app may), e.g. the task
queue's "not stalled". A check returns nothing when all is well and raises `NotReady` (or
anything else) when not; the answer names only the failing check, never why, which goes to
the server log instead.
"""

import logging
import threading
import time
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

logger = logging.getLogger(__name__)

# A load balancer may ask every second from each of several nodes; reading the migration
# files and the applied list costs milliseconds, so one answer serves for this long.
MIGRATIONS_CHECK_SECONDS = 10.0


class NotReady(Exception):
    """Raised by a readiness check that fails; its message goes to the log only."""


def database_answers() -> None:
    """A `SELECT 1` on Django's own connection: the path the pages use (pool, timeouts).

    A connection that failed is dropped when the request finishes, as for any request
    (Django's close_old_connections), so the next probe connects afresh once it is back.
    """
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


_migrations_lock = threading.Lock()
_migrations_ok_until = 0.0


def migrations_applied() -> None:
    """No unapplied migration. A positive answer is reused for MIGRATIONS_CHECK_SECONDS."""
    global _migrations_ok_until
    if time.monotonic() < _migrations_ok_until:
        return
    with _migrations_lock:
        connection = connections[DEFAULT_DB_ALIAS]
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            raise NotReady(f"{len(plan)} migration(s) not applied, first {plan[0][0]}")
        _migrations_ok_until = time.monotonic() + MIGRATIONS_CHECK_SECONDS


def forget_migrations_check() -> None:
    """Ask again at the next probe (tests; a deploy hook after `migrate` may too)."""
    global _migrations_ok_until
    _migrations_ok_until = 0.0


_checks: dict[str, Callable[[], None]] = {
    "database": database_answers,
    "migrations": migrations_applied,
}


def register_readiness_check(name: str, check: Callable[[], None]) -> None:
    """Run `check` at each /readyz after the built-in ones; the same name replaces it."""
    _checks[name] = check


def readiness() -> dict[str, str]:
    """Each check's state: "ok", "failing", or "skipped" (when the database is down, the
    checks after it would only wait for it again)."""
    states: dict[str, str] = {}
    for name, check in _checks.items():
        if states.get("database") == "failing":
            states[name] = "skipped"
            continue
        try:
            check()
        except Exception as exc:
            logger.warning("readiness check failed", extra={"check": name, "reason": str(exc)})
            states[name] = "failing"
        else:
            states[name] = "ok"
    return states
