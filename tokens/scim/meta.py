"""What the service supports (RFC 7643 §5–7): ServiceProviderConfig, ResourceTypes, Schemas."""

from django.http import HttpRequest, HttpResponse

from tokens.models import ApiKey
from tokens.scim.auth import scim_view
from tokens.scim.errors import not_found, scim_response
from tokens.scim.resources import GROUP_SCHEMA, USER_SCHEMA, list_response

CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


def _attribute(name: str, kind: str = "string", **extra) -> dict:
    return {
        "name": name,
        "type": kind,
        "multiValued": False,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
        **extra,
    }


SCHEMAS = [
    {
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A member of the organization; userName is their email address.",
        "attributes": [
            _attribute("userName", required=True, uniqueness="server"),
            _attribute("displayName"),
            _attribute("name", "complex", subAttributes=[_attribute("formatted")]),
            _attribute("active", "boolean"),
            _attribute("groups", "complex", multiValued=True, mutability="readOnly"),
        ],
        "meta": {"resourceType": "Schema"},
    },
    {
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A role: admin, auditor or member.",
        "attributes": [
            _attribute("displayName", mutability="readOnly"),
            _attribute("members", "complex", multiValued=True),
        ],
        "meta": {"resourceType": "Schema"},
    },
]


@scim_view("GET")
def service_provider_config(request: HttpRequest, key: ApiKey, body: dict) -> HttpResponse:
    unsupported = {"supported": False}
    return scim_response(
        {
            "schemas": [CONFIG_SCHEMA],
            "patch": {"supported": True},
            "bulk": {**unsupported, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": 200},
            "changePassword": unsupported,
            "sort": unsupported,
            "etag": unsupported,
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "Bearer token",
                    "description": "The organization's API key with the scim scope.",
                    "primary": True,
                }
            ],
        }
    )


def _resource_type(name: str, endpoint: str, schema: str) -> dict:
    return {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": name,
        "name": name,
        "endpoint": endpoint,
        "schema": schema,
        "meta": {"resourceType": "ResourceType"},
    }


@scim_view("GET")
def resource_types(request: HttpRequest, key: ApiKey, body: dict) -> HttpResponse:
    types = [
        _resource_type("User", "/Users", USER_SCHEMA),
        _resource_type("Group", "/Groups", GROUP_SCHEMA),
    ]
    return scim_response(list_response(types, len(types), 1))


@scim_view("GET")
def schemas(request: HttpRequest, key: ApiKey, body: dict) -> HttpResponse:
    return scim_response(list_response(SCHEMAS, len(SCHEMAS), 1))


@scim_view("GET")
def schema(request: HttpRequest, key: ApiKey, body: dict, pk: str) -> HttpResponse:
    for item in SCHEMAS:
        if item["id"] == pk:
            return scim_response(item)
    raise not_found("Schema")
