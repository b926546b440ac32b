"""The activity log (the organization's audit trail), newest first, filtered as on its page."""

import datetime as dt
import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from analytics.filters import ActivityFilter
from analytics.selectors.activity import audit_rows
from tokens.admin_api import cursors
from tokens.admin_api.auth import READ, ScopedKey, key_of
from tokens.admin_api.errors import Error
from tokens.admin_api.queries import known_query
from tokens.admin_api.schemas import Text
from tokens.usage_api.errors import UsageError

router = Router(tags=["activity"])
DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"  # YYYY-MM-DD, checked as a date by the filter


class ActivityFilters(Schema):
    action: Text = Field(default="", max_length=60, description="An action or its family.")
    actor: Text = Field(
        default="", max_length=100, description="Part of the actor's email, name or key label."
    )
    target: Text = Field(
        default="", max_length=100, description="Part of the target user's email or name."
    )
    start: str | None = Field(default=None, pattern=DAY, description="From this UTC day.")
    end: str | None = Field(default=None, pattern=DAY, description="To this UTC day, included.")
    batch: uuid.UUID | None = Field(default=None, description="One saved batch's rows.")
    cursor: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=100, ge=1, le=500)


class ActivityOut(Schema):
    id: int
    created_at: dt.datetime
    action: str
    actor: str
    target_user: str | None
    column: str
    old: str
    new: str
    batch_id: uuid.UUID | None
    details: dict[str, Any]


class ActivityPage(Schema):
    items: list[ActivityOut]
    next_cursor: str | None


def _out(row) -> ActivityOut:
    return ActivityOut(
        id=row.pk,
        created_at=row.created_at,
        action=row.action,
        actor=row.actor_label or (row.actor.email if row.actor else "system"),
        target_user=row.target_user.email if row.target_user else None,
        column=row.column,
        old=row.old_value,
        new=row.new_value,
        batch_id=row.batch_id,
        details=row.details or {},
    )


def _created_at(value) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise UsageError(400, "invalid_cursor", "This cursor is not valid: start again.") from None


@router.get(
    "/activity",
    response={200: ActivityPage, 400: Error, 401: Error, 403: Error, 429: Error},
    auth=ScopedKey(READ),
    operation_id="listActivity",
    summary="The activity log, newest first",
)
@known_query(ActivityFilters)
def list_activity(request: HttpRequest, filters: Query[ActivityFilters]) -> ActivityPage:
    org = key_of(request).organization
    data = filters.dict(include={"action", "actor", "target", "start", "end"})
    filterset = ActivityFilter({k: v for k, v in data.items() if v}, queryset=audit_rows(org))
    if not filterset.is_valid():
        words = " ".join(str(m) for errors in filterset.errors.values() for m in errors)
        raise UsageError(400, "invalid_request", words or "Some filters were not understood.")
    rows = filterset.qs
    if filters.batch:
        rows = rows.filter(batch_id=filters.batch)
    items, next_cursor = cursors.keyset_page(
        rows,
        sort="-created_at",
        field="created_at",
        descending=True,
        cursor=filters.cursor,
        limit=filters.limit,
        value_of=lambda row: row.created_at.isoformat(),
        load=_created_at,
    )
    return ActivityPage(items=[_out(row) for row in items], next_cursor=next_cursor)
