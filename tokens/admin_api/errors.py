"""Every refusal of the admin API as the usage API answers it: `{"error": code, "detail":
sentence}` with its status (`tokens.usage_api.errors.UsageError`), never a 500 for bad input."""

from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from asksage_admin.lib.errors import DomainError
from tokens.services.allocations import BatchRejected
from tokens.services.api_limits import StaleValues
from tokens.usage_api.errors import UsageError, database_unavailable, error_headers


class Error(Schema):
    error: str
    detail: str


class CellsError(Error):
    """A refused write; for a batch, why each user's cell failed, by user id."""

    cells: dict[str, str] = Field(default_factory=dict, description="User id → why.")


def _answer(api: NinjaAPI, request: HttpRequest, error: UsageError) -> HttpResponse:
    response = api.create_response(request, error.as_dict(), status=error.status)
    for name, value in error_headers(error).items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def _validation_detail(exc: ValidationError) -> str:
    parts = []
    for item in exc.errors[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in {"body", "query"})
        parts.append(f"{where}: {item.get('msg', 'invalid')}" if where else item.get("msg", ""))
    return "; ".join(parts) or "The request is not valid."


def _refusal(exc: DomainError) -> UsageError:
    detail = " ".join(exc.messages) or "Refused."
    if isinstance(exc, StaleValues):
        return UsageError(412, "stale_value", detail, cells=_cells(exc))
    if isinstance(exc, BatchRejected):
        return UsageError(422, "batch_rejected", detail, cells=_cells(exc))
    return UsageError(422, "refused", detail)


def _cells(exc: BatchRejected) -> dict[str, str]:
    return {str(uid): message for uid, message in exc.cell_errors.items()}


def install(api: NinjaAPI) -> None:
    """Map each kind of refusal onto its answer."""

    def handle(kind, to_error) -> None:
        api.add_exception_handler(kind, lambda request, exc: _answer(api, request, to_error(exc)))

    handle(UsageError, lambda exc: exc)
    handle(DomainError, _refusal)
    handle(
        AuthenticationError,
        lambda exc: UsageError(
            401, "missing_key", "Send the organization's API key: Authorization: Bearer <key>."
        ),
    )
    handle(ValidationError, lambda exc: UsageError(400, "invalid_request", _validation_detail(exc)))
    handle(
        Throttled,
        lambda exc: UsageError(
            429, "rate_limited", "Too many calls with this key: wait and retry (Retry-After)."
        ),
    )
    handle(Http404, lambda exc: UsageError(404, "not_found", str(exc) or "Not found."))
    handle(HttpError, lambda exc: UsageError(exc.status_code, "invalid_request", str(exc)))
    handle(OperationalError, lambda exc: database_unavailable())
    handle(InterfaceError, lambda exc: database_unavailable())
