"""One vocabulary of audit actions: writers refuse anything else, the Activity filter finds
every family and every action, and the page shows them in words."""

import pytest
from django.urls import reverse

from asksage_admin.lib.audit_actions import (
    FAMILIES,
    AuditAction,
    UnknownAuditAction,
    family_of,
    filter_choices,
)
from audit.models import AuditLog
from audit.services import audit_bulk, audit_record

URL = reverse("analytics:activity")


def test_a_writer_refuses_an_action_outside_the_vocabulary(org_a, alice):
    with pytest.raises(UnknownAuditAction):
        audit_record(action="request.approved", organization=org_a, actor=alice)
    with pytest.raises(UnknownAuditAction):
        audit_bulk([AuditLog(organization=org_a, actor=alice, action="apikey.created")])
    assert not AuditLog.objects.exists()


def test_every_action_belongs_to_a_family_the_filter_offers():
    offered = {value for value, _ in filter_choices()}
    for action in AuditAction:
        assert family_of(action.value) in FAMILIES, action
        assert family_of(action.value) in offered, action


@pytest.mark.parametrize("action", list(AuditAction), ids=lambda a: a.value)
def test_the_activity_filter_finds_each_action_by_its_family_and_by_itself(
    alice_client, org_a, alice, action
):
    audit_record(action=action, organization=org_a, actor=alice, new="needle")
    if action != AuditAction.ALLOCATION_CHANGED:
        audit_record(action=AuditAction.ALLOCATION_CHANGED, organization=org_a, actor=alice)

    for value in {family_of(action.value), action.value} & {v for v, _ in filter_choices()}:
        rows = alice_client.get(URL, {"action": value}).context["page"].object_list
        assert [row.action for row in rows if row.new_value == "needle"] == [action.value]
        if family_of(action.value) != "allocation":
            assert all(family_of(row.action) == family_of(action.value) for row in rows)


def test_the_activity_page_shows_actions_in_words_with_the_code_on_hover(
    alice_client, org_a, alice, bob
):
    audit_record(action="user.banned", organization=org_a, actor=alice, target_user=bob)
    audit_record(action="token_request.approved", organization=org_a, actor=alice)

    html = alice_client.get(URL).content.decode()

    assert '<span title="user.banned">Banned changed</span>' in html
    assert '<span title="token_request.approved">Token request approved</span>' in html


def test_filter_groups_that_found_nothing_before_now_find_their_rows(alice_client, org_a, alice):
    """Token requests and API keys were filtered as `request` and `apikey`, which no action
    starts with: the filter answered 0 rows although such rows existed."""
    audit_record(action="token_request.created", organization=org_a, actor=alice)
    audit_record(action="api_key.created", organization=org_a, actor=alice)

    for family, expected in [
        ("token_request", "token_request.created"),
        ("api_key", "api_key.created"),
    ]:
        rows = alice_client.get(URL, {"action": family}).context["page"].object_list
        assert [row.action for row in rows] == [expected]


def test_activity_values_read_as_words_and_formatted_numbers(alice_client, org_a, alice, bob):
    audit_record(
        action="user.banned",
        organization=org_a,
        actor=alice,
        target_user=bob,
        column="banned",
        old=False,
        new=True,
    )
    audit_record(
        action="allocation.changed",
        organization=org_a,
        actor=alice,
        target_user=bob,
        column="max_inference_tokens",
        old=None,
        new=20_000_000,
    )
    audit_record(action="reclaim.applied", organization=org_a, actor=alice, old=-750_000)

    html = alice_client.get(URL).content.decode()

    assert "no → yes" in html and "False → True" not in html
    assert "Max Inference Tokens:</span> — → 20,000,000" in html
    assert "-750,000 → —" in html
