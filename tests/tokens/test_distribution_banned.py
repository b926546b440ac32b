"""Token Distribution's split, set and top up skip banned members, as the floor action does:
their floor is 0 and they cannot use tokens. The preview says how many are left out."""

import pytest
from django.urls import reverse

from accounts.models import User
from asksage_admin.lib.errors import DomainError
from tests.factories import MembershipFactory, max_of
from tokens.services import distribution as distribution_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def quintet(org_a, alice, bob):
    """alice and bob active; carl, dina and emil banned (each 200K of 4M inference)."""
    banned = [
        MembershipFactory(organization=org_a, user__email=f"{name}@example.com").user
        for name in ("carl", "dina", "emil")
    ]
    User.objects.filter(pk__in=[u.pk for u in banned]).update(is_banned=True)
    return [alice, bob, *banned]


def _plan(org, action, **kwargs):
    return distribution_services.distribution_plan(
        org=org, kind="inference", action=action, **kwargs
    )


def test_a_split_with_no_users_chosen_shares_the_pool_among_active_members_only(org_a, quintet):
    plan = _plan(org_a, "split")
    alice, bob = quintet[:2]
    assert [u for u, *_ in plan.rows] == [alice, bob]
    assert [new - old for _u, _m, old, new in plan.rows] == [1_500_000, 1_500_000]  # 3M / 2
    assert plan.banned_left_out == 3
    assert plan.left_out_note == "3 banned members are left out."


@pytest.mark.parametrize("action", ["set", "topup"])
def test_set_and_top_up_with_no_users_chosen_leave_banned_members_alone(
    alice, org_a, quintet, action
):
    distribution_services.distribution_apply(
        admin=alice, org=org_a, kind="inference", action=action, amount=500_000
    )
    assert [max_of(u) for u in quintet] == [500_000, 500_000, 200_000, 200_000, 200_000]


def test_a_chosen_banned_member_is_left_out_and_counted(org_a, quintet):
    bob, carl = quintet[1], quintet[2]
    plan = _plan(org_a, "set", amount=500_000, user_ids=[bob.pk, carl.pk])
    assert [u for u, *_ in plan.rows] == [bob]
    assert plan.left_out_note == "1 banned member is left out."


def test_choosing_only_banned_members_is_refused_in_words(org_a, quintet):
    with pytest.raises(DomainError, match="the 2 chosen are banned and cannot use tokens"):
        _plan(org_a, "split", user_ids=[u.pk for u in quintet[3:]])


def test_the_preview_says_how_many_banned_members_are_left_out(alice_client, quintet):
    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {"op": "preview", "kind": "inference", "action": "split"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert "3 banned members are left out." in html and "Apply to 2 users" in html


def test_the_preview_says_nothing_of_banned_members_when_there_are_none(alice_client, bob):
    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {"op": "preview", "kind": "inference", "action": "split"},
    )
    assert "left out" not in response.content.decode()
