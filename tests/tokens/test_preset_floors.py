"""Presets never strand users (issue 20, item 2): a floor the unallocated pool cannot raise
everyone to is refused with the amount missing; one it can is applied with everyone raised."""

import pytest
from django.urls import reverse

from accounts.models import Membership
from asksage_admin.lib.errors import DomainError
from audit.models import AuditLog
from tests.factories import MembershipFactory, OrganizationFactory, PurchaseFactory
from tokens.models import AllocationBatch, AllocationPolicy
from tokens.services import policy as policy_services

pytestmark = pytest.mark.django_db

URL = reverse("tokens:distribution_preset")
HX = {"HX-Request": "true"}


@pytest.fixture
def small_pool():
    """The issue's trap: 2,000,000 inference tokens, 4 users at 200,000 (one the admin)."""
    org = OrganizationFactory(name="Small Pool")
    PurchaseFactory(organization=org, kind="inference", tokens_per_month=2_000_000)
    PurchaseFactory(organization=org, kind="embedding", tokens_per_month=8_000_000)
    admin = MembershipFactory(organization=org, role="admin", user__email="ada@example.com").user
    for n in range(3):
        MembershipFactory(organization=org, user__email=f"m{n}@example.com")
    return org, admin


def maxes(org) -> list[int]:
    return sorted(
        Membership.objects.filter(organization=org).values_list("max_inference_tokens", flat=True)
    )


def test_the_preview_of_a_floor_the_pool_cannot_cover_says_how_much_is_missing(small_pool):
    org, _admin = small_pool
    preview = policy_services.policy_preview(org=org, preset="aggressive")
    assert preview.blocked
    # 4 × 1,000,000 − 800,000 held = 3,200,000 needed; 1,200,000 unallocated.
    assert preview.missing == {"inference": 2_000_000, "embedding": 0}
    assert not AllocationPolicy.objects.exists()


def test_applying_a_floor_the_pool_cannot_cover_is_refused_and_changes_nothing(small_pool):
    org, admin = small_pool
    with pytest.raises(DomainError, match="2,000,000 missing"):
        policy_services.policy_apply(admin=admin, org=org, preset="aggressive")
    org.refresh_from_db()
    assert org.min_inference_tokens == 200_000
    assert maxes(org) == [200_000] * 4
    assert not AllocationPolicy.objects.exists()
    assert not AuditLog.objects.filter(action="policy.changed").exists()


def test_a_custom_floor_the_pool_cannot_cover_is_refused_too(small_pool):
    org, admin = small_pool
    given = {
        "floor_inference": 900_000,
        "floor_embedding": 0,
        "ceiling": None,
        "trigger_percent": 80,
        "cooldown_minutes": 60,
        "step_mode": "percent",
        "step_value": 25,
    }
    with pytest.raises(DomainError, match="1,600,000 missing"):
        policy_services.policy_apply(admin=admin, org=org, preset="custom", given=given)


def test_a_floor_the_pool_covers_raises_everyone_to_it_in_one_audited_batch(small_pool):
    org, admin = small_pool
    preview = policy_services.policy_preview(org=org, preset="standard")
    assert not preview.blocked and preview.raised == 4
    policy = policy_services.policy_apply(admin=admin, org=org, preset="standard")
    assert policy.raised == 4
    org.refresh_from_db()
    assert org.min_inference_tokens == 500_000
    assert maxes(org) == [500_000] * 4  # 1,200,000 unallocated was exactly enough
    assert not Membership.objects.filter(
        organization=org, max_inference_tokens__lt=org.min_inference_tokens
    ).exists()
    batch = AllocationBatch.objects.get(organization=org, column="max_inference_tokens")
    assert (batch.source, batch.actor, len(batch.changes)) == ("preset", admin, 4)
    assert AuditLog.objects.get(action="policy.changed").details["raised"] == 4


def test_the_preview_answer_refuses_to_offer_an_apply_and_names_the_way_out(client, small_pool):
    org, admin = small_pool
    client.force_login(admin)
    response = client.post(URL, {"op": "preview", "preset": "aggressive"}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "cannot be applied as is" in html and "2,000,000 missing" in html
    assert "buy more tokens" in html
    assert "Apply Aggressive preset" not in html


def test_the_preview_offers_to_apply_and_raise_when_the_pool_allows(client, small_pool):
    org, admin = small_pool
    client.force_login(admin)
    response = client.post(URL, {"op": "preview", "preset": "standard"}, headers=HX)
    html = response.content.decode()
    assert "Apply Standard preset and raise 4 users to the floor" in html
    assert "using 1,200,000 of the 1,200,000 unallocated tokens" in html


def test_a_forged_apply_of_an_uncoverable_floor_answers_422_with_words(client, small_pool):
    org, admin = small_pool
    client.force_login(admin)
    response = client.post(URL, {"op": "apply", "preset": "aggressive"}, headers=HX)
    assert response.status_code == 422
    assert "2,000,000 missing" in response.content.decode()
    assert maxes(org) == [200_000] * 4


def test_the_answer_after_applying_says_who_was_raised(client, small_pool):
    org, admin = small_pool
    client.force_login(admin)
    response = client.post(URL, {"op": "apply", "preset": "standard"}, headers=HX)
    assert response.status_code == 200
    assert "The Standard preset is now active. 4 users raised to its floor." in (
        response.content.decode()
    )
