"""The usage API (`/api/v1/`): JSON in and out, authenticated by an organization's API key.

Every error is `{"error": code, "detail": sentence}` with its HTTP status. Cheap checks come
first: a missing key, an oversized or malformed body are refused before the database is
touched, so a flood of bad requests cannot slow the good ones.
"""

import json
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from tokens import recording, usage
from tokens.usage import UsageError

MAX_BODY_BYTES = getattr(settings, "USAGE_API_MAX_BODY_BYTES", 4096)
RETRY_AFTER_SECONDS = getattr(settings, "USAGE_API_RETRY_AFTER_SECONDS", 2)
MAX_IDEMPOTENCY_KEY = 200


def json_response(data: dict, status: int = 200) -> JsonResponse:
    # UTF-8 as is (JSON's own encoding): details quote names with “ ”.
    return JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})


def error_headers(error: UsageError) -> dict[str, str]:
    """What an error answer says besides its body: how to authenticate, when to retry."""
    if error.status == 401:
        return {"WWW-Authenticate": 'Bearer realm="api"'}
    if error.status == 503:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return {}


def database_unavailable() -> UsageError:
    # Down, restarting, or a lock timeout: nothing was recorded; retry later.
    return UsageError(
        503,
        "database_unavailable",
        "The usage database is unavailable; nothing was recorded. Retry later.",
    )


def error_response(error: UsageError) -> JsonResponse:
    response = json_response(error.as_dict(), status=error.status)
    for name, value in error_headers(error).items():
        response[name] = value
    return response


def api_view(*methods: str) -> Callable:
    """A JSON endpoint: method check, domain errors and an unavailable database as JSON."""

    def decorate(view: Callable) -> Callable:
        @csrf_exempt  # authenticated by a bearer key, never by a cookie
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> JsonResponse:
            if request.method not in methods:
                response = error_response(
                    UsageError(
                        405, "method_not_allowed", f"Use {' or '.join(methods)} on this URL."
                    )
                )
                response["Allow"] = ", ".join(methods)
                return response
            try:
                response = view(request, *args, **kwargs)
            except UsageError as error:
                response = error_response(error)
            except (OperationalError, InterfaceError):
                response = error_response(database_unavailable())
            response["Cache-Control"] = "no-store"
            return response

        return wrapper

    return decorate


def bearer_key(header: str) -> str:
    """The secret presented in an Authorization header, if it has the shape of a key; no
    database access."""
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise UsageError(
            401, "missing_key", "Send the organization's API key: Authorization: Bearer <key>."
        )
    key = key.strip()
    if not usage.api_key_well_formed(key):
        raise usage.invalid_key()
    return key


def body_too_large() -> UsageError:
    return UsageError(
        413, "body_too_large", f"The request body is larger than {MAX_BODY_BYTES:,} bytes."
    )


def declared_too_large(content_length: str | None) -> bool:
    """Whether the declared length is over the cap: refused before reading the body."""
    try:
        return int(content_length or 0) > MAX_BODY_BYTES
    except ValueError:
        return False


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_json(raw: bytes) -> object:
    """A body (at most the cap) decoded as `json.loads` would; NaN and Infinity are not
    JSON. One decoder for every request: building one per call costs more than decoding."""
    try:
        return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise UsageError(400, "malformed_json", "The request body is not valid JSON.") from exc


def _read_json(request: HttpRequest) -> object:
    """The decoded body, refusing oversized or malformed ones before any database work."""
    if declared_too_large(request.META.get("CONTENT_LENGTH")):
        raise body_too_large()
    raw = request.read(MAX_BODY_BYTES + 1)  # also bounds a body sent without a length
    if len(raw) > MAX_BODY_BYTES:
        raise body_too_large()
    return decode_json(raw)


def idempotency_key(header: str) -> str:
    """The report's Idempotency-Key: required, so a gateway's retry is never counted twice."""
    key = header.strip()
    if not key:
        raise UsageError(
            400,
            "missing_idempotency_key",
            "Send an Idempotency-Key header, unique per usage (for example a UUID): a retry "
            "with the same key is counted once.",
        )
    if len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise UsageError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be printable text of at most {MAX_IDEMPOTENCY_KEY} characters.",
        )
    return key


@api_view("POST")
def usage_create(request: HttpRequest) -> JsonResponse:
    """Record tokens a user consumed, within their monthly max, once per Idempotency-Key."""
    raw_key = bearer_key(request.headers.get("Authorization", ""))
    report = usage.parse_usage(_read_json(request))
    idem = idempotency_key(request.headers.get("Idempotency-Key", ""))
    result = recording.usage_record(raw_key=raw_key, usage=report, idempotency_key=idem)
    response = json_response(result.as_dict())
    if result.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


@api_view("GET")
def user_balance(request: HttpRequest, email: str) -> JsonResponse:
    """Max, used this month and remaining, per kind, for one of the organization's users."""
    raw_key = bearer_key(request.headers.get("Authorization", ""))
    email = usage.parse_email(email)  # checked before the database, as the body of a report
    key = usage.api_key_authenticate(raw_key)
    return json_response(usage.balance_for(org=key.organization, email=email))


@api_view("GET")
def openapi(request: HttpRequest) -> JsonResponse:
    return json_response(OPENAPI)


@api_view("GET", "POST", "PUT", "PATCH", "DELETE")
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    raise UsageError(404, "not_found", "There is no such API endpoint; see /api/v1/openapi.json.")


# ---------------------------------------------------------------- OpenAPI document


