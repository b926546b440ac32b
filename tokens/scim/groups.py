"""/scim/v2/Groups: the three roles. Adding a user to a group gives them that role; removing
them from their role's group makes them a member (the role every user has at least)."""

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from accounts.models import Membership
from tokens.models import ApiKey
from tokens.scim import resources as r
from tokens.scim.auth import scim_view
from tokens.scim.errors import ScimError, bad_request, not_found, scim_response
from tokens.scim.services import scim_role_set
from tokens.scim.users import members_of


def _all(key: ApiKey) -> list[Membership]:
    return list(members_of(key).order_by("user_id"))


@scim_view("GET", "POST")
def groups(request: HttpRequest, key: ApiKey, body: dict) -> HttpResponse:
    if request.method == "POST":
        raise ScimError(409, "Groups are the roles admin, auditor and member: none can be added.")
    wanted = list(r.ROLES)
    if raw_filter := request.GET.get("filter", ""):
        name = raw_filter.partition(" eq ")[2].strip().strip('"').lower()
        if not raw_filter.strip().lower().startswith("displayname eq") or not name:
            raise bad_request('Only filter=displayName eq "…" is supported.', "invalidFilter")
        wanted = [role for role, label in r.ROLES.items() if name in {role, label.lower()}]
    members = _all(key)
    found = [r.group_resource(request, role, members) for role in wanted]
    return scim_response(r.list_response(found, len(found), 1))


def _member_ids(value) -> list[int]:
    items = value if isinstance(value, list) else [value]
    ids = []
    for item in items:
        raw = item.get("value") if isinstance(item, dict) else None
        if not r.is_id(raw):
            raise bad_request("Each member needs a value: a User id.")
        ids.append(int(raw))
    return ids


def _filtered_member(path: str) -> list[int]:
    """Entra's removal: `members[value eq "42"]`."""
    inside = path[len("members[") : -1] if path.endswith("]") else ""
    value = inside.partition(" eq ")[2].strip().strip('"')
    if not r.is_id(value):
        raise bad_request(f"The path “{path[:60]}” is not supported.", "invalidPath")
    return [int(value)]


@scim_view("GET", "PATCH")
def group(request: HttpRequest, key: ApiKey, body: dict, pk: str) -> HttpResponse:
    if pk not in r.ROLES:
        raise not_found("Group")
    if request.method == "PATCH":
        with transaction.atomic():  # all the operations, or none
            _patch(request, key, pk, body)
    return scim_response(r.group_resource(request, pk, _all(key)))


def _patch(request: HttpRequest, key: ApiKey, pk: str, body: dict) -> None:
    for kind, path, value in r.patch_operations(body):
        if path.lower() == "displayname" or (not path and isinstance(value, dict)):
            continue  # renaming a role is not ours to do; Okta sends the name back
        if path.lower().startswith("members["):
            ids, kind = _filtered_member(path), "remove"
        elif path.lower() == "members":
            ids = _member_ids(value)
        else:
            raise bad_request(f"The path “{path[:60]}” is not supported.", "invalidPath")
        _apply(request, key, pk, kind, ids)


def _apply(request: HttpRequest, key: ApiKey, role: str, kind: str, ids: list[int]) -> None:
    by_user = {m.user_id: m for m in members_of(key).filter(user_id__in=ids)}
    for user_id in ids:
        membership = by_user.get(user_id)
        if membership is None:
            raise not_found(f"User {user_id}")
        if kind == "remove":
            if membership.role != role:
                continue
            new = Membership.Role.MEMBER
        else:
            new = role
        scim_role_set(key=key, membership=membership, role=new, ip=request.scim_ip)
