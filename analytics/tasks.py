"""Nightly full verification of the audit trail's hash chains, as a periodic task.

Enqueued by `manage.py crontask`, run by `manage.py db_worker`, once a night however many
schedulers run (`tokens.periodic.run_once`). Its outcome, "N chain(s) intact" or the broken
chains, is kept on the night's `PeriodicRun` row (in /staff/) and logged; a broken chain is
logged as an error. It only reads: nothing to audit.
"""

import logging

from crontask import cron
from django.tasks import TaskContext, task

from audit import integrity
from tokens.periodic import day_period, run_once, scheduled_at

logger = logging.getLogger(__name__)


def verify_all_chains() -> str:
    verdicts = integrity.verify_all()
    broken = [v for v in verdicts if not v.intact]
    if broken:
        report = "; ".join(str(v) for v in broken)
        logger.error(
            "audit verification: %d of %d chain(s) broken: %s", len(broken), len(verdicts), report
        )
        return f"{len(broken)} of {len(verdicts)} chain(s) broken: {report}"
    return f"{len(verdicts)} chain(s) intact."


@cron("30 2 * * *", sentry_monitor_config=None)
@task(takes_context=True)
def verify_audit_nightly(context: TaskContext) -> str:
    """Every night: check every organization's audit chain from its first row."""
    return run_once(
        job="verify_audit", period=day_period(scheduled_at(context)), work=verify_all_chains
    )