def _error(description: str, codes: list[str]) -> dict:
    return {
        "description": f"{description} (`error`: {', '.join(codes)})",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_KEY_ERRORS = ["missing_key", "invalid_key", "key_revoked"]

_BALANCE = {
    "type": "object",
    "properties": {
        "max": {"type": "integer", "description": "Monthly max of this kind."},
        "used": {"type": "integer", "description": "Used this UTC month."},
        "remaining": {"type": "integer", "description": "max − used, never negative."},
    },
    "required": ["max", "used", "remaining"],
}

OPENAPI = {
    "openapi": "3.1.0",
    "info": {
        "title": "Enterprise Admin usage API",
        "version": "1",
        "description": (
            "The platform gateway reports token usage here, and usage is counted only within "
            "each user's monthly max. Authenticate with an organization API key created by an "
            "org admin in the Admin Panel (API Keys): `Authorization: Bearer <key>`."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"apiKey": []}],
    "paths": {
        "/usage": {
            "post": {
                "summary": "Record usage within the user's monthly max",
                "operationId": "recordUsage",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_IDEMPOTENCY_KEY,
                        },
                        "description": (
                            "Required, unique per usage (for example a UUID). A retry with "
                            "the same key and body is counted once and answers the recorded "
                            "event (header `Idempotent-Replayed: true`, balance as of now). "
                            "Without it the report is refused (400 "
                            "`missing_idempotency_key`): a retry could not be told from a "
                            "new usage."
                        ),
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/UsageRequest"},
                            "example": {
                                "user": "bob@example.com",
                                "kind": "inference",
                                "tokens": 1200,
                                "model": "gpt-4o",
                            },
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Counted (or a replay of a counted request).",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/UsageRecorded"}
                            }
                        },
                    },
                    "400": _error(
                        "Malformed body, wrong types, unknown kind, tokens outside 1…2^53−1, "
                        "text with NUL or unpaired surrogates, a missing or invalid "
                        "Idempotency-Key",
                        [
                            "malformed_json",
                            "invalid_request",
                            "unknown_kind",
                            "missing_idempotency_key",
                            "invalid_idempotency_key",
                        ],
                    ),
                    "401": _error("Missing, unknown or revoked key", _KEY_ERRORS),
                    "402": {
                        "description": (
                            "Over the user's monthly max: nothing was counted. Retrying will "
                            "not help until the max is raised or the month ends "
                            "(`error`: over_limit)."
                        ),
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/OverLimit"}
                            }
                        },
                    },
                    "403": _error(
                        "User banned, disabled or paid off; organization pending or suspended",
                        ["user_banned", "user_inactive", "user_not_paid", "organization_inactive"],
                    ),
                    "404": _error(
                        "No such user in the key's organization (also for other "
                        "organizations' users)",
                        ["user_not_found"],
                    ),
                    "409": _error(
                        "Idempotency-Key already used with a different body",
                        ["idempotency_key_reused"],
                    ),
                    "413": _error(f"Body larger than {MAX_BODY_BYTES} bytes", ["body_too_large"]),
                    "503": _error(
                        "Database unavailable; see Retry-After", ["database_unavailable"]
                    ),
                },
            }
        },
        "/users/{email}/balance": {
            "get": {
                "summary": "A user's max, used this month and remaining, per kind",
                "operationId": "userBalance",
                "parameters": [
                    {
                        "name": "email",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 254},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The balance.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/UserBalance"}
                            }
                        },
                    },
                    "400": _error(
                        "Not an email address (over 254 characters, NUL, unpaired surrogates)",
                        ["invalid_request"],
                    ),
                    "401": _error("Missing, unknown or revoked key", _KEY_ERRORS),
                    "403": _error("Organization pending or suspended", ["organization_inactive"]),
                    "404": _error("No such user in the key's organization", ["user_not_found"]),
                    "503": _error(
                        "Database unavailable; see Retry-After", ["database_unavailable"]
                    ),
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "UsageRequest": {
                "type": "object",
                "required": ["user", "kind", "tokens", "model"],
                "properties": {
                    "user": {"type": "string", "format": "email", "maxLength": 254},
                    "kind": {"type": "string", "enum": ["inference", "embedding"]},
                    "tokens": {"type": "integer", "minimum": 1, "maximum": 2**53 - 1},
                    "model": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 100,
                        "description": "No NUL characters or unpaired surrogates.",
                    },
                },
            },
            "UsageRecorded": {
                "allOf": [
                    _BALANCE,
                    {
                        "type": "object",
                        "properties": {
                            "event_id": {"type": "integer"},
                            "user": {"type": "string"},
                            "kind": {"type": "string"},
                            "tokens": {"type": "integer"},
                            "model": {"type": "string"},
                            "month": {"type": "string", "example": "2026-11"},
                            "replayed": {"type": "boolean"},
                        },
                    },
                ]
            },
            "OverLimit": {
                "allOf": [
                    {"$ref": "#/components/schemas/Error"},
                    _BALANCE,
                    {"type": "object", "properties": {"requested": {"type": "integer"}}},
                ]
            },
            "UserBalance": {
                "type": "object",
                "properties": {
                    "user": {"type": "string"},
                    "month": {"type": "string", "example": "2026-11"},
                    "paid": {"type": "boolean"},
                    "banned": {"type": "boolean"},
                    "inference": _BALANCE,
                    "embedding": _BALANCE,
                },
            },
            "Error": {
                "type": "object",
                "required": ["error", "detail"],
                "properties": {
                    "error": {"type": "string", "description": "A stable code."},
                    "detail": {"type": "string", "description": "A sentence for people."},
                },
            },
        },
    },
}
