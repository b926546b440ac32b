"""SCIM's error answers (RFC 7644 §3.12): the Error schema, never an HTML page or a 500."""

import json

from django.http import HttpResponse

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
CONTENT_TYPE = "application/scim+json"


class ScimError(Exception):
    """A refused SCIM call: its status, SCIM's scimType where one fits, and a sentence."""

    def __init__(self, status: int, detail: str, scim_type: str = ""):
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        super().__init__(detail)


def scim_response(body: dict | None, status: int = 200) -> HttpResponse:
    response = HttpResponse(
        b"" if body is None else json.dumps(body), status=status, content_type=CONTENT_TYPE
    )
    response["Cache-Control"] = "no-store"
    return response


def error_response(error: ScimError) -> HttpResponse:
    body = {"schemas": [ERROR_SCHEMA], "status": str(error.status), "detail": error.detail}
    if error.scim_type:
        body["scimType"] = error.scim_type
    response = scim_response(body, error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="scim"'
    return response


def not_found(what: str = "Resource") -> ScimError:
    return ScimError(404, f"{what} not found.")


def bad_request(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(400, detail, scim_type)
