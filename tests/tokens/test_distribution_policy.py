"""Auto-increase, alerts, the management commands and purchase requests in the sales admin."""

import datetime as dt

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from asksage_admin.lib.months import current_month
from audit.models import AuditLog
from tests.factories import MembershipFactory, MonthlyUsageFactory, PurchaseFactory, max_of, set_max
from tokens.models import AlertSent, AllocationBatch, AllocationPolicy, MemberOverride
from tokens.services import auto_increase as auto_increase_services
from tokens.services import policy as policy_services
from tokens.services import purchases as purchase_services
from tokens.services import requests as request_services

# Pinned mid-month: an alert recorded "this month" and the policy reading this month (and
# hours-old increases) must not straddle a month's end.
pytestmark = pytest.mark.usefixtures("mid_month")


def use(user, org, used, kind="inference"):
    MonthlyUsageFactory(user=user, organization=org, kind=kind, used=used)


@pytest.fixture
def preset(alice, org_a):
    def choose(name, org_floor=None, **extra):
        """Apply a preset (it raises members to its floors); with `org_floor`, the inference
        floor becomes that and members get back their inference max from before, as an
        organization whose floor changed outside a preset (staff) can have them."""
        members = Membership.objects.filter(organization=org_a)
        before = dict(members.values_list("pk", "max_inference_tokens"))
        policy_services.policy_apply(admin=alice, org=org_a, preset=name)
        if extra:
            AllocationPolicy.objects.filter(organization=org_a).update(**extra)
        if org_floor is not None:
            type(org_a).objects.filter(pk=org_a.pk).update(min_inference_tokens=org_floor)
            for pk, value in before.items():
                members.filter(pk=pk).update(max_inference_tokens=value)

    return choose


# --- Auto-increase ------------------------------------------------------------------------


def test_crossing_the_trigger_raises_the_max_by_the_step_audited_as_policy(org_a, bob, preset):
    preset("conservative")  # 90 %, +25 %
    use(bob, org_a, 180_000)  # 90 % of 200K
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") == 250_000
    assert max_of(bob) == 250_000
    row = AuditLog.objects.get(
        action="allocation.changed", target_user=bob, column="max_inference_tokens"
    )
    assert (row.actor, row.actor_label, row.old_value, row.new_value) == (
        None,
        "policy",
        "200000",
        "250000",
    )
    assert AllocationBatch.objects.get(column="max_inference_tokens").source == "policy"


