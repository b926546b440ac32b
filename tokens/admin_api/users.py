"""Users with their limits and usage; limits set for many users in one call, and undone."""

import uuid
from typing import Literal

from django.http import Http404, HttpRequest
from ninja import Field, Query, Router, Schema

from tokens import selectors
from tokens.admin_api import cursors
from tokens.admin_api.auth import READ, WRITE, ScopedKey, actor_label, ip_of, key_of
from tokens.admin_api.errors import CellsError, Error
from tokens.admin_api.queries import known_query
from tokens.admin_api.schemas import BatchOut, LimitsIn, PerKind, Text, UserOut, UserPage
from tokens.filters import UserTableFilter
from tokens.models import MAX_COLUMNS, AllocationBatch
from tokens.services import allocations, api_limits

router = Router(tags=["users"])

# Sort name → the queryset field it orders by (ids break ties).
SORTS = {
    "email": "email",
    "name": "name",
    "inference_max": "membership__max_inference_tokens",
    "embedding_max": "membership__max_embedding_tokens",
    "inference_used": "inf_used",
    "embedding_used": "emb_used",
}
TEXT_SORTS = {"email", "name"}
Sort = Literal[tuple(SORTS) + tuple(f"-{name}" for name in SORTS)]
READ_ERRORS = {400: Error, 401: Error, 403: Error, 429: Error}
WRITE_ERRORS = {**READ_ERRORS, 412: CellsError, 422: CellsError}


class UserFilters(Schema):
    q: Text = Field(default="", max_length=100, description="Part of a name or email.")
    role: Literal["admin", "auditor", "member"] | None = None
    paid: bool | None = None
    banned: bool | None = None
    near_limit: bool = Field(default=False, description="Over 80 % of a max used this month.")
    sort: Sort = "email"
    cursor: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=100, ge=1, le=500)


def _user(row) -> UserOut:
    membership = row.membership
    return UserOut(
        id=row.pk,
        email=row.email,
        name=row.name,
        role=membership.role,
        is_paid=row.is_paid,
        is_banned=row.is_banned,
        limits=PerKind(
            inference=membership.max_inference_tokens, embedding=membership.max_embedding_tokens
        ),
        used=PerKind(inference=row.inf_used, embedding=row.emb_used),
    )


@router.get(
    "/users",
    response={200: UserPage, **READ_ERRORS},
    auth=ScopedKey(READ),
    operation_id="listUsers",
    summary="The organization's users with their limits and this month's usage",
)
@known_query(UserFilters)
def list_users(request: HttpRequest, filters: Query[UserFilters]) -> UserPage:
    org = key_of(request).organization
    flags = {"paid": filters.paid, "banned": filters.banned}
    data = {
        "q": filters.q,
        "role": filters.role or "",
        "near_limit": filters.near_limit,
        **{name: ("yes" if value else "no") for name, value in flags.items() if value is not None},
    }
    rows = UserTableFilter(data, queryset=selectors.user_table_rows(org)).qs
    name = filters.sort.lstrip("-")
    items, next_cursor = cursors.keyset_page(
        rows,
        sort=filters.sort,
        field=SORTS[name],
        descending=filters.sort.startswith("-"),
        cursor=filters.cursor,
        limit=filters.limit,
        value_of=lambda row: _sort_value(row, name),
        kind=str if name in TEXT_SORTS else int,
    )
    return UserPage(items=[_user(row) for row in items], next_cursor=next_cursor)


def _sort_value(row, name: str):
    if name in {"email", "name"}:
        return getattr(row, name)
    if name.endswith("_max"):
        return getattr(row.membership, MAX_COLUMNS_BY_KIND[name.removesuffix("_max")])
    return row.inf_used if name == "inference_used" else row.emb_used


MAX_COLUMNS_BY_KIND = {kind: column for column, kind in MAX_COLUMNS.items()}


def _batch(result, kind: str) -> BatchOut:
    return BatchOut(
        batch_id=result.batch.id if result.batch else None,
        kind=kind,
        changed=len(result.changes),
        changes=[{"user": c.user.pk, "old": c.old, "new": c.new} for c in result.changes],
    )


@router.post(
    "/limits",
    response={200: BatchOut, **WRITE_ERRORS},
    auth=ScopedKey(WRITE),
    operation_id="setLimits",
    summary="Set many users' monthly max in one call, all or nothing",
    description=(
        "The panel's Save Changes: floors and the pool are checked, one audit row per changed "
        "cell shares the batch id. 412 `stale_value`: a cell no longer holds `expected` "
        "(`cells` says which); 422 `batch_rejected`: under the floor or over the pool."
    ),
)
@known_query()
def set_limits(request: HttpRequest, body: LimitsIn) -> BatchOut:
    key = key_of(request)
    result = api_limits.allocation_api_set(
        org=key.organization,
        kind=body.kind,
        changes=[api_limits.LimitChange(c.user, c.expected, c.new) for c in body.changes],
        actor_label=actor_label(key),
        ip=ip_of(request),
    )
    return _batch(result, body.kind)


@router.post(
    "/limits/batches/{batch_id}/undo",
    response={200: BatchOut, 404: Error, **READ_ERRORS, 422: CellsError},
    auth=ScopedKey(WRITE),
    operation_id="undoLimits",
    summary="Put back the values a batch replaced (itself an audited batch)",
)
@known_query()
def undo_limits(request: HttpRequest, batch_id: uuid.UUID) -> BatchOut:
    key = key_of(request)
    if not AllocationBatch.objects.filter(organization=key.organization, pk=batch_id).exists():
        raise Http404("No such batch in your organization.")
    result = allocations.allocation_batch_undo(
        admin=None,
        org=key.organization,
        batch_id=batch_id,
        ip=ip_of(request),
        actor_label=actor_label(key),
    )
    kind = MAX_COLUMNS[result.batch.column] if result.batch else "inference"
    return _batch(result, kind)
