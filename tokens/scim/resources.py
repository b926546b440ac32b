"""The SCIM shapes of our users and groups (RFC 7643), and the parsing of what IdPs send.

A User is a membership of the key's organization (its id is the user's id); a Group is one of
the three roles, its id the role's name.
"""

from django.urls import reverse

from accounts.models import Membership
from asksage_admin.lib.inputs import text_problem
from tokens.scim.errors import bad_request

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ROLES = dict(Membership.Role.choices)  # group id → display name


def user_resource(request, membership: Membership) -> dict:
    user = membership.user
    return {
        "schemas": [USER_SCHEMA],
        "id": str(user.pk),
        "userName": user.email,
        "displayName": user.name,
        "name": {"formatted": user.name},
        "emails": [{"value": user.email, "type": "work", "primary": True}],
        "active": not user.is_banned,
        "groups": [{"value": membership.role, "display": ROLES[membership.role]}],
        "meta": {
            "resourceType": "User",
            "created": user.date_joined.isoformat(),
            "location": request.build_absolute_uri(
                reverse("scim:user", kwargs={"pk": str(user.pk)})
            ),
        },
    }


def group_resource(request, role: str, memberships: list[Membership]) -> dict:
    return {
        "schemas": [GROUP_SCHEMA],
        "id": role,
        "displayName": ROLES[role],
        "members": [
            {"value": str(m.user_id), "display": m.user.email}
            for m in memberships
            if m.role == role
        ],
        "meta": {
            "resourceType": "Group",
            "location": request.build_absolute_uri(reverse("scim:group", kwargs={"pk": role})),
        },
    }


def list_response(resources: list[dict], total: int, start: int) -> dict:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def is_id(value) -> bool:
    """An id as we write them: ASCII digits ("²" passes isdigit() but not int()), 18 at most."""
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18


def as_bool(value, where: str) -> bool:
    """`active` as IdPs send it: true/false, or Entra's "True"/"False" strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise bad_request(f"{where} must be true or false.")


def as_text(value, where: str, limit: int = 254) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise bad_request(f"{where} must be a non-empty string of at most {limit} characters.")
    if problem := text_problem(value):
        raise bad_request(f"{where} {problem}.")
    return value.strip()


def user_changes(body: dict) -> dict:
    """The changes a full User (POST, PUT) asks for: userName, a display name, active."""
    changes: dict = {}
    if "userName" in body:
        changes["email"] = as_text(body["userName"], "userName")
    name = body.get("displayName") or _formatted(body.get("name"))
    if name:
        changes["name"] = as_text(name, "displayName", 150)
    if "active" in body:
        changes["active"] = as_bool(body["active"], "active")
    return changes


def _formatted(name) -> str:
    if not isinstance(name, dict):
        return ""
    if isinstance(name.get("formatted"), str) and name["formatted"].strip():
        return name["formatted"]
    parts = [name.get("givenName"), name.get("familyName")]
    return " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())


def patch_operations(body: dict) -> list[tuple[str, str, object]]:
    """(op, path, value) for each PatchOp operation, op lower-cased (Entra sends "Replace")."""
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations or len(operations) > 100:
        raise bad_request("Operations must be a list of 1 to 100 operations.", "invalidSyntax")
    parsed = []
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise bad_request("Each operation needs an op.", "invalidSyntax")
        kind = op["op"].strip().lower()
        if kind not in {"add", "replace", "remove"}:
            raise bad_request(f"Unknown op “{op['op'][:20]}”.", "invalidSyntax")
        path = op.get("path", "")
        if not isinstance(path, str):
            raise bad_request("An operation's path must be a string.", "invalidPath")
        parsed.append((kind, path.strip(), op.get("value")))
    return parsed


def user_patch_changes(body: dict) -> dict:
    """Entra's `{"op":"Replace","path":"active","value":"False"}` and Okta's
    `{"op":"replace","value":{"active":false}}` alike, plus userName and display names."""
    changes: dict = {}
    for kind, path, value in patch_operations(body):
        if kind == "remove":
            raise bad_request("Removing a User attribute is not supported.", "mutability")
        if not path:
            if not isinstance(value, dict):
                raise bad_request("A replace without a path needs an object value.")
            changes.update(user_changes(value))
        elif path in {"active", "userName", "displayName"}:
            changes.update(user_changes({path: value}))
        elif path in {"name.formatted", "name.givenName", "name.familyName"}:
            continue  # the display name carries the name; parts alone are not stored
        elif path.startswith("emails") or path.startswith("externalId"):
            continue  # the userName is the address; Entra sends these alongside
        else:
            raise bad_request(f"The path “{path[:60]}” is not supported.", "invalidPath")
    return changes
