"""SCIM 2.0 provisioning: an IdP's key creates, updates, deactivates and re-activates the
organization's users and maps groups onto roles; nothing reaches another organization."""

import json

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, User
from audit.models import AuditLog
from tokens.models import ApiKey, ApiKeyScope
from tokens.services.api_keys import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def token(alice, org_a):
    return api_key_create(actor=alice, org=org_a, name="Entra", scopes=[ApiKeyScope.SCIM])[1]


class Scim:
    """A SCIM client as an IdP is one: JSON in, JSON out, the bearer token on every call."""

    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def call(self, method: str, path: str, body=None, raw: bytes | None = None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = getattr(self.client, method)(
            "/scim/v2/" + path,
            data=data,
            content_type="application/scim+json",
            HTTP_AUTHORIZATION=f"Bearer {self.token}",
        )
        assert response["Content-Type"] == "application/scim+json"
        return response, (json.loads(response.content) if response.content else None)


@pytest.fixture
def scim(client, token):
    return Scim(client, token)


def new_user(email: str = "nina@acme.example", name: str = "Nina Novak") -> dict:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {"givenName": name.split()[0], "familyName": name.split()[1]},
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
    }


def test_discovery_documents_describe_users_groups_and_patch(scim):
    response, config = scim.call("get", "ServiceProviderConfig")
    assert response.status_code == 200 and config["patch"]["supported"] is True
    _, types = scim.call("get", "ResourceTypes")
    assert [t["endpoint"] for t in types["Resources"]] == ["/Users", "/Groups"]
    _, schemas = scim.call("get", "Schemas")
    assert {s["name"] for s in schemas["Resources"]} == {"User", "Group"}


def test_a_client_script_creates_updates_deactivates_reactivates_and_regroups(scim, org_a):
    response, created = scim.call("post", "Users", new_user())
    assert response.status_code == 201 and created["active"] is True
    user = User.objects.get(email="nina@acme.example")
    membership = Membership.objects.get(user=user, organization=org_a)
    assert (membership.role, membership.max_inference_tokens) == (
        "member",
        org_a.min_inference_tokens,
    )
    assert user.name == "Nina Novak"

    _, found = scim.call("get", 'Users?filter=userName eq "NINA@acme.example"')
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == str(user.pk)

    body = {**new_user(), "displayName": "Nina Novak-Smith"}
    response, put = scim.call("put", f"Users/{user.pk}", body)
    assert response.status_code == 200 and put["displayName"] == "Nina Novak-Smith"

    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    response, patched = scim.call("patch", f"Users/{user.pk}", off)
    assert response.status_code == 200 and patched["active"] is False
    assert User.objects.get(pk=user.pk).is_banned
    assert Membership.objects.filter(pk=membership.pk).exists()  # data and allocation kept

    on = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]}
    _, patched = scim.call("patch", f"Users/{user.pk}", on)
    assert patched["active"] is True and not User.objects.get(pk=user.pk).is_banned

    add = {"op": "add", "path": "members", "value": [{"value": str(user.pk)}]}
    response, group = scim.call(
        "patch", "Groups/auditor", {"schemas": [PATCH], "Operations": [add]}
    )
    assert response.status_code == 200 and str(user.pk) in [m["value"] for m in group["members"]]
    assert Membership.objects.get(pk=membership.pk).role == "auditor"
    remove = {"op": "remove", "path": f'members[value eq "{user.pk}"]'}
    scim.call("patch", "Groups/auditor", {"schemas": [PATCH], "Operations": [remove]})
    assert Membership.objects.get(pk=membership.pk).role == "member"

    response, _ = scim.call("delete", f"Users/{user.pk}")
    assert response.status_code == 204 and User.objects.get(pk=user.pk).is_banned
    rows = AuditLog.objects.filter(target_user=user)
    assert rows.count() >= 8
    key = ApiKey.objects.get(name="Entra")
    assert set(rows.values_list("actor_label", flat=True)) == {f"SCIM token {key.prefix}… (Entra)"}
    assert not rows.filter(actor__isnull=False).exists()


