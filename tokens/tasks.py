"""The tokens app's background tasks: the policy after a usage report, and the periodic jobs.

Run by `manage.py db_worker`; the periodic ones are enqueued by `manage.py crontask`
(django-crontask imports every app's `tasks` module and schedules what `@cron` marks). Each
is idempotent: the policy acts under the organization's row lock and its alerts are once a
month (`AlertSent`); a periodic job runs once per period (`tokens.periodic.run_once`); the
email sweep only enqueues emails whose rows say they are still to send. Every write they make
goes through the same services as before, so each leaves its audit row.
"""

import datetime as dt
import logging

from crontask import cron
from django.conf import settings
from django.tasks import TaskContext, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import Organization, User
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.months import month_start
from asksage_admin.lib.wording import counted
from tokens.mail import email_retry_due
from tokens.models import TokenKind
from tokens.partitions import partitions_sweep
from tokens.periodic import day_period, hour_period, month_period, run_once, scheduled_at
from tokens.retention import usage_retention_apply
from tokens.rollup import org_daily_usage_fold
from tokens.services import auto_increase as auto_increase_services
from tokens.services import distribution as distribution_services

logger = logging.getLogger(__name__)


@task
def usage_policy_after_report(user_id: int, kind: str) -> int | None:
    """The auto-increase policy and the usage alerts for one user and kind, after a usage
    report committed. Returns the new max, or None when nothing changed (run twice, the
    second run finds the cooldown or the alert already sent, and changes nothing)."""
    return auto_increase_services.auto_increase_apply(user=User(pk=user_id), kind=kind)


def reclaim_idle_all() -> str:
    """Reclaim every active organization's idle allocations, each kind (as `reclaim_idle
    --apply`); an organization that refuses is logged and skipped."""
    total, refused = 0, []
    for org in Organization.objects.filter(status=Organization.Status.ACTIVE).order_by("pk"):
        for kind in TokenKind.values:
            plan = distribution_services.reclaim_plan(org=org, kind=kind)
            if not plan.rows:
                continue
            try:
                distribution_services.reclaim_apply(
                    admin=None, org=org, kind=kind, signature=plan.signature
                )
            except DomainError as exc:
                refused.append(f"{org.slug}/{kind}: {' '.join(exc.messages)}")
                continue
            total += -plan.delta
    if refused:
        logger.warning("month-start reclamation refused for %s", "; ".join(refused))
    return f"Reclaimed {counted(total, 'token')}." + (
        f" Refused: {'; '.join(refused)}" if refused else ""
    )


@cron("5 0 1 * *", sentry_monitor_config=None)
@task(takes_context=True)
def reclaim_month_start(context: TaskContext) -> str:
    """Month start: idle users' unused allocation back to the pools, once a month."""
    period = month_period(scheduled_at(context))
    return run_once(job="reclaim_idle", period=period, work=reclaim_idle_all)


@cron("0 * * * *", sentry_monitor_config=None)
@task(takes_context=True)
def auto_increase_sweep(context: TaskContext) -> str:
    """Hourly: the policy for everyone at or above a trigger (after a preset change), and
    the pool alerts that a purchase ending at the month's turn calls for."""
    period = hour_period(scheduled_at(context))

    def work() -> str:
        done = auto_increase_services.auto_increase_run()
        return f"{len(done)} increase(s) applied."

    return run_once(job="auto_increase", period=period, work=work)


@cron("*/5 * * * *", sentry_monitor_config=None)
@task
def email_retry_sweep() -> int:
    """Every 5 minutes: enqueue the emails whose retry is due, or whose enqueue was lost."""
    return email_retry_due()


@cron("15 3 * * *", sentry_monitor_config=None)
@task(takes_context=True)
def task_results_prune(context: TaskContext) -> str:
    """Nightly: forget the task queue's finished results after TASK_RESULTS_KEEP_DAYS (the
    queue's own hygiene, as django-tasks-db's prune_db_task_results; the domain's retention
    is elsewhere). Emails keep their outbox row."""

    def work() -> str:
        cutoff = timezone.now() - dt.timedelta(days=settings.TASK_RESULTS_KEEP_DAYS)
        deleted, _ = DBTaskResult.objects.finished().filter(finished_at__lte=cutoff).delete()
        return f"Deleted {deleted} finished task result(s)."

    return run_once(job="task_results_prune", period=day_period(scheduled_at(context)), work=work)


def usage_partitions_summary(when: dt.datetime) -> str:
    """The partition sweep for `when`'s UTC month, as one line (the task and the command)."""
    done = partitions_sweep(month=month_start(when))
    return (
        f"Created {len(done['created'])} partition(s): {', '.join(done['created']) or 'none'}; "
        f"dropped {len(done['dropped'])} key partition(s): {', '.join(done['dropped']) or 'none'}."
    )


def usage_retention_summary(when: dt.datetime) -> str:
    dropped = usage_retention_apply(now=when)
    months = ", ".join(f"{month:%Y-%m} ({events:,} events)" for month, events in dropped)
    return f"Dropped {len(dropped)} month(s) of usage events: {months or 'none'}."


@cron("10 0 * * *", sentry_monitor_config=None)
@task(takes_context=True)
def usage_partitions_sweep(context: TaskContext) -> str:
    """Nightly (PostgreSQL): the usage events' and keys' partitions of this month and the next
    two, stray rows out of the DEFAULT partitions, key months past the window dropped
    (`tokens.partitions`). Each step finds its work done when run again."""
    when = scheduled_at(context)
    return run_once(
        job="usage_partitions", period=day_period(when), work=lambda: usage_partitions_summary(when)
    )


@cron("30 0 * * *", sentry_monitor_config=None)
@task(takes_context=True)
def org_daily_usage_fold_nightly(context: TaskContext) -> str:
    """Nightly: the organization rollup's shards of past days folded into one row each
    (`tokens.rollup.org_daily_usage_fold`)."""
    when = scheduled_at(context)

    def work() -> str:
        folded = org_daily_usage_fold(today=when.astimezone(dt.UTC).date())
        return f"Folded {folded} organization rollup row(s) into shard 0."

    return run_once(job="org_daily_usage_fold", period=day_period(when), work=work)


@cron("45 3 * * *", sentry_monitor_config=None)
@task(takes_context=True)
def usage_retention(context: TaskContext) -> str:
    """Nightly: usage events older than USAGE_RETENTION_MONTHS dropped, a whole month at a
    time with an audit row each; the rollups stay (`tokens.retention`)."""
    when = scheduled_at(context)
    return run_once(
        job="usage_retention", period=day_period(when), work=lambda: usage_retention_summary(when)
    )
