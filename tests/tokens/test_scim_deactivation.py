"""Deactivation returns a member's allocation to the pool (or keeps it, per the organization's
policy); re-activation gives the floors back if the pool covers them, else a 409 in words that
changes nothing. The panel's Banned toggle follows the same policy, and no save, import or
preset pushes tokens back onto a banned member."""

import json

import pytest
from django.urls import reverse

from accounts.models import Membership, Organization, User
from accounts.services import organization_update
from audit.models import AuditLog
from tests.factories import MonthlyUsageFactory
from tokens.imports.parse import ImportRow
from tokens.imports.preview import classify, members_by_email
from tokens.models import ApiKey, ApiKeyScope
from tokens.selectors import allocated
from tokens.services.allocations import allocation_batch_save, pending_edit_set
from tokens.services.api_keys import api_key_create
from tokens.services.auto_increase import auto_increase_apply
from tokens.services.distribution import distribution_plan
from tokens.services.members import member_banned_set
from tokens.services.policy import policy_apply
from tokens.services.preset_floors import floor_shortfall, raise_to_floors

pytestmark = pytest.mark.django_db
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTRA_OFF = {
    "schemas": [PATCH],
    "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
}
ENTRA_ON = {
    "schemas": [PATCH],
    "Operations": [{"op": "Replace", "path": "active", "value": "True"}],
}
OKTA_OFF = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
OKTA_ON = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]}
HX = {"HX-Request": "true"}


