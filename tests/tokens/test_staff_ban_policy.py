"""The Banned box on a user's page in /staff/ applies the organization's deactivation policy,
as the panel's toggle and SCIM do: in the same transaction, audited with the staff member as
the actor; an un-ban the pool cannot cover is refused in words and changes nothing."""

import pytest
from django.contrib.messages import get_messages

from accounts.models import Membership, Organization, User
from accounts.services import user_set_flag
from audit.models import AuditLog
from tests.accounts.staff_forms import change_url, form_data
from tests.concurrency import run_together
from tests.factories import UserFactory
from tokens.selectors import allocated
from tokens.services.members import member_banned_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def newcomer(db):
    return UserFactory(email="nina@example.com")


def _maxima(user: User) -> tuple[int, int]:
    m = Membership.objects.get(user=user)
    return m.max_inference_tokens, m.max_embedding_tokens


def _post_banned(client, user: User, banned: bool, **changes):
    url = change_url(user)
    data = form_data(client.get(url))
    data.pop("is_banned", None)
    if banned:
        data["is_banned"] = "on"
    data.update(changes)
    return client.post(url, data)


def test_a_ban_in_staff_returns_the_allocation_to_the_pool_audited_by_the_staff_member(
    staff_client, sam, org_a, bob
):
    Membership.objects.filter(user=bob).update(max_inference_tokens=900_000)
    before = allocated(org_a)["inference"]

    assert _post_banned(staff_client, bob, True).status_code == 302

    assert User.objects.get(pk=bob.pk).is_banned and _maxima(bob) == (0, 0)
    assert allocated(org_a)["inference"] == before - 900_000
    row = AuditLog.objects.get(action="allocation.changed", target_user=bob)
    assert (row.actor, row.old_value, row.new_value) == (sam, "900000", "0")
    assert row.organization == org_a


def test_an_unban_in_staff_gives_the_floors_back(staff_client, sam, org_a, bob):
    Membership.objects.filter(user=bob).update(max_inference_tokens=900_000)
    _post_banned(staff_client, bob, True)

    assert _post_banned(staff_client, bob, False).status_code == 302

    assert not User.objects.get(pk=bob.pk).is_banned
    assert _maxima(bob) == (org_a.min_inference_tokens, org_a.min_embedding_tokens)
    rows = AuditLog.objects.filter(action="allocation.changed", target_user=bob).order_by("pk")
    assert [(r.actor, r.new_value) for r in rows] == [(sam, "0"), (sam, "200000")]


def test_an_unban_the_pool_cannot_cover_is_refused_in_words_and_changes_nothing(
    staff_client, org_a, alice, bob
):
    _post_banned(staff_client, bob, True)
    alice_m = Membership.objects.get(user=alice)
    alice_m.max_inference_tokens += 4_000_000 - allocated(org_a)["inference"]
    alice_m.save()
    rows = AuditLog.objects.count()

    response = _post_banned(staff_client, bob, False, name="Robert Member")

    assert response.status_code == 302 and response.url == change_url(bob)
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "bob@example.com cannot be re-activated" in message and "unallocated" in message
    bob.refresh_from_db()
    assert bob.is_banned and bob.name == "Bob Member" and _maxima(bob) == (0, 0)
    assert AuditLog.objects.count() == rows


def test_under_the_keep_policy_a_ban_in_staff_keeps_the_allocation(staff_client, org_a, bob):
    Organization.objects.filter(pk=org_a.pk).update(on_deactivation="keep")
    Membership.objects.filter(user=bob).update(max_inference_tokens=900_000)

    _post_banned(staff_client, bob, True)

    assert User.objects.get(pk=bob.pk).is_banned and _maxima(bob) == (900_000, 0)
    assert not AuditLog.objects.filter(action="allocation.changed").exists()


def test_a_user_in_no_organization_is_banned_and_unbanned_in_staff_as_before(
    staff_client, newcomer
):
    assert _post_banned(staff_client, newcomer, True).status_code == 302
    assert User.objects.get(pk=newcomer.pk).is_banned
    assert _post_banned(staff_client, newcomer, False).status_code == 302
    assert not User.objects.get(pk=newcomer.pk).is_banned


@pytest.mark.django_db(transaction=True)
def test_a_staff_ban_and_a_panel_ban_of_one_member_at_once_both_end_well(sam, alice, org_a, bob):
    """Both lock the organization row first (the order of every allocation writer), so neither
    waits on the other's user or membership row in the opposite order: no deadlock, one ban."""
    Membership.objects.filter(user=bob).update(max_inference_tokens=900_000)

    outcomes = run_together(
        lambda: user_set_flag(actor=sam, org=org_a, user=bob, flag="is_banned", value=True),
        lambda: member_banned_set(
            admin=alice, org=org_a, membership=Membership.objects.get(user=bob), value=True
        ),
    )

    assert [outcome[0] for outcome in outcomes] == ["ok", "ok"], outcomes
    assert User.objects.get(pk=bob.pk).is_banned and _maxima(bob) == (0, 0)
    assert AuditLog.objects.filter(action="user.banned", target_user=bob).count() == 1
    assert AuditLog.objects.filter(action="allocation.changed", target_user=bob).count() == 1
