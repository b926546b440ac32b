"""Token Distribution: status, presets, distribution actions, overrides, reclamation."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from asksage_admin.lib.errors import DomainError
from audit.models import AuditLog
from tests.factories import MembershipFactory, MonthlyUsageFactory, max_of, set_max
from tokens.forms import PresetForm
from tokens.models import AllocationBatch, AllocationPolicy, MemberOverride, PurchaseRequest
from tokens.services import distribution as distribution_services
from tokens.services import policy as policy_services
from tokens.services import purchases as purchase_services

URL = reverse("tokens:distribution")


# --- Status and page ----------------------------------------------------------------------


def test_the_page_shows_status_per_kind_and_the_active_preset(alice_client, bob, org_a):
    MonthlyUsageFactory(user=bob, organization=org_a, used=50_000)
    html = alice_client.get(URL).content.decode()
    for text in ("Purchased", "Allocated", "Used", "Unallocated", "4,000,000", "3,600,000"):
        assert text in html
    assert "50,000" in html
    assert "Manual (no auto-increase)" in html
    for preset in ("Conservative", "Standard", "Aggressive", "Dynamic", "Custom"):
        assert preset in html


def test_the_page_query_count_does_not_grow_with_members(
    alice_client, many_members, django_assert_max_num_queries
):
    many_members(40)
    with django_assert_max_num_queries(16):
        assert alice_client.get(URL).status_code == 200


def test_bob_the_member_gets_403_on_every_distribution_page(client, bob):
    client.force_login(bob)
    assert client.get(URL).status_code == 403
    for name in (
        "distribution_preset",
        "distribution_action",
        "distribution_reclaim",
        "distribution_override",
        "distribution_options",
        "distribution_purchase_request",
    ):
        assert client.post(reverse(f"tokens:{name}"), {"op": "apply"}).status_code == 403


def test_carol_cannot_touch_org_a_users(client, carol, bob, alice):
    client.force_login(carol)
    response = client.post(
        reverse("tokens:distribution_action"),
        {"op": "apply", "kind": "inference", "action": "set", "amount": "1M", "users": bob.email},
    )
    assert response.status_code == 422
    assert "Not in Bureau of Birds" in response.content.decode()
    response = client.post(
        reverse("tokens:distribution_override"), {"email": bob.email, "pinned": "1"}
    )
    assert "No member of Bureau of Birds" in response.content.decode()
    assert max_of(bob) == 200_000 and not MemberOverride.objects.exists()


# --- Presets ------------------------------------------------------------------------------


def test_previewing_a_preset_shows_what_changes_without_applying(alice_client, org_a, bob):
    response = alice_client.post(
        reverse("tokens:distribution_preset"), {"op": "preview", "preset": "standard"}
    )
    html = response.content.decode()
    assert "Preview: what changes with Standard" in html
    assert "500,000" in html and "5,000,000" in html
    assert "2 users below the new inference floor" in html  # alice and bob at 200K
    assert not AllocationPolicy.objects.exists()


def test_applying_a_preset_sets_the_policy_and_the_org_floors(alice_client, org_a, alice):
    response = alice_client.post(
        reverse("tokens:distribution_preset"), {"op": "apply", "preset": "standard"}
    )
    assert response.status_code == 302
    policy = AllocationPolicy.objects.get(organization=org_a)
    assert (policy.preset, policy.ceiling, policy.trigger_percent) == ("standard", 5_000_000, 80)
    org_a.refresh_from_db()
    assert (org_a.min_inference_tokens, org_a.min_embedding_tokens) == (500_000, 500_000)
    row = AuditLog.objects.get(action="policy.changed")
    assert (row.actor, row.old_value, row.new_value) == (alice, "manual", "standard")


def test_a_custom_preset_is_validated(alice, org_a):
    given = {
        "floor_inference": 100_000,  # below the platform's 200K
        "floor_embedding": 0,
        "ceiling": 50_000,
        "trigger_percent": 101,
        "cooldown_minutes": 0,
        "step_mode": "percent",
        "step_value": 0,
    }
    with pytest.raises(DomainError) as caught:
        policy_services.policy_apply(admin=alice, org=org_a, preset="custom", given=given)
    errors = caught.value.errors
    assert "platform's minimum" in errors["floor_inference"][0]
    assert "from 1 to 100" in errors["trigger_percent"][0]
    assert "cooldown_minutes" in errors and "step_value" in errors
    assert not AllocationPolicy.objects.exists()


def test_a_custom_preset_with_ceiling_below_floor_is_refused(alice, org_a):
    given = {
        "floor_inference": 1_000_000,
        "floor_embedding": 0,
        "ceiling": 500_000,
        "trigger_percent": 80,
        "cooldown_minutes": 60,
        "step_mode": "fixed",
        "step_value": 100_000,
    }
    with pytest.raises(DomainError, match="must be at least the floor"):
        policy_services.policy_apply(admin=alice, org=org_a, preset="custom", given=given)
    org_a.refresh_from_db()
    assert org_a.min_inference_tokens == 200_000


def test_a_valid_custom_preset_is_applied(alice, org_a):
    typed = {
        "preset": "custom",
        "floor_inference": "300k",
        "floor_embedding": "0",
        "ceiling": "",
        "trigger_percent": "70",
        "cooldown_minutes": "15",
        "step_mode": "fixed",
        "step_value": "1.5M",
    }
    form = PresetForm(typed)
    assert form.is_valid(), form.errors
    policy = policy_services.policy_apply(
        admin=alice, org=org_a, preset="custom", given=form.settings()
    )
    assert (policy.ceiling, policy.step_value, policy.cooldown_minutes) == (None, 1_500_000, 15)


def test_the_preset_form_errors_show_in_its_own_section_under_htmx(alice_client):
    response = alice_client.post(
        reverse("tokens:distribution_preset"),
        {"op": "preview", "preset": "custom", "trigger_percent": "0", "step_mode": "percent"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="dist-presets"') and "<html" not in html
    assert 'id="distribution-body"' not in html and 'id="dist-actions"' not in html
    assert "from 1 to 100" in html


def test_an_unknown_preset_is_refused(alice, org_a):
    with pytest.raises(DomainError, match="is not a preset"):
        policy_services.policy_apply(admin=alice, org=org_a, preset="yolo")


# --- Distribution actions -----------------------------------------------------------------


@pytest.fixture
def trio(org_a, alice, bob):
    carl = MembershipFactory(organization=org_a, user__email="carl@example.com").user
    return [alice, bob, carl]  # 3 × 200K of 4M → 3.4M unallocated


def test_an_equal_split_preview_gives_deterministic_remainders(org_a, trio):
    plan = distribution_services.distribution_plan(org=org_a, kind="inference", action="split")
    extras = [new - old for _u, _m, old, new in plan.rows]
    assert extras == [1_133_334, 1_133_333, 1_133_333]  # 3.4M / 3, first by id gets the 1
    assert plan.unallocated_after == 0
    assert not AllocationBatch.objects.exists()


def test_an_equal_split_among_selected_users(org_a, trio):
    alice, bob, _carl = trio
    plan = distribution_services.distribution_plan(
        org=org_a, kind="inference", action="split", user_ids=[bob.pk]
    )
    assert [(u, new) for u, _m, _o, new in plan.rows] == [(bob, 3_600_000)]


def test_applying_a_split_is_one_audited_batch(alice_client, org_a, trio):
    alice, bob, carl = trio
    preview = alice_client.post(
        reverse("tokens:distribution_action"),
        {"op": "preview", "kind": "inference", "action": "split"},
    )
    plan = preview.context["plan"]
    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {"op": "apply", "kind": "inference", "action": "split", "signature": plan.signature},
    )
    assert response.status_code == 302
    assert [max_of(u) for u in trio] == [1_333_334, 1_333_333, 1_333_333]
    batch = AllocationBatch.objects.get(source="distribution")
    assert len(batch.changes) == 3
    assert AuditLog.objects.filter(action="allocation.changed", batch_id=batch.id).count() == 3
    assert AuditLog.objects.filter(action="distribution.applied").count() == 1


def test_applying_after_the_allocation_changed_is_refused(alice, org_a, trio):
    plan = distribution_services.distribution_plan(org=org_a, kind="inference", action="split")
    Membership.objects.filter(user=trio[1]).update(max_inference_tokens=300_000)
    with pytest.raises(DomainError, match="Preview again"):
        distribution_services.distribution_apply(
            admin=alice, org=org_a, kind="inference", action="split", signature=plan.signature
        )
    assert max_of(trio[0]) == 200_000


def test_set_everyone_to_n_that_would_exceed_the_pool_is_refused(alice, org_a, trio):
    with pytest.raises(DomainError, match="exceed the inference pool by 2,000,000"):
        distribution_services.distribution_apply(
            admin=alice, org=org_a, kind="inference", action="set", amount=2_000_000
        )
    assert [max_of(u) for u in trio] == [200_000] * 3
    assert not AllocationBatch.objects.exists()


def test_the_over_pool_preview_says_it_cannot_be_applied(alice_client, trio):
    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {"op": "preview", "kind": "inference", "action": "set", "amount": "2M"},
    )
    html = response.content.decode()
    assert "over the pool" in html and "Apply to" not in html


def test_top_up_raises_only_those_below_n(alice, org_a, trio):
    Membership.objects.filter(user=trio[2]).update(max_inference_tokens=900_000)
    distribution_services.distribution_apply(
        admin=alice, org=org_a, kind="inference", action="topup", amount=500_000
    )
    assert [max_of(u) for u in trio] == [500_000, 500_000, 900_000]


@pytest.mark.parametrize("amount", ["-1", "0", "abc", str(2**53)])
def test_bad_amounts_for_set_are_refused(alice_client, trio, amount):
    # Parsed by the action's form, zero refused by the service: a 422 with words either way.
    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {"kind": "inference", "action": "set", "amount": amount},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    assert 'class="message message-error"' in response.content.decode()


@pytest.mark.parametrize("amount", [-1, 0, 2**53, None])
def test_the_plan_refuses_a_missing_or_out_of_range_amount_for_set(alice, org_a, trio, amount):
    with pytest.raises(DomainError):
        distribution_services.distribution_plan(
            org=org_a, kind="inference", action="set", amount=amount
        )


def test_set_below_the_floor_is_refused(alice, org_a, trio):
    with pytest.raises(DomainError, match="the organization's floor"):
        distribution_services.distribution_plan(
            org=org_a, kind="inference", action="set", amount=100_000
        )


def test_applying_a_preset_raises_everyone_below_its_floor(alice, org_a, trio):
    policy_services.policy_apply(admin=alice, org=org_a, preset="standard")
    assert [max_of(u) for u in trio] == [500_000] * 3
    with pytest.raises(DomainError, match="Nothing would change"):
        distribution_services.distribution_apply(
            admin=alice, org=org_a, kind="inference", action="floor"
        )


def test_an_unknown_action_or_kind_is_refused(org_a, trio):
    with pytest.raises(DomainError):
        distribution_services.distribution_plan(org=org_a, kind="inference", action="steal")
    with pytest.raises(DomainError):
        distribution_services.distribution_plan(org=org_a, kind="gold", action="split")


# --- Overrides ----------------------------------------------------------------------------


def test_an_override_pins_a_user_and_is_audited(alice_client, bob):
    alice_client.post(
        reverse("tokens:distribution_override"),
        {"email": bob.email, "pinned": "1", "ceiling_inference": "1M"},
    )
    override = MemberOverride.objects.get(user=bob)
    assert override.pinned and override.ceiling_inference == 1_000_000
    assert AuditLog.objects.filter(action="policy.override", target_user=bob).exists()


def test_an_override_ceiling_below_its_floor_is_refused(alice, org_a, bob):
    with pytest.raises(DomainError, match="below the floor"):
        policy_services.member_override_set(
            admin=alice,
            org=org_a,
            membership=bob.membership,
            pinned=False,
            bounds={"floor_inference": 500_000, "ceiling_inference": 300_000},
        )


# --- Reclamation --------------------------------------------------------------------------


def test_reclamation_previews_then_returns_unused_tokens_of_idle_users(alice, org_a, bob):
    Membership.objects.filter(user=bob).update(
        max_inference_tokens=1_000_000, joined_at=timezone.now() - dt.timedelta(days=60)
    )
    MonthlyUsageFactory(user=bob, organization=org_a, used=300_000)
    plan = distribution_services.reclaim_plan(org=org_a, kind="inference", idle_days=30)
    assert [(u, old, new) for u, _m, old, new in plan.rows] == [(bob, 1_000_000, 300_000)]
    assert max_of(bob) == 1_000_000  # a preview writes nothing
    distribution_services.reclaim_apply(admin=alice, org=org_a, kind="inference", idle_days=30)
    assert max_of(bob) == 300_000
    assert AllocationBatch.objects.get().source == "reclaim"


def test_reclamation_skips_recent_members(org_a, bob):
    set_max(bob, 1_000_000)
    assert distribution_services.reclaim_plan(org=org_a, kind="inference", idle_days=30).rows == []


# --- Options and purchase requests ---------------------------------------------------------


def test_alert_and_auto_approval_options_are_validated(alice, org_a):
    with pytest.raises(DomainError) as caught:
        policy_services.policy_options_update(
            admin=alice,
            org=org_a,
            thresholds=[80, 150],
            low_unallocated=-3,
            auto_approve_enabled=True,
            auto_approve_max=None,
            auto_approve_below_percent=50,
            reclaim_idle_days=30,
        )
    assert {"thresholds", "low_unallocated", "auto_approve_max"} <= set(caught.value.errors)


def test_options_are_saved(alice_client, org_a):
    alice_client.post(
        reverse("tokens:distribution_options"),
        {
            "thresholds": "75, 90",
            "low_unallocated": "500k",
            "auto_approve_enabled": "1",
            "auto_approve_max": "100k",
            "auto_approve_below_percent": "40",
            "reclaim_idle_days": "14",
        },
    )
    policy = AllocationPolicy.objects.get(organization=org_a)
    assert policy.alert_thresholds == [75, 90]
    assert (policy.low_unallocated_alert, policy.auto_approve_max) == (500_000, 100_000)
    assert policy.auto_approve_enabled and policy.reclaim_idle_days == 14


def test_a_purchase_request_goes_to_sales_in_2m_blocks(alice_client, org_a):
    alice_client.post(
        reverse("tokens:distribution_purchase_request"),
        {"kind": "inference", "blocks": "3", "note": "Q3 growth"},
    )
    request = PurchaseRequest.objects.get(organization=org_a)
    assert (request.tokens, request.note, request.status) == (6_000_000, "Q3 growth", "open")


@pytest.mark.parametrize("blocks", ["0", "-1", "1.5", "abc", "100000"])
def test_bad_block_counts_are_refused(alice_client, org_a, blocks):
    response = alice_client.post(
        reverse("tokens:distribution_purchase_request"), {"kind": "inference", "blocks": blocks}
    )
    assert response.status_code == 422
    assert "blocks of 2,000,000" in response.content.decode()
    assert not PurchaseRequest.objects.exists()


@pytest.mark.parametrize("blocks", [0, -1, 1001, True])
def test_the_service_refuses_block_counts_out_of_range(alice, org_a, blocks):
    with pytest.raises(DomainError, match="blocks of 2,000,000"):
        purchase_services.purchase_request_create(
            admin=alice, org=org_a, kind="inference", blocks=blocks, note=""
        )


def test_fulfilling_a_purchase_request_records_the_purchase(alice, org_a, sam):
    request = purchase_services.purchase_request_create(
        admin=alice, org=org_a, kind="inference", blocks=2, note=""
    )
    purchase_services.purchase_request_fulfil(actor=sam, purchase_request=request)
    request.refresh_from_db()
    assert request.status == "fulfilled" and request.purchase.tokens_per_month == 4_000_000
    from tokens.selectors import pools

    assert pools(org_a)["inference"] == 8_000_000
    with pytest.raises(DomainError, match="already fulfilled"):
        purchase_services.purchase_request_fulfil(actor=sam, purchase_request=request)


def test_sales_staff_are_emailed_a_purchase_request(
    alice, org_a, sam, django_capture_on_commit_callbacks
):
    from django.core import mail

    with django_capture_on_commit_callbacks(execute=True):
        purchase_services.purchase_request_create(
            admin=alice, org=org_a, kind="inference", blocks=1, note="Soon please"
        )
    assert mail.outbox[-1].to == ["sam@example.com"]
    assert "2,000,000" in mail.outbox[-1].subject and "Soon please" in mail.outbox[-1].body


def test_an_auditor_sees_the_page_read_only_and_cannot_post(client, org_a, alice):
    auditor = MembershipFactory(organization=org_a, role="auditor").user
    client.force_login(auditor)
    html = client.get(URL).content.decode()
    assert "Read-only" in html and "disabled" in html
    response = client.post(
        reverse("tokens:distribution_action"),
        {"op": "apply", "kind": "inference", "action": "split"},
    )
    assert response.status_code == 403
    assert not AllocationBatch.objects.exists()


def test_the_action_preview_answers_htmx_with_its_own_section_only(alice_client, trio):
    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {"op": "preview", "kind": "inference", "action": "split"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="dist-actions"') and "<html" not in html
    assert 'id="distribution-body"' not in html and 'id="dist-presets"' not in html
    assert "3,400,000 → <strong>0</strong>" in html and "Apply to 3 users" in html
    assert not AllocationBatch.objects.exists()


def test_an_apply_without_a_preview_is_refused(alice_client, trio):
    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {"op": "apply", "kind": "inference", "action": "split", "signature": ""},
    )
    assert "Preview the action first" in response.content.decode()
    assert not AllocationBatch.objects.exists()


def test_a_refused_apply_under_htmx_shows_its_message_and_changes_nothing(
    alice_client, org_a, trio
):
    plan = distribution_services.distribution_plan(
        org=org_a, kind="inference", action="set", amount=2_000_000
    )
    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {
            "op": "apply",
            "kind": "inference",
            "action": "set",
            "amount": "2M",
            "signature": plan.signature,
        },
        headers={"HX-Request": "true"},
    )
    # A refusal answers 422 under htmx too; base.html's htmx-config swaps 422 (issue 14, item 5).
    assert response.status_code == 422
    assert "exceed the inference pool" in response.content.decode()
    assert [max_of(u) for u in trio] == [200_000] * 3


def test_a_plan_can_become_pending_edits_for_user_management(alice_client, alice, trio):
    from tokens.models import PendingEdit

    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {"op": "pending", "kind": "inference", "action": "topup", "amount": "300k"},
    )
    assert response.status_code == 302 and response.url == reverse("tokens:users")
    edits = PendingEdit.objects.filter(admin=alice).order_by("target_id")
    assert [(e.old_value, e.new_value) for e in edits] == [(200_000, 300_000)] * 3
    assert [max_of(u) for u in trio] == [200_000] * 3  # nothing saved yet
    page = alice_client.get(reverse("tokens:users")).content.decode()
    assert "Save Changes — Max Inference Tokens (3)" in page


def test_pending_under_htmx_redirects_the_client(alice_client, trio):
    response = alice_client.post(
        reverse("tokens:distribution_action"),
        {"op": "pending", "kind": "inference", "action": "split"},
        headers={"HX-Request": "true"},
    )
    assert response["HX-Redirect"] == reverse("tokens:users")
