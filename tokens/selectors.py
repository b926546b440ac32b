"""Reads about pools, allocations and usage."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, Sum

from accounts.models import Membership, Organization
from asksage_admin.lib.months import current_month
from tokens.models import MAX_COLUMNS, MonthlyUsage, Purchase, TokenKind, column_for_kind


def active_purchases(org: Organization, month: dt.date):
    return Purchase.objects.filter(organization=org, start_month__lte=month).filter(
        Q(end_month__isnull=True) | Q(end_month__gte=month)
    )


def pools(org: Organization, month: dt.date | None = None) -> dict[str, int]:
    """Purchased tokens per kind for a month: the sum of the purchases active then."""
    month = month or current_month()
    rows = active_purchases(org, month).values("kind").annotate(total=Sum("tokens_per_month"))
    result = dict.fromkeys(TokenKind.values, 0)
    result.update({row["kind"]: row["total"] for row in rows})
    return result


def allocated(org: Organization) -> dict[str, int]:
    totals = Membership.objects.filter(organization=org).aggregate(
        **{kind: Sum(column) for column, kind in MAX_COLUMNS.items()}
    )
    return {kind: totals[kind] or 0 for kind in TokenKind.values}


def used_this_month(org: Organization) -> dict[str, int]:
    rows = (
        MonthlyUsage.objects.filter(organization=org, month=current_month())
        .values("kind")
        .annotate(total=Sum("used"))
    )
    result = dict.fromkeys(TokenKind.values, 0)
    result.update({row["kind"]: row["total"] for row in rows})
    return result


@dataclass(frozen=True)
class PoolStatus:
    kind: str
    purchased: int
    allocated: int
    used: int = 0
    pending_delta: int = 0

    @property
    def label(self) -> str:
        return TokenKind(self.kind).label

    @property
    def column(self) -> str:
        return column_for_kind(self.kind)

    @property
    def available(self) -> int:
        return max(self.purchased - self.allocated, 0)

    @property
    def available_after(self) -> int:
        """Unallocated once the admin's pending edits are saved (negative: over the pool)."""
        return self.purchased - self.allocated - self.pending_delta

    @property
    def allocated_percent(self) -> int:
        return min(round(100 * self.allocated / self.purchased), 100) if self.purchased else 0


def pool_statuses(
    org: Organization, pending_delta: dict[str, int] | None = None, with_used: bool = False
) -> list[PoolStatus]:
    purchased = pools(org)
    alloc = allocated(org)
    used = used_this_month(org) if with_used else {}
    pending_delta = pending_delta or {}
    return [
        PoolStatus(
            kind=kind,
            purchased=purchased[kind],
            allocated=alloc[kind],
            used=used.get(kind, 0),
            pending_delta=pending_delta.get(kind, 0),
        )
        for kind in TokenKind.values
    ]
