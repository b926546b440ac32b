"""The usage API's Django door (`/api/v1/`): JSON in and out, authenticated by an
organization's API key.

Requests are read by `protocol`, as the fast path reads them; answers are encoded by it too,
so both doors send the same bytes.
"""

from collections.abc import Callable
from functools import wraps

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from tokens.usage_api import protocol
from tokens.usage_api.balance import balance_for
from tokens.usage_api.errors import UsageError, database_unavailable
from tokens.usage_api.keys import api_key_authenticate
from tokens.usage_api.openapi import OPENAPI
from tokens.usage_api.recording import usage_record


def json_response(body: bytes, status: int = 200, headers: dict | None = None) -> HttpResponse:
    return HttpResponse(body, status=status, content_type=protocol.CONTENT_TYPE, headers=headers)


def error_response(error: UsageError) -> HttpResponse:
    status, body, headers = protocol.error_answer(error)
    return json_response(body, status, headers)


def api_view(*methods: str, counts_reports: bool = False) -> Callable:
    """A JSON endpoint: method check, domain errors and an unavailable database as JSON.
    `counts_reports`: each answer is a usage report's outcome, counted for /metrics."""

    def decorate(view: Callable) -> Callable:
        @csrf_exempt  # authenticated by a bearer key, never by a cookie
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = error_response(
                    UsageError(
                        405, "method_not_allowed", f"Use {' or '.join(methods)} on this URL."
                    )
                )
                response["Allow"] = ", ".join(methods)
                return response
            code = ""
            try:
                response = view(request, *args, **kwargs)
            except UsageError as error:
                response, code = error_response(error), error.code
            except (OperationalError, InterfaceError):
                error = database_unavailable()
                response, code = error_response(error), error.code
            if counts_reports:
                protocol.report_counted(
                    response.status_code,
                    replayed=response.get("Idempotent-Replayed") == "true",
                    code=code,
                )
            response["Cache-Control"] = protocol.CACHE_CONTROL
            return response

        return wrapper

    return decorate


def _read_body(request: HttpRequest) -> bytes:
    """The body, refused past the cap before any database work."""
    if protocol.declared_too_large(request.META.get("CONTENT_LENGTH")):
        raise protocol.body_too_large()
    raw = request.read(protocol.MAX_BODY_BYTES + 1)  # also bounds a body sent without a length
    if len(raw) > protocol.MAX_BODY_BYTES:
        raise protocol.body_too_large()
    return raw


@api_view("POST", counts_reports=True)
def usage_create(request: HttpRequest) -> HttpResponse:
    """Record tokens a user consumed, within their monthly max, once per Idempotency-Key."""
    raw_key = protocol.bearer_key(request.headers.get("Authorization", ""))
    usage, idempotency_key = protocol.usage_report(
        _read_body(request), request.headers.get("Idempotency-Key", "")
    )
    result = usage_record(raw_key=raw_key, usage=usage, idempotency_key=idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return json_response(protocol.encode(result.as_dict()), headers=headers)


@api_view("GET")
def user_balance(request: HttpRequest, email: str) -> HttpResponse:
    """Max, used this month and remaining, per kind, for one of the organization's users."""
    raw_key = protocol.bearer_key(request.headers.get("Authorization", ""))
    email = protocol.parse_email(email)  # checked before the database, as the body of a report
    key = api_key_authenticate(raw_key)
    return json_response(protocol.encode(balance_for(org=key.organization, email=email)))


@api_view("GET")
def openapi(request: HttpRequest) -> HttpResponse:
    return json_response(protocol.encode(OPENAPI))


@api_view("GET", "POST", "PUT", "PATCH", "DELETE")
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    raise UsageError(404, "not_found", "There is no such API endpoint; see /api/v1/openapi.json.")
