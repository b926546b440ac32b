"""A preset's floors against the members below them: what raising them costs, a refusal
saying how much is missing when the unallocated pool cannot pay, and the raise itself.

Why a preset raises rather than strands: a member left below the organization's floor makes
every later edit of theirs refused ("At least …") while a full pool can raise nobody.
"""

from django.db.models import Count, Q, Sum

from accounts.models import Membership, Organization, User
from asksage_admin.lib.errors import DomainError
from tokens.models import Preset, TokenKind, column_for_kind
from tokens.selectors import allocated, pools
from tokens.services._core import platform_floor
from tokens.services.allocations import apply_or_reject


def floors_after(org: Organization, preset: str, new: dict) -> dict[str, int]:
    """The organization's floor per kind once `preset` applies (Manual keeps today's)."""
    return {
        kind: max(
            org.floor(kind) if preset == Preset.MANUAL else new.get(f"floor_{kind}", 0),
            platform_floor(kind),
        )
        for kind in TokenKind.values
    }


def floor_shortfall(org: Organization, floors: dict[str, int]):
    """Per kind: (members below the floor, tokens to raise them, unallocated now)."""
    pool, alloc = pools(org), allocated(org)
    result = {}
    for kind, floor in floors.items():
        column = column_for_kind(kind)
        rows = Membership.objects.filter(
            organization=org, user__is_banned=False, **{f"{column}__lt": floor}
        )
        totals = rows.aggregate(n=Count("pk"), have=Sum(column))
        cost = floor * totals["n"] - (totals["have"] or 0)
        result[kind] = (totals["n"], cost, max(pool[kind] - alloc[kind], 0))
    return result


def refuse_unaffordable(preset: str, short: dict) -> None:
    """No preset leaves anyone below the organization's floor: refuse, saying how much the
    unallocated pool lacks, when raising everyone to it does not fit."""
    lacking = [
        f"raising {n:,} user{'s' if n != 1 else ''} to the {kind} floor needs {cost:,} tokens "
        f"but only {free:,} are unallocated ({cost - free:,} missing)"
        for kind, (n, cost, free) in short.items()
        if cost > free
    ]
    if lacking:
        raise DomainError(
            f"The {Preset(preset).label} preset cannot be applied as is: "
            + "; ".join(lacking)
            + ". Buy more tokens, or choose a lower floor."
        )


def raise_to_floors(*, admin: User, org: Organization, floors: dict[str, int], ip) -> int:
    """Everyone below the (new) floors raised to them, one audited batch per kind, in the
    caller's transaction. Returns how many members were raised."""
    below = Q()
    for kind, floor in floors.items():
        below |= Q(**{f"{column_for_kind(kind)}__lt": floor})
    # A banned member's floor is 0 (`_core.member_floor`): a preset raises nobody banned.
    members = Membership.objects.filter(organization=org, user__is_banned=False).filter(below)
    members = list(members.select_related("user"))
    for kind, floor in floors.items():
        column = column_for_kind(kind)
        rows = [
            (m.user, m, getattr(m, column), floor) for m in members if getattr(m, column) < floor
        ]
        if rows:
            apply_or_reject(
                "The preset was not applied: ",
                actor=admin,
                actor_label="",
                org=org,
                column=column,
                targets=rows,
                source="preset",
                ip=ip,
            )
    return len(members)