def test_entras_patch_body_deactivates_with_string_false(scim, bob):
    body = {
        "schemas": [PATCH],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    response, user = scim.call("patch", f"Users/{bob.pk}", body)
    assert response.status_code == 200 and user["active"] is False
    assert User.objects.get(pk=bob.pk).is_banned


def test_entras_other_attribute_replacements_are_accepted(scim, bob):
    body = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "Add", "path": "displayName", "value": "Bob Builder"},
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "b@x.example"},
            {"op": "Replace", "path": "name.givenName", "value": "Bob"},
        ],
    }
    response, user = scim.call("patch", f"Users/{bob.pk}", body)
    assert response.status_code == 200 and user["displayName"] == "Bob Builder"


def test_a_user_the_pool_cannot_cover_is_refused_with_a_scim_error(scim, org_a):
    org_a.min_inference_tokens = 10_000_000
    org_a.save()
    response, error = scim.call("post", "Users", new_user())
    assert response.status_code == 409 and error["schemas"] == [ERROR]
    assert "unallocated" in error["detail"]
    assert not User.objects.filter(email="nina@acme.example").exists()


def test_an_address_already_taken_is_a_409_without_naming_the_other_org(scim, carol):
    response, error = scim.call("post", "Users", new_user(email=carol.email))
    assert response.status_code == 409 and error["scimType"] == "uniqueness"
    assert "Bureau" not in error["detail"]


def test_the_last_active_admin_cannot_be_deactivated_nor_leave_the_admin_group(scim, alice):
    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    response, error = scim.call("patch", f"Users/{alice.pk}", off)
    assert response.status_code == 409 and error["schemas"] == [ERROR]
    remove = {"op": "remove", "path": f'members[value eq "{alice.pk}"]'}
    response, _ = scim.call("patch", "Groups/admin", {"schemas": [PATCH], "Operations": [remove]})
    assert response.status_code == 409
    assert not User.objects.get(pk=alice.pk).is_banned
    assert Membership.objects.get(user=alice).role == "admin"


def test_another_organizations_token_sees_404_for_our_users(client, carol, org_b, bob):
    other = api_key_create(actor=carol, org=org_b, name="Okta", scopes=[ApiKeyScope.SCIM])[1]
    scim = Scim(client, other)
    assert scim.call("get", f"Users/{bob.pk}")[0].status_code == 404
    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    assert scim.call("patch", f"Users/{bob.pk}", off)[0].status_code == 404
    assert scim.call("delete", f"Users/{bob.pk}")[0].status_code == 404
    _, found = scim.call("get", f'Users?filter=userName eq "{bob.email}"')
    assert found["totalResults"] == 0
    add = {"op": "add", "path": "members", "value": [{"value": str(bob.pk)}]}
    response, _ = scim.call("patch", "Groups/admin", {"schemas": [PATCH], "Operations": [add]})
    assert response.status_code == 404
    assert not User.objects.get(pk=bob.pk).is_banned
    assert Membership.objects.get(user=bob).role == "member"


def test_a_revoked_token_is_a_401(client, alice, org_a):
    key, secret = api_key_create(actor=alice, org=org_a, name="Old", scopes=[ApiKeyScope.SCIM])
    api_key_revoke(actor=alice, org=org_a, key_id=key.pk)
    response, error = Scim(client, secret).call("get", "Users")
    assert response.status_code == 401 and error["schemas"] == [ERROR]


def test_a_key_without_the_scim_scope_is_refused(client, alice, org_a):
    secret = api_key_create(actor=alice, org=org_a, name="Gateway")[1]
    response, _ = Scim(client, secret).call("get", "Users")
    assert response.status_code == 403


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b"\xff\xfe", b'{"Operations": "x"}', b'{"Operations": [{"op": 3}]}'],
)
def test_bad_json_is_a_400_never_a_500_and_changes_nothing(scim, bob, raw):
    before = AuditLog.objects.count()
    response, error = scim.call("patch", f"Users/{bob.pk}", raw=raw)
    assert response.status_code == 400 and error["schemas"] == [ERROR]
    response, _ = scim.call("post", "Users", raw=raw)
    assert response.status_code == 400
    assert AuditLog.objects.count() == before