def test_below_the_trigger_nothing_changes(org_a, bob, preset):
    preset("conservative")
    use(bob, org_a, 170_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") is None
    assert max_of(bob) == 200_000


def test_the_manual_policy_never_auto_increases(org_a, bob):
    use(bob, org_a, 200_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") is None


def test_at_most_once_per_cooldown(org_a, bob, preset):
    preset("conservative")  # 4 h cooldown
    use(bob, org_a, 200_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") == 250_000
    set_max(bob, 200_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") is None
    MemberOverride.objects.filter(user=bob).update(
        last_increase_inference_at=timezone.now() - dt.timedelta(hours=4, minutes=1)
    )
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") == 250_000


def test_the_increase_is_capped_by_the_ceiling(org_a, bob, preset):
    preset("conservative")  # ceiling 1M
    set_max(bob, 900_000)
    use(bob, org_a, 850_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") == 1_000_000


def test_the_increase_is_capped_by_the_unallocated_pool(org_a, bob, alice, preset):
    preset("aggressive", org_floor=200_000)  # +500K, no ceiling
    set_max(alice, 3_500_000)
    set_max(bob, 400_000)  # 3.9M of 4M allocated → 100K unallocated
    use(bob, org_a, 350_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") == 500_000


def test_nothing_happens_when_the_pool_is_fully_allocated(org_a, bob, alice, preset):
    preset("aggressive")
    set_max(alice, 3_800_000)
    use(bob, org_a, 200_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") is None


def test_a_pinned_user_is_never_auto_increased(org_a, alice, bob, preset):
    preset("conservative")
    policy_services.member_override_set(
        admin=alice, org=org_a, membership=bob.membership, pinned=True, bounds={}
    )
    use(bob, org_a, 200_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") is None


def test_a_users_own_ceiling_caps_their_increase(org_a, alice, bob, preset):
    preset("aggressive", org_floor=200_000)
    policy_services.member_override_set(
        admin=alice,
        org=org_a,
        membership=bob.membership,
        pinned=False,
        bounds={"ceiling_inference": 300_000},
    )
    use(bob, org_a, 200_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") == 300_000


def test_standard_steps_50_percent_within_10_percent_of_the_ceiling(org_a, bob, preset):
    PurchaseFactory(organization=org_a, tokens_per_month=10_000_000)
    preset("standard")  # ceiling 5M
    set_max(bob, 4_000_000)
    use(bob, org_a, 3_300_000)  # 82 %: +25 % → 5M exactly
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") == 5_000_000
    policy = AllocationPolicy.objects.get(organization=org_a)
    assert (
        auto_increase_services.auto_increase_step(
            policy, current=4_600_000, used=4_000_000, ceiling=5_000_000, free=10**9
        )
        == 2_300_000
    )  # within 10 % of the ceiling: +50 %


def test_dynamic_steps_grow_with_each_tier_crossed(org_a, bob, preset):
    preset("dynamic")
    policy = AllocationPolicy.objects.get(organization=org_a)
    step = auto_increase_services.auto_increase_step
    assert step(policy, current=1_000_000, used=740_000, ceiling=None, free=4_000_000) == 0
    assert step(policy, current=1_000_000, used=750_000, ceiling=None, free=4_000_000) == (
        1_000_000
    )  # 1 tier: 25 % of the 4M that remains
    assert step(policy, current=1_000_000, used=950_000, ceiling=None, free=4_000_000) == (
        2_000_000
    )  # 2 tiers: 50 %
    assert step(policy, current=1_000_000, used=999_000, ceiling=2_000_000, free=10**9) == (
        750_000
    )  # 3 tiers of the 1M to the ceiling
    assert step(policy, current=1_000_000, used=760_000, ceiling=None, free=40_000) == 100_000


def test_an_inactive_org_or_a_stranger_gets_none(org_a, bob, preset, db):
    preset("conservative")
    use(bob, org_a, 200_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="gold") is None
    org_a.status = "suspended"
    org_a.save()
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") is None


@pytest.mark.django_db(transaction=True)
def test_two_usage_records_crossing_the_trigger_at_once_raise_the_max_once(org_a, alice, bob):
    import threading

    from django.db import connections

    policy_services.policy_apply(admin=alice, org=org_a, preset="conservative")
    use(bob, org_a, 190_000)
    results, errors = [], []
    barrier = threading.Barrier(4)

    def work():
        try:
            barrier.wait(timeout=30)
            results.append(auto_increase_services.auto_increase_apply(user=bob, kind="inference"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert sorted(results, key=str) == [250_000, None, None, None]
    assert max_of(bob) == 250_000
    assert AllocationBatch.objects.filter(source="policy").count() == 1


# --- Alerts -------------------------------------------------------------------------------


def test_usage_alerts_email_the_user_and_admins_once_per_threshold(
    org_a, alice, bob, django_capture_on_commit_callbacks
):
    usage = MonthlyUsageFactory(user=bob, organization=org_a, used=165_000)  # 82 %
    with django_capture_on_commit_callbacks(execute=True):
        auto_increase_services.auto_increase_apply(user=bob, kind="inference")
        auto_increase_services.auto_increase_apply(user=bob, kind="inference")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["bob@example.com", "alice@example.com"]
    assert "80 %" in mail.outbox[0].subject and "165,000" in mail.outbox[0].body
    usage.used = 192_000  # 96 %
    usage.save()
    with django_capture_on_commit_callbacks(execute=True):
        auto_increase_services.auto_increase_apply(user=bob, kind="inference")
    assert len(mail.outbox) == 2 and "95 %" in mail.outbox[1].subject
    assert AlertSent.objects.count() == 2


def test_usage_crossing_two_thresholds_at_once_sends_one_email_and_records_both(
    org_a, alice, bob, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    MonthlyUsageFactory(user=bob, organization=org_a, used=192_000)  # 96 %: past 80 and 95
    with django_capture_on_commit_callbacks(execute=True):
        # Read, check, then under the lock: re-read, one INSERT for both alerts, the audit,
        # the email's outbox row (tokens.mail: it commits with the alert, or not at all), and
        # the notifications: the admins read, then one INSERT for the user and them.
        with django_assert_max_num_queries(16):
            auto_increase_services.auto_increase_apply(user=bob, kind="inference")
        auto_increase_services.auto_increase_apply(user=bob, kind="inference")
    assert len(mail.outbox) == 1 and "95 %" in mail.outbox[0].subject
    assert sorted(AlertSent.objects.values_list("key", flat=True)) == [
        f"user:{bob.pk}:inference:80",
        f"user:{bob.pk}:inference:95",
    ]
    assert AuditLog.objects.filter(action="alert.usage", target_user=bob).count() == 1


def test_an_alert_already_recorded_this_month_is_not_sent_again(
    org_a, alice, bob, django_capture_on_commit_callbacks
):
    AlertSent.objects.create(
        organization=org_a, month=current_month(), key=f"user:{bob.pk}:inference:80"
    )
    MonthlyUsageFactory(user=bob, organization=org_a, used=165_000)  # 82 %
    with django_capture_on_commit_callbacks(execute=True):
        auto_increase_services.auto_increase_apply(user=bob, kind="inference")
    assert mail.outbox == []
    assert AlertSent.objects.count() == 1
    assert not AuditLog.objects.filter(action="alert.usage").exists()


def test_a_low_unallocated_alert_emails_the_admins_once(
    org_a, alice, bob, preset, django_capture_on_commit_callbacks
):
    use(bob, org_a, 200_000)
    with django_capture_on_commit_callbacks(execute=True):
        # Inside: the test is one transaction, and its pool check is queued once per pool.
        preset(
            "aggressive", org_floor=200_000, low_unallocated_alert=3_000_000, alert_thresholds=[]
        )
        auto_increase_services.auto_increase_apply(
            user=bob, kind="inference"
        )  # 3.6M → 3.1M: no alert
        MonthlyUsageFactory._meta.model.objects.filter(user=bob).update(used=700_000)
        MemberOverride.objects.filter(user=bob).update(last_increase_inference_at=None)
        auto_increase_services.auto_increase_apply(user=bob, kind="inference")  # → 2.6M: alert
        MemberOverride.objects.filter(user=bob).update(last_increase_inference_at=None)
        MonthlyUsageFactory._meta.model.objects.filter(user=bob).update(used=1_200_000)
        auto_increase_services.auto_increase_apply(
            user=bob, kind="inference"
        )  # → 2.1M: already sent
    pool_mails = [m for m in mail.outbox if "inference tokens are unallocated" in m.subject]
    assert len(pool_mails) == 1 and pool_mails[0].to == ["alice@example.com"]


# --- Commands -----------------------------------------------------------------------------


def test_the_auto_increase_command_catches_up(org_a, bob, preset, capsys):
    preset("conservative")
    use(bob, org_a, 200_000)
    call_command("auto_increase")
    assert "bob@example.com: inference max raised to 250,000" in capsys.readouterr().out
    assert max_of(bob) == 250_000


def test_the_reclaim_command_previews_unless_told_to_apply(org_a, bob, capsys):
    Membership.objects.filter(user=bob).update(
        max_inference_tokens=800_000, joined_at=timezone.now() - dt.timedelta(days=90)
    )
    call_command("reclaim_idle", "--days", "30")
    out = capsys.readouterr().out
    assert "bob@example.com: 800,000 → 200,000" in out and "would reclaim 600,000" in out
    assert max_of(bob) == 800_000
    call_command("reclaim_idle", "--days", "30", "--apply")
    assert max_of(bob) == 200_000
    row = AuditLog.objects.get(action="reclaim.applied")
    assert row.actor_label == "policy"


# --- Sales admin --------------------------------------------------------------------------


def test_sales_see_purchase_requests_and_mark_them_fulfilled(client, sam, alice, org_a):
    request = purchase_services.purchase_request_create(
        admin=alice, org=org_a, kind="embedding", blocks=1, note="More docs"
    )
    client.force_login(sam)
    url = reverse("admin:tokens_purchaserequest_changelist")
    page = client.get(url)
    assert page.status_code == 200 and "More docs" in page.content.decode()
    response = client.post(
        url, {"action": "mark_fulfilled", "_selected_action": [request.pk]}, follow=True
    )
    assert "1 purchase request fulfilled" in response.content.decode()
    request.refresh_from_db()
    assert request.status == "fulfilled"
    assert request.purchase.tokens_per_month == 2_000_000


def test_members_are_not_auto_increased_in_another_org(org_a, org_b, carol, preset):
    preset("conservative")
    dan = MembershipFactory(organization=org_b).user
    use(dan, org_b, 200_000)
    assert auto_increase_services.auto_increase_apply(user=dan, kind="inference") is None


def test_a_member_below_a_new_floor_is_lifted_to_it(org_a, bob, preset):
    preset("aggressive", org_floor=1_000_000)  # bob still at 200K, as before presets raised
    use(bob, org_a, 200_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") == 1_000_000


def test_usage_past_every_sent_alert_does_not_lock_the_organization(
    org_a, bob, django_assert_max_num_queries
):
    use(bob, org_a, 190_000)  # 95 % under the Manual policy
    auto_increase_services.auto_increase_apply(
        user=bob, kind="inference"
    )  # sends the 80 % and 95 % alerts
    assert AlertSent.objects.count() == 2
    with django_assert_max_num_queries(2):  # the member row, the sent alerts: no lock
        assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") is None


def test_a_user_in_cooldown_is_answered_without_the_lock(
    org_a, bob, preset, django_assert_max_num_queries
):
    preset("conservative", alert_thresholds=[])
    use(bob, org_a, 200_000)
    assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") == 250_000
    set_max(bob, 200_000)
    with django_assert_max_num_queries(2):
        assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") is None


def test_the_common_case_costs_one_query(org_a, bob, preset, django_assert_num_queries):
    preset("conservative")
    use(bob, org_a, 10_000)
    with django_assert_num_queries(1):
        assert auto_increase_services.auto_increase_apply(user=bob, kind="inference") is None


def test_sales_can_read_token_requests_and_policies(client, sam, alice, bob, org_a):
    request_services.token_request_create(user=bob, kind="inference", amount=1_000, reason="Hi")
    policy_services.policy_apply(admin=alice, org=org_a, preset="standard")
    client.force_login(sam)
    assert (
        "bob@example.com"
        in client.get(reverse("admin:tokens_tokenrequest_changelist")).content.decode()
    )
    assert (
        "Standard"
        in client.get(reverse("admin:tokens_allocationpolicy_changelist")).content.decode()
    )


def test_the_auto_increase_command_refuses_an_unknown_org(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No organization"):
        call_command("auto_increase", "--org", "nope")


# --- Removing an override -----------------------------------------------------------------


@pytest.fixture
def pinned_bob(org_a, alice, bob):
    policy_services.member_override_set(
        admin=alice,
        org=org_a,
        membership=bob.membership,
        pinned=True,
        bounds={"ceiling_inference": 300_000},
    )
    return bob


def test_an_admin_removes_an_override_from_the_page_and_it_is_audited(
    alice_client, alice, pinned_bob, org_a
):
    url = reverse("tokens:distribution_override_remove", args=[pinned_bob.pk])
    assert url in alice_client.get(reverse("tokens:distribution")).content.decode()

    response = alice_client.post(url, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "Removed the override for bob@example.com" in response.content.decode()
    assert not MemberOverride.objects.filter(user=pinned_bob).exists()
    row = AuditLog.objects.get(action="policy.override_removed")
    assert (row.actor, row.target_user) == (alice, pinned_bob)
    assert row.details["changes"]["pinned"] == ["True", "None"]
    assert row.details["changes"]["ceiling_inference"] == ["300000", "None"]


def test_removing_an_override_that_is_gone_says_so_and_changes_nothing(alice_client, bob):
    url = reverse("tokens:distribution_override_remove", args=[bob.pk])

    response = alice_client.post(url)

    assert response.status_code == 422
    assert "no override" in response.content.decode()
    assert not AuditLog.objects.filter(action="policy.override_removed").exists()


def test_another_organizations_admin_cannot_remove_an_override(client, carol, pinned_bob):
    client.force_login(carol)
    url = reverse("tokens:distribution_override_remove", args=[pinned_bob.pk])

    response = client.post(url)

    assert response.status_code == 404
    assert MemberOverride.objects.filter(user=pinned_bob).exists()
