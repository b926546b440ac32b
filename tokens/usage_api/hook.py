"""The policy hook: what runs after a usage is recorded, on both doors.

The one place both doors call (`recording.usage_record` for the view, `fastpath` through a
thread): when the hook later becomes a queued task, only this function changes.
"""

import logging

from accounts.models import User
from tokens.services import auto_increase
from tokens.usage_api.results import UsageResult

logger = logging.getLogger(__name__)


def after_usage_recorded(result: UsageResult) -> UsageResult:
    """The auto-increase policy hook: runs after the usage committed, never undoes it.

    `tokens.services.auto_increase.auto_increase_apply(user=, kind=)` belongs to Token
    Distribution and returns the user's new max, or None. A failure there is logged; the
    recorded usage still answers 200.
    """
    if not result.policy_may_act:
        return result
    try:
        # It returns at once, without locking, while usage is below the policy's triggers.
        new_max = auto_increase.auto_increase_apply(
            user=User(pk=result.user_id), kind=result.request.kind
        )
        if isinstance(new_max, int) and not isinstance(new_max, bool):
            result.balance.max = new_max
    except Exception:
        logger.exception("auto-increase failed after usage event %s", result.event_id)
    return result
