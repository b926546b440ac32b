"""The task queue as a load balancer and Prometheus see it: how many tasks are due, and
whether the oldest due task has waited so long that no worker can be running.

Registered with /readyz and /metrics when `tokens.apps.TokensConfig.ready` imports it. A
stalled queue means emails and the policy after usage silently stop; /readyz makes it loud.
"""

import datetime as dt

from django.conf import settings
from django.db.models import Min, Q
from django.utils import timezone
from django_tasks_db.models import DBTaskResult, get_date_max

from asksage_admin.lib.health import NotReady, register_readiness_check
from asksage_admin.lib.metrics import register_queue_depth


def queue_depth() -> int:
    """Tasks due now and not yet picked up by a worker."""
    return DBTaskResult.objects.ready().count()


def oldest_due(now: dt.datetime) -> dt.datetime | None:
    """Since when the longest-waiting due task has been due: its run_after, or its
    enqueue time when it had none (django-tasks-db stores "none" as the largest date)."""
    no_delay = Q(run_after=get_date_max())
    oldest = DBTaskResult.objects.ready().aggregate(
        no_delay=Min("enqueued_at", filter=no_delay), delayed=Min("run_after", filter=~no_delay)
    )
    moments = [moment for moment in oldest.values() if moment is not None]
    return min(moments) if moments else None


def queue_not_stalled() -> None:
    """Fails once a due task has waited TASK_QUEUE_STALL_SECONDS (0: never fails)."""
    limit = settings.TASK_QUEUE_STALL_SECONDS
    if not limit:
        return
    now = timezone.now()
    since = oldest_due(now)
    if since is not None and (now - since).total_seconds() > limit:
        waited = int((now - since).total_seconds())
        raise NotReady(f"the oldest due task has waited {waited} s: is a worker running?")


register_readiness_check("tasks", queue_not_stalled)
register_queue_depth("default", queue_depth)
