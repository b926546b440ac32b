"""/scim/v2/Users: the key's organization's members, and nobody else."""

import re

from django.http import HttpRequest, HttpResponse

from accounts.models import Membership
from tokens.models import ApiKey
from tokens.scim import resources as r
from tokens.scim.auth import scim_view
from tokens.scim.errors import bad_request, not_found, scim_response
from tokens.scim.services import scim_user_create, scim_user_update

# What Entra ID and Okta send first to find a user: `userName eq "…"`.
FILTER = re.compile(r'^\s*userName\s+eq\s+"([^"]{1,254})"\s*$', re.IGNORECASE)
MAX_PAGE = 200


def members_of(key: ApiKey):
    """The key's organization's members with their users: every SCIM lookup starts here."""
    return Membership.objects.filter(organization_id=key.organization_id).select_related("user")


def _membership(key: ApiKey, pk: str) -> Membership:
    """One of the key's organization's members; any other id (another org's) is a 404."""
    if not r.is_id(pk):
        raise not_found("User")
    membership = members_of(key).filter(user_id=int(pk)).first()
    if membership is None:
        raise not_found("User")
    return membership


def _int(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name, "")
    if not raw:
        return default
    if not r.is_id(raw) or len(raw) > 9:
        raise bad_request(f"{name} must be a whole number.")
    return max(low, min(int(raw), high))


@scim_view("GET", "POST")
def users(request: HttpRequest, key: ApiKey, body: dict) -> HttpResponse:
    if request.method == "POST":
        changes = r.user_changes(body)
        if "email" not in changes:
            raise bad_request("userName is required.")
        membership = scim_user_create(
            key=key,
            email=changes["email"],
            name=changes.get("name", ""),
            active=changes.get("active", True),
            ip=request.scim_ip,
        )
        return scim_response(r.user_resource(request, membership), 201)
    members = members_of(key).order_by("user_id")
    if raw_filter := request.GET.get("filter", ""):
        match = FILTER.match(raw_filter)
        if match is None or r.text_problem(match.group(1)):
            raise bad_request('Only filter=userName eq "…" is supported.', "invalidFilter")
        members = members.filter(user__email__iexact=match.group(1).strip())
    start = _int(request, "startIndex", 1, 1, 10**9)
    count = _int(request, "count", 100, 0, MAX_PAGE)
    total = members.count()
    page = list(members[start - 1 : start - 1 + count])
    return scim_response(r.list_response([r.user_resource(request, m) for m in page], total, start))


@scim_view("GET", "PUT", "PATCH", "DELETE")
def user(request: HttpRequest, key: ApiKey, body: dict, pk: str) -> HttpResponse:
    membership = _membership(key, pk)
    if request.method == "GET":
        return scim_response(r.user_resource(request, membership))
    if request.method == "DELETE":
        scim_user_update(
            key=key, membership=membership, changes={"active": False}, ip=request.scim_ip
        )
        return scim_response(None, 204)
    if request.method == "PUT":
        changes = r.user_changes(body)
        if "email" not in changes:
            raise bad_request("userName is required.")
    else:
        changes = r.user_patch_changes(body)
    membership = scim_user_update(
        key=key, membership=membership, changes=changes, ip=request.scim_ip
    )
    return scim_response(r.user_resource(request, membership))