@pytest.fixture
def patch(client, alice, org_a):
    token = api_key_create(actor=alice, org=org_a, name="Entra", scopes=[ApiKeyScope.SCIM])[1]

    def call(user: User, body: dict):
        response = client.patch(
            f"/scim/v2/Users/{user.pk}",
            data=json.dumps(body),
            content_type="application/scim+json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        return response, json.loads(response.content)

    return call


def _maxima(user: User) -> tuple[int, int]:
    m = Membership.objects.get(user=user)
    return m.max_inference_tokens, m.max_embedding_tokens


def _fill_the_pool(org: Organization, admin: User) -> None:
    """Everything unallocated goes to `admin`, so no re-activation can be covered."""
    m = Membership.objects.get(user=admin)
    m.max_inference_tokens += 4_000_000 - allocated(org)["inference"]
    m.save()


def test_entras_deactivation_returns_the_allocation_to_the_pool_audited_by_the_key(
    patch, org_a, bob
):
    Membership.objects.filter(user=bob).update(max_inference_tokens=900_000)
    before = allocated(org_a)["inference"]
    response, body = patch(bob, ENTRA_OFF)
    assert response.status_code == 200 and body["active"] is False
    assert _maxima(bob) == (0, 0)
    assert allocated(org_a)["inference"] == before - 900_000
    row = AuditLog.objects.get(action="allocation.changed", target_user=bob)
    key = ApiKey.objects.get(name="Entra")
    assert (row.old_value, row.new_value) == ("900000", "0")
    assert row.actor_label == f"SCIM token {key.prefix}… (Entra)" and row.actor is None


def test_oktas_reactivation_gives_the_floors_not_the_old_maxima(patch, org_a, bob):
    Membership.objects.filter(user=bob).update(max_inference_tokens=900_000)
    patch(bob, OKTA_OFF)
    response, body = patch(bob, OKTA_ON)
    assert response.status_code == 200 and body["active"] is True
    assert _maxima(bob) == (org_a.min_inference_tokens, org_a.min_embedding_tokens)
    rows = AuditLog.objects.filter(action="allocation.changed", target_user=bob).order_by("pk")
    assert [(r.old_value, r.new_value) for r in rows] == [("900000", "0"), ("0", "200000")]


def test_a_reactivation_the_pool_cannot_cover_is_a_409_in_words_that_changes_nothing(
    patch, org_a, alice, bob
):
    patch(bob, ENTRA_OFF)
    _fill_the_pool(org_a, alice)
    audit_rows = AuditLog.objects.count()
    response, error = patch(bob, ENTRA_ON)
    assert response.status_code == 409
    assert "cannot be re-activated" in error["detail"] and "unallocated" in error["detail"]
    assert User.objects.get(pk=bob.pk).is_banned and _maxima(bob) == (0, 0)
    assert AuditLog.objects.count() == audit_rows


def test_under_the_keep_policy_deactivation_keeps_the_allocation(patch, org_a, sam, bob):
    organization_update(
        actor=sam,
        org=org_a,
        name=org_a.name,
        billing_address=org_a.billing_address,
        admin_notes="",
        on_deactivation="keep",
    )
    assert AuditLog.objects.filter(action="org.updated", column="on_deactivation").exists()
    org_a.refresh_from_db()
    Membership.objects.filter(user=bob).update(max_inference_tokens=900_000)
    patch(bob, OKTA_OFF)
    assert User.objects.get(pk=bob.pk).is_banned and _maxima(bob) == (900_000, 0)
    patch(bob, OKTA_ON)
    assert _maxima(bob) == (900_000, 0)


def test_sales_choose_the_policy_on_the_organizations_page(staff_client, org_a):
    url = reverse("admin:accounts_organization_change", args=[org_a.pk])
    assert "when a member is deactivated" in staff_client.get(url).content.decode().lower()


def test_the_panels_ban_toggle_follows_the_policy_and_unban_needs_the_pool(
    alice_client, org_a, alice, bob
):
    url = reverse("tokens:user_flag", args=[bob.pk, "banned"])
    alice_client.post(url, {"value": "on"}, headers=HX)
    assert User.objects.get(pk=bob.pk).is_banned and _maxima(bob) == (0, 0)
    _fill_the_pool(org_a, alice)
    response = alice_client.post(url, {}, headers=HX)
    assert response.status_code == 422
    assert "cannot be re-activated" in json.dumps(response.headers.get("HX-Trigger", ""))
    assert User.objects.get(pk=bob.pk).is_banned and _maxima(bob) == (0, 0)
    Membership.objects.filter(user=alice).update(max_inference_tokens=200_000)
    alice_client.post(url, {}, headers=HX)
    assert not User.objects.get(pk=bob.pk).is_banned and _maxima(bob) == (200_000, 0)


def test_a_banned_member_at_zero_is_neither_refused_nor_raised_by_saves_imports_or_presets(
    patch, org_a, alice, bob
):
    patch(bob, ENTRA_OFF)
    org_a.refresh_from_db()
    # Save Changes: a banned member's floor is 0, so a value under the organization's is fine.
    for user, value in ((bob, 100_000), (alice, 300_000)):
        pending_edit_set(
            admin=alice,
            org=org_a,
            membership=Membership.objects.get(user=user),
            column="max_inference_tokens",
            value=value,
        )
    assert allocation_batch_save(admin=alice, org=org_a, column="max_inference_tokens").ok
    # An import that keeps a banned member at 0 is not "under the floor".
    row = ImportRow(number=2, email=bob.email, values={"max_inference_tokens": 0})
    result = classify(org_a, [row], members_by_email(org_a, [bob.email]))
    assert not result.under_floor
    # A preset raising the floors raises nobody banned.
    floors = {"inference": 300_000, "embedding": 0}
    assert floor_shortfall(org_a, floors)["inference"][0] == 0  # alice is at 300k already
    raise_to_floors(admin=alice, org=org_a, floors=floors, ip=None)
    assert _maxima(bob) == (100_000, 0)


def test_auto_increase_and_the_floor_action_give_nothing_to_a_banned_member_who_kept_tokens(
    alice, org_a, bob
):
    policy_apply(admin=alice, org=org_a, preset="conservative")  # 90 %, +25 %
    Organization.objects.filter(pk=org_a.pk).update(on_deactivation="keep")  # 200K kept
    org_a.refresh_from_db()
    before = _maxima(bob)
    member_banned_set(
        admin=alice, org=org_a, membership=Membership.objects.get(user=bob), value=True
    )
    MonthlyUsageFactory(user=bob, organization=org_a, kind="inference", used=180_000)
    assert auto_increase_apply(user=bob, kind="inference") is None
    plan = distribution_plan(org=org_a, kind="inference", action="floor")
    assert bob.pk not in [user.pk for user, *_ in plan.rows]
    assert _maxima(bob) == before
