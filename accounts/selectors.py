"""Reads about users and memberships."""

from django.db.models import Sum

from accounts.models import Membership, User
from asksage_admin.lib.months import current_month, previous_month
from tokens.models import KIND_HELP, MonthlyUsage, TokenKind, column_for_kind


def member_home(user: User, membership: Membership | None) -> dict:
    """Per kind: this month's max, used, remaining, the previous month and the total, in the
    member's organization (usage recorded under an organization they left stays there)."""
    cur, prev = current_month(), previous_month()
    org_id = membership.organization_id if membership else None
    rows = MonthlyUsage.objects.filter(user=user, organization_id=org_id).values(
        "kind", "month", "used"
    )
    totals = dict.fromkeys(TokenKind.values, 0)
    by_month: dict[tuple[str, object], int] = {}
    for row in rows:
        totals[row["kind"]] += row["used"]
        by_month[(row["kind"], row["month"])] = row["used"]
    kinds = []
    for kind in TokenKind:
        limit = getattr(membership, column_for_kind(kind), 0) if membership else 0
        used = by_month.get((kind.value, cur), 0)
        kinds.append(
            {
                "kind": kind.value,
                "label": kind.label,
                "help": KIND_HELP[kind],
                "max": limit,
                "used": used,
                "remaining": max(limit - used, 0),
                "percent": min(round(100 * used / limit), 100) if limit else 0,
                "previous": by_month.get((kind.value, prev), 0),
                "total": totals[kind.value],
            }
        )
    return {
        "membership": membership,
        "org": membership.organization if membership else None,
        "kinds": kinds,
    }


def lifetime_usage(user: User) -> int:
    return MonthlyUsage.objects.filter(user=user).aggregate(total=Sum("used"))["total"] or 0
