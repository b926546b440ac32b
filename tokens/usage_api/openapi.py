"""The usage API's OpenAPI document (`GET /api/v1/openapi.json`)."""

from tokens.usage_api.protocol import MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY


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
                            "A key is remembered at least until the end of the month after "
                            "its report (UTC). Without it the report is refused (400 "
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
                        "User banned, disabled or paid off; organization pending or suspended; "
                        "the key lacks the usage scope; "
                        "the model is not enabled for this user (the organization restricts "
                        "its models and no grant names it for them: nothing was counted)",
                        [
                            "user_banned",
                            "user_inactive",
                            "user_not_paid",
                            "organization_inactive",
                            "scope_missing",
                            "model_not_allowed",
                        ],
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
                    "403": _error(
                        "Organization pending or suspended; key without the usage scope",
                        ["organization_inactive", "scope_missing"],
                    ),
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
                    "models_restricted": {
                        "type": "boolean",
                        "description": "False: every model is allowed, also names outside the "
                        "catalogue; true: only `models`.",
                    },
                    "models": {
                        "type": "array",
                        "description": "The catalogue's active models this user may use.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string", "example": "gpt-4o"},
                                "display_name": {"type": "string", "example": "GPT-4o"},
                                "kind": {"type": "string", "enum": ["inference", "embedding"]},
                            },
                        },
                    },
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
