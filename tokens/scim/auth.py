"""Every SCIM view: the key with the `scim` scope, the JSON body, and errors as SCIM's.

A view is `view(request, key, body, **kwargs)`; the organization is `key.organization`.
"""

import functools
import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.http import client_ip
from tokens.models import ApiKey, ApiKeyScope
from tokens.scim.errors import ScimError, error_response
from tokens.usage_api.errors import UsageError
from tokens.usage_api.keys import api_key_authenticate

MAX_BODY = 256 * 1024  # a user or a group with its members, generously


def actor_label(key: ApiKey) -> str:
    """How the audit trail names the token (at most 50 characters)."""
    return f"SCIM token {key.prefix}… ({key.name})"[:50]


def authenticate(request: HttpRequest) -> ApiKey:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ScimError(401, "Send the organization's SCIM token: Authorization: Bearer <token>.")
    try:
        return api_key_authenticate(token.strip(), scope=ApiKeyScope.SCIM.value)
    except UsageError as exc:
        raise ScimError(exc.status, exc.detail) from None


def _body(request: HttpRequest) -> dict:
    if request.method not in {"POST", "PUT", "PATCH"}:
        return {}
    raw = request.body
    if len(raw) > MAX_BODY:
        raise ScimError(413, "The request body is too large.")
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ScimError(400, "The body is not valid JSON.", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ScimError(400, "The body must be a JSON object.", "invalidSyntax")
    return body


def scim_view(*methods: str) -> Callable:
    """Authenticate, read the body, and answer every refusal in SCIM's error schema."""

    def decorate(view: Callable) -> Callable:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, **kwargs) -> HttpResponse:
            try:
                key = authenticate(request)
                if request.method not in methods:
                    raise ScimError(405, f"{request.method} is not supported here.")
                request.scim_ip = client_ip(request)
                return view(request, key, _body(request), **kwargs)
            except ScimError as exc:
                return error_response(exc)
            except DomainError as exc:
                detail = " ".join(exc.messages) or "Refused."
                return error_response(ScimError(409, detail))

        return wrapper

    return decorate
