"""Members' token requests: listed by status, approved (all or part) or denied."""

from typing import Annotated, Literal

from django.http import Http404, HttpRequest
from ninja import Field, Path, Query, Router, Schema

from tokens import selectors
from tokens.admin_api import cursors
from tokens.admin_api.auth import READ, WRITE, ScopedKey, actor_label, ip_of, key_of
from tokens.admin_api.errors import Error
from tokens.admin_api.queries import known_query
from tokens.admin_api.schemas import ApproveIn, DenyIn, TokenRequestOut, TokenRequestPage
from tokens.models import TokenRequest
from tokens.services import requests as request_services

router = Router(tags=["token requests"])

RequestId = Annotated[int, Path(ge=1, le=2**63 - 1)]
READ_ERRORS = {400: Error, 401: Error, 403: Error, 429: Error}
WRITE_ERRORS = {**READ_ERRORS, 404: Error, 422: Error}


class RequestFilters(Schema):
    status: Literal["pending", "approved", "denied", "cancelled", "all"] = "pending"
    cursor: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=100, ge=1, le=500)


def _out(row: TokenRequest) -> TokenRequestOut:
    decided_by = row.decided_by.email if row.decided_by else row.decided_by_label
    return TokenRequestOut(
        id=row.pk,
        user=row.user_id,
        email=row.user.email,
        kind=row.kind,
        amount=row.amount,
        reason=row.reason,
        status=row.status,
        granted=row.granted,
        note=row.note,
        created_at=row.created_at,
        decided_at=row.decided_at,
        decided_by=decided_by or "",
    )


@router.get(
    "/token-requests",
    response={200: TokenRequestPage, **READ_ERRORS},
    auth=ScopedKey(READ),
    operation_id="listTokenRequests",
    summary="Token requests by status, oldest first (ids ascending)",
)
@known_query(RequestFilters)
def list_requests(request: HttpRequest, filters: Query[RequestFilters]) -> TokenRequestPage:
    org = key_of(request).organization
    rows = selectors.token_requests(org, "all")
    if filters.status != "all":
        rows = rows.filter(status=filters.status)
    items, next_cursor = cursors.keyset_page(
        rows, sort="id", field="pk", cursor=filters.cursor, limit=filters.limit
    )
    return TokenRequestPage(items=[_out(row) for row in items], next_cursor=next_cursor)


def _decided(request: HttpRequest, request_id: int, decide) -> TokenRequestOut:
    key = key_of(request)
    if not TokenRequest.objects.filter(organization=key.organization, pk=request_id).exists():
        raise Http404("No such token request in your organization.")
    decided = decide(
        admin=None,
        org=key.organization,
        request_id=request_id,
        ip=ip_of(request),
        actor_label=actor_label(key),
    )
    return _out(decided)


@router.post(
    "/token-requests/{request_id}/approve",
    response={200: TokenRequestOut, **WRITE_ERRORS},
    auth=ScopedKey(WRITE),
    operation_id="approveTokenRequest",
    summary="Approve a pending request, all of it or a smaller amount",
    description="422 `refused`: already decided, cancelled, or the grant would pass the pool.",
)
@known_query()
def approve(request: HttpRequest, request_id: RequestId, body: ApproveIn) -> TokenRequestOut:
    def decide(**common):
        return request_services.token_request_approve(amount=body.amount, note=body.note, **common)

    return _decided(request, request_id, decide)


@router.post(
    "/token-requests/{request_id}/deny",
    response={200: TokenRequestOut, **WRITE_ERRORS},
    auth=ScopedKey(WRITE),
    operation_id="denyTokenRequest",
    summary="Deny a pending request, saying why (the member is emailed)",
)
@known_query()
def deny(request: HttpRequest, request_id: RequestId, body: DenyIn) -> TokenRequestOut:
    def decide(**common):
        return request_services.token_request_deny(note=body.note, **common)

    return _decided(request, request_id, decide)
