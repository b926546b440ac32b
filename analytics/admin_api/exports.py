"""Exports: the panel's CSV and XLSX downloads, started by a call and streamed in its answer
(the same builders, the same audit row, the key as actor)."""

from typing import Literal

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, QueryDict, StreamingHttpResponse
from ninja import Field, Query, Router, Schema

from analytics import exports
from analytics.selectors import exports as export_selectors
from audit.services import audit_export
from tokens.admin_api.auth import READ, ScopedKey, actor_label, ip_of, key_of
from tokens.admin_api.errors import Error
from tokens.admin_api.queries import known_query
from tokens.admin_api.schemas import Text
from tokens.usage_api.errors import UsageError

router = Router(tags=["exports"])

What = Literal[tuple(export_selectors.EXPORTS)]
DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_FILE = {"schema": {"type": "string", "format": "binary"}}


class ExportQuery(Schema):
    format: Literal["csv", "xlsx"] = "csv"
    range: Literal["7", "30", "90", "custom"] | None = Field(
        default=None, description="Days back (usage, requests), or custom with start and end."
    )
    start: str | None = Field(default=None, pattern=DAY, description="YYYY-MM-DD")
    end: str | None = Field(default=None, pattern=DAY, description="YYYY-MM-DD")
    q: Text | None = Field(default=None, max_length=100, description="Users: name or email.")
    role: Literal["admin", "member"] | None = None
    paid: Literal["yes", "no"] | None = None
    banned: Literal["yes", "no"] | None = None


@router.get(
    "/exports/{what}",
    response={200: None, 400: Error, 401: Error, 403: Error, 429: Error},
    auth=ScopedKey(READ),
    operation_id="startExport",
    summary="Start an export: the answer streams the file (CSV or XLSX)",
    openapi_extra={
        "responses": {
            200: {  # an int, as ninja keys them: a "200" string would be a second key
                "description": "The file, streamed as it is read.",
                "content": {"text/csv": _FILE, exports.XLSX_TYPE: _FILE},
            }
        }
    },
)
@known_query(ExportQuery)
def start_export(
    request: HttpRequest, what: What, params: Query[ExportQuery]
) -> StreamingHttpResponse:
    key = key_of(request)
    org = key.organization
    query = {k: v for k, v in params.dict(exclude={"format"}).items() if v is not None}
    try:
        data = export_selectors.EXPORTS[what](org, _query_dict(query))
    except export_selectors.BadQuery as error:
        raise UsageError(400, "invalid_request", f"Cannot export {what}: {error}") from None
    audit_export(
        org=org,
        actor=None,
        actor_label=actor_label(key),
        what=what,
        ip=ip_of(request),
        query=request.GET.urlencode()[:500],
        **({"format": params.format} if params.format != "csv" else {}),
    )
    return exports.response(
        org.slug, data, asgi=isinstance(request, ASGIRequest), format=params.format
    )


def _query_dict(values: dict) -> QueryDict:
    """The validated parameters as the export builders read a query string."""
    query = QueryDict(mutable=True)
    query.update(values)
    return query
