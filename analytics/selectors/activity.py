"""Reads of the activity pages: the audit trail, one user's history (the integrity badge is
`audit.checkpoints`: it moves a checkpoint, so it is a service, not a read)."""

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.core.paginator import Paginator
from django.utils.functional import cached_property

from accounts.models import Membership, Organization
from audit import chain
from audit.models import AuditChain, AuditLog
from audit.services import LOGIN, LOGIN_FAILED
from tokens.models import DailyUsage, TokenRequest


def audit_rows(org: Organization):
    return (
        AuditLog.objects.filter(organization=org)
        .select_related("actor", "target_user")
        .order_by("-created_at", "-id")
    )


def trail_size(org: Organization) -> int | None:
    """How many rows the organization's whole trail holds, without counting them.

    Every row of an organization is on its chain, numbered 1..N, and the chain's head holds N:
    one row read instead of a COUNT over a million (230 ms at 1,000,000 rows, measured). If
    rows were removed behind the app's back the head still says N, and the integrity badge
    says what is missing. None: no head yet (count the rows, if any).
    """
    heads = AuditChain.objects.filter(key=chain.chain_key(org.pk))
    return heads.values_list("last_seq", flat=True).first()


@dataclass
class BatchGroup:
    """The rows of one saved batch that sit together on a page: shown as one expandable row.

    `total`: how many of the batch's rows the filters find (more than `entries` when the batch
    runs over onto the next or previous page)."""

    batch_id: uuid.UUID
    entries: list[AuditLog]
    total: int = 0

    is_batch = True

    @property
    def first(self) -> AuditLog:
        return self.entries[0]

    @property
    def in_saved_order(self) -> list[AuditLog]:
        """The page lists newest first; a batch reads better in the order it was saved."""
        return self.entries[::-1]


def page_items(entries, rows) -> list:
    """A page's rows, consecutive rows of one batch folded into a `BatchGroup`.

    Pagination stays by audit row (counts, exports and filters are unchanged); only the page's
    display groups. A group at the page's edge may go on past it: its `total` is counted from
    the filtered `rows` (at most two COUNTs, on the batch index).
    """
    items: list = []
    for entry in entries:
        last = items[-1] if items else None
        if entry.batch_id and isinstance(last, BatchGroup) and last.batch_id == entry.batch_id:
            last.entries.append(entry)
        elif entry.batch_id and isinstance(last, AuditLog) and last.batch_id == entry.batch_id:
            items[-1] = BatchGroup(entry.batch_id, [last, entry])
        else:
            items.append(entry)
    groups = [item for item in items if isinstance(item, BatchGroup)]
    for group in groups:
        group.total = len(group.entries)
    for group in {id(g): g for g in groups[:1] + groups[-1:]}.values():
        if group is items[0] or group is items[-1]:
            group.total = rows.filter(batch_id=group.batch_id).count()
    return items


class CountedPaginator(Paginator):
    """A paginator told its count (`trail_size`) instead of asking the database for it."""

    def __init__(self, object_list, per_page, *, count: int):
        super().__init__(object_list, per_page)
        self._known_count = count

    @cached_property
    def count(self) -> int:
        return self._known_count


def org_member(org: Organization, user_id: int) -> Membership | None:
    return (
        Membership.objects.select_related("user").filter(organization=org, user_id=user_id).first()
    )


@dataclass
class UsageDay:
    day: dt.date
    rows: list[dict] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(row["tokens"] for row in self.rows)


def user_logins(org: Organization, user, limit: int = 20):
    return list(audit_rows(org).filter(target_user=user, action__in=[LOGIN, LOGIN_FAILED])[:limit])


def user_changes(org: Organization, user, limit: int = 50):
    """What was done to the user (limits, flags, requests, policy): not their own logins."""
    return list(
        audit_rows(org).filter(target_user=user).exclude(action__in=[LOGIN, LOGIN_FAILED])[:limit]
    )


def user_usage_by_day(org: Organization, user, start: dt.date, end: dt.date) -> list[UsageDay]:
    rows = (
        DailyUsage.objects.filter(organization=org, user=user, day__range=(start, end))
        .values("day", "kind", "model", "tokens", "events")
        .order_by("-day", "kind", "model")
    )
    days: dict[dt.date, UsageDay] = {}
    for row in rows:
        days.setdefault(row["day"], UsageDay(row["day"])).rows.append(row)
    return list(days.values())


def user_requests(org: Organization, user, limit: int = 20) -> list:
    return list(
        TokenRequest.objects.filter(organization=org, user=user).order_by("-created_at")[:limit]
    )
