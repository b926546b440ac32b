"""The analytics app's periodic tasks: the nightly full verification of the audit trail's
hash chains, the forecast snapshots of the statistics page (`analytics.snapshots`), and the
closing of each month's cumulative usage (`analytics.cumulative`).

The verification is enqueued by `manage.py crontask`, run by `manage.py db_worker`, once a
night however many schedulers run (`tokens.periodic.run_once`). Its outcome, "N chain(s)
intact" or the broken chains, is kept on the night's `PeriodicRun` row (in /staff/) and logged;
a broken chain is logged as an error. Each walk is recorded on its chain's verified checkpoint
(`audit.checkpoints`: bookkeeping, not audited), so the Activity badge says when the last full
verification ran and shows a break it found.
"""

import logging

from crontask import cron
from django.tasks import TaskContext, task

from analytics.cumulative import cumulative_close_due
from analytics.snapshots import snapshots_refresh_stale
from audit.checkpoints import checkpoint_verify_full
from tokens.periodic import day_period, hour_period, run_once, scheduled_at

logger = logging.getLogger(__name__)


def verify_all_chains() -> str:
    verdicts = checkpoint_verify_full()
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


@cron("*/5 * * * *", sentry_monitor_config=None)
@task
def forecast_snapshots_refresh() -> str:
    """Every 5 minutes: the statistics page's "users at risk" recomputed for each active
    organization whose snapshot is due (`analytics.snapshots`). Idempotent: a second run at
    once recomputes the same rows; a run that finds nothing due does nothing."""
    return snapshots_refresh_stale()


@cron("20 * * * *", sentry_monitor_config=None)
@task(takes_context=True)
def cumulative_usage_close(context: TaskContext) -> str:
    """Hourly: close the months due in each organization's cumulative usage, catching up
    any missed and rebuilding any whose usage changed since (`analytics.cumulative`)."""
    when = scheduled_at(context)
    return run_once(
        job="cumulative_usage_close",
        period=hour_period(when),
        work=lambda: cumulative_close_due(when),
    )
