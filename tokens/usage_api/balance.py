"""A user's balance, as `GET /api/v1/users/<email>/balance` answers it."""

import datetime as dt

from django.utils import timezone

from accounts.models import Membership, Organization
from asksage_admin.lib.months import month_start
from tokens.models import EVERYONE, MonthlyUsage, PlatformModel, TokenKind, column_for_kind
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
        "models": allowed_models(membership),
    }


def allowed_models(membership: Membership) -> list[dict]:
    """The catalogue's active models the member may use, in one query. Unrestricted, that is
    every active model (and a name outside the catalogue is accepted too)."""
    rows = PlatformModel.objects.filter(active=True)
    if membership.organization.models_restricted:
        rows = rows.filter(
            grants__organization_id=membership.organization_id,
            grants__audience__in=[EVERYONE, membership.role, str(membership.user_id)],
        ).distinct()
    return [
        {"name": name, "display_name": display, "kind": kind}
        for name, display, kind in rows.order_by("kind", "display_name", "name").values_list(
            "name", "display_name", "kind"
        )
    ]
