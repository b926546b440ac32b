"""The policy hook: what runs after a usage is recorded, on both doors.

The one place both doors call (`recording.usage_record` for the view, `fastpath` through a
thread). It only enqueues: the auto-increase policy and the usage alerts are a background
task (`tokens.tasks.usage_policy_after_report`), so a report's answer never waits for them
and a slow policy never holds a usage request.
"""

import logging

from tokens.tasks import usage_policy_after_report
from tokens.usage_api.results import UsageResult

logger = logging.getLogger(__name__)


def after_usage_recorded(result: UsageResult) -> UsageResult:
    """Enqueue the policy for this user and kind once the usage committed; never undo it.

    Only usage at or above the organization's lowest mark enqueues (`policy_may_act`). The
    answer reports the max as recorded; an increase the task grants shows in the next answer
    and in the panel. A failure to enqueue is logged; the recorded usage still answers 200
    (the hourly `auto_increase_sweep` catches up).
    """
    if not result.policy_may_act:
        return result
    try:
        usage_policy_after_report.enqueue(user_id=result.user_id, kind=result.request.kind)
    except Exception:
        logger.exception("could not enqueue the policy after usage event %s", result.event_id)
    return result