@pytest.mark.parametrize(
    "path",
    [
        "Users/abc",
        "Users/99999999999999999999999",
        "Groups/owner",
        'Users?filter=name sw "x"',
        "Users?count=x",
        "Schemas/nope",
    ],
)
def test_odd_paths_and_queries_answer_in_scim_errors(scim, path):
    response, error = scim.call("get", path)
    assert response.status_code in {400, 404} and error["schemas"] == [ERROR]


def test_groups_list_the_three_roles_with_their_members(scim, alice, bob):
    _, groups = scim.call("get", "Groups")
    by_id = {g["id"]: [m["value"] for m in g["members"]] for g in groups["Resources"]}
    assert by_id == {"admin": [str(alice.pk)], "auditor": [], "member": [str(bob.pk)]}
    _, found = scim.call("get", 'Groups?filter=displayName eq "Auditor"')
    assert [g["id"] for g in found["Resources"]] == ["auditor"]


def test_the_panel_shows_what_scim_did_and_offers_the_scim_scope(scim, alice_client):
    scim.call("post", "Users", new_user())
    user = User.objects.get(email="nina@acme.example")
    add = {"op": "add", "path": "members", "value": [{"value": str(user.pk)}]}
    scim.call("patch", "Groups/auditor", {"schemas": [PATCH], "Operations": [add]})
    scim.call("delete", f"Users/{user.pk}")
    html = alice_client.get(reverse("tokens:users")).content.decode()
    assert "nina@acme.example" in html and "Nina Novak" in html
    activity = alice_client.get(reverse("analytics:activity")).content.decode()
    assert "SCIM token" in activity
    keys_page = alice_client.get(reverse("tokens:api_keys")).content.decode()
    assert 'value="scim"' in keys_page


def test_deactivation_ends_the_users_sessions(scim, client, bob):
    bobs = Client()
    bobs.force_login(bob)
    assert bobs.session.session_key
    off = {
        "schemas": [PATCH],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    scim.call("patch", f"Users/{bob.pk}", off)
    assert not Session.objects.filter(session_key=bobs.session.session_key).exists()


def test_oktas_group_patch_with_a_displayname_replace_and_members_add(scim, bob):
    body = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "replace", "value": {"id": "admin", "displayName": "Admin"}},
            {
                "op": "add",
                "path": "members",
                "value": [{"value": str(bob.pk), "display": bob.email}],
            },
        ],
    }
    response, group = scim.call("patch", "Groups/admin", body)
    assert response.status_code == 200 and str(bob.pk) in [m["value"] for m in group["members"]]
    assert Membership.objects.get(user=bob).role == "admin"


def test_a_failed_group_operation_undoes_the_ones_before_it(scim, alice, bob):
    body = {
        "schemas": [PATCH],
        "Operations": [
            {"op": "add", "path": "members", "value": [{"value": str(bob.pk)}]},
            {"op": "add", "path": "members", "value": [{"value": "999999"}]},
        ],
    }
    response, error = scim.call("patch", "Groups/auditor", body)
    assert response.status_code == 404 and error["schemas"] == [ERROR]
    assert Membership.objects.get(user=bob).role == "member"


def test_listing_users_takes_a_fixed_number_of_queries(scim, org_a, django_assert_max_num_queries):
    org_a.min_inference_tokens = org_a.min_embedding_tokens = 0
    org_a.save()
    for n in range(5):
        assert (
            scim.call("post", "Users", new_user(f"u{n}@acme.example", f"U {n}"))[0].status_code
            == 201
        )
    with django_assert_max_num_queries(6):
        response, found = scim.call("get", "Users")
    assert found["totalResults"] == 6 and len(found["Resources"]) == 6  # alice and five


def test_a_username_change_is_applied_unless_another_account_holds_the_address(scim, bob, dave):
    rename = {"op": "replace", "path": "userName", "value": "robert@acme.example"}
    response, user = scim.call(
        "patch", f"Users/{bob.pk}", {"schemas": [PATCH], "Operations": [rename]}
    )
    assert response.status_code == 200 and user["userName"] == "robert@acme.example"
    taken = {"op": "replace", "path": "userName", "value": dave.email}
    response, error = scim.call(
        "patch", f"Users/{bob.pk}", {"schemas": [PATCH], "Operations": [taken]}
    )
    assert response.status_code == 409 and "Bureau" not in error["detail"]
    assert User.objects.get(pk=bob.pk).email == "robert@acme.example"
