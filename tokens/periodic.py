"""Periodic jobs that run once per period, however many schedulers enqueue them.

With N servers, N schedulers (`manage.py crontask`) each enqueue every periodic task; and a
worker may pick a task twice (a retry, a restart). The period a run belongs to is taken from
when the task was enqueued (a run that starts late still counts for the period it was
scheduled in), and one `PeriodicRun` row per (job, period), claimed by an INSERT that the
unique constraint lets through once, decides which run does the work. The claim commits
before the work: a second run, even concurrent, sees it and stops. A failing run is kept as
FAILED with its error, visible in /staff/; the management commands re-run a job by hand.
"""

import datetime as dt
import logging
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.tasks import TaskContext
from django.utils import timezone

from tokens.models import PeriodicRun

logger = logging.getLogger(__name__)


def month_period(when: dt.datetime) -> str:
    return timezone.localtime(when).strftime("%Y-%m")


def day_period(when: dt.datetime) -> str:
    return timezone.localtime(when).strftime("%Y-%m-%d")


def hour_period(when: dt.datetime) -> str:
    return timezone.localtime(when).strftime("%Y-%m-%dT%H")


def scheduled_at(context: TaskContext | None) -> dt.datetime:
    """When the task was enqueued (now, for a direct call)."""
    enqueued = context.task_result.enqueued_at if context is not None else None
    return enqueued or timezone.now()


def run_once(*, job: str, period: str, work: Callable[[], str]) -> str:
    """Run `work` unless this (job, period) was claimed already; record its outcome.

    Returns the summary `work` returned, or why nothing ran.
    """
    try:
        with transaction.atomic():
            run = PeriodicRun.objects.create(job=job, period=period)
    except IntegrityError:
        logger.info("%s for %s ran already", job, period)
        return f"{job} {period}: ran already"
    try:
        summary = work()
    except Exception as exc:
        PeriodicRun.objects.filter(pk=run.pk).update(
            status=PeriodicRun.Status.FAILED,
            summary=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        raise
    PeriodicRun.objects.filter(pk=run.pk).update(
        status=PeriodicRun.Status.DONE, summary=summary, finished_at=timezone.now()
    )
    return summary
