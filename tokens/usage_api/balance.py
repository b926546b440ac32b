"""A user's balance, as `GET /api/v1/users/<email>/balance` answers it."""

import datetime as dt

from django.utils import timezone

from accounts.models import Organization
from asksage_admin.lib.months import month_start
from tokens.model_selectors import models_allowed_for
from tokens.models import MonthlyUsage, TokenKind, column_for_kind
from tokens.usage_api.members import membership_for
from tokens.usage_api.results import Balance


def balance_for(*, org: Organization, email: str, month: dt.date | None = None) -> dict:
    """Max, used this month and remaining per kind for one of the organization's users."""
    membership = membership_for(org, email.strip().lower())
    month = month or month_start(timezone.now())
    used = dict(
        MonthlyUsage.objects.filter(
            organization=org, user_id=membership.user_id, month=month
        ).values_list("kind", "used")
    )
    user = membership.user
    return {
        "user": user.email,
        "month": f"{month:%Y-%m}",
        "paid": user.is_paid,
        "banned": user.is_banned,
        **{
            kind: Balance(
                kind, getattr(membership, column_for_kind(kind)), used.get(kind, 0)
            ).as_dict()
            for kind in TokenKind.values
        },
        "models_restricted": org.models_restricted,
        "models": models_allowed_for(membership),
    }
