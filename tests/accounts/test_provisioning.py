"""Provisioning an enterprise account, its status, purchases and memberships (services)."""

import datetime as dt

import pytest

from accounts import services
from accounts.models import Membership, Organization
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.months import current_month
from audit.models import AuditLog
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tokens import organizations
from tokens.models import PendingEdit, Purchase

# Pinned mid-month: a purchase provisioned "this month" and the test reading this month must
# not straddle a month's end.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_month")]


@pytest.fixture
def newcomers(db):
    """Three registered users who accepted the terms and belong to no organization."""
    return [
        UserFactory(email="nina@example.com"),
        UserFactory(email="omar@example.com"),
        UserFactory(email="pia@example.com"),
    ]


def provision(sam, **overrides):
    values = {
        "actor": sam,
        "name": "Newco",
        "billing_address": "2 Harbour Road",
        "user_emails": ["omar@example.com", "pia@example.com"],
        "admin_emails": ["nina@example.com"],
        "inference_tokens": 2_000_000,
        "embedding_tokens": 0,
        "payment_reference": "INV-1",
    }
    return organizations.organization_provision(**{**values, **overrides})


def refusal(sam, **overrides) -> dict[str, list[str]]:
    with pytest.raises(DomainError) as caught:
        provision(sam, **overrides)
    assert not Organization.objects.filter(name="Newco").exists()
    return caught.value.errors


def test_it_reads_emails_separated_by_lines_commas_or_spaces():
    text = "A@example.com, b@example.com\nc@example.com;  a@example.com"
    assert services.parse_email_list(text) == ["a@example.com", "b@example.com", "c@example.com"]


def test_it_provisions_members_at_the_floor_and_audits_each_write(sam, newcomers):
    org = provision(sam)

    assert org.status == Organization.Status.PENDING
    members = {m.user.email: m for m in org.memberships.select_related("user")}
    assert set(members) == {"nina@example.com", "omar@example.com", "pia@example.com"}
    assert members["nina@example.com"].role == Membership.Role.ADMIN
    assert members["omar@example.com"].role == Membership.Role.MEMBER
    assert {m.max_inference_tokens for m in members.values()} == {200_000}
    purchase = Purchase.objects.get(organization=org)
    assert (purchase.kind, purchase.tokens_per_month) == ("inference", 2_000_000)
    assert (purchase.start_month, purchase.payment_reference) == (current_month(), "INV-1")
    actions = list(AuditLog.objects.filter(organization=org).values_list("action", flat=True))
    assert sorted(actions) == ["membership.added"] * 3 + ["org.created", "purchase.recorded"]


def test_it_activates_at_once_when_the_payment_is_confirmed(sam, newcomers):
    org = provision(sam, activate=True, embedding_tokens=4_000_000)

    assert org.status == Organization.Status.ACTIVE
    assert org.activated_at is not None
    assert Purchase.objects.filter(organization=org).count() == 2
    assert AuditLog.objects.filter(organization=org, action="org.status", new_value="active")


def test_admins_count_as_users_and_have_no_maximum(sam, newcomers):
    org = provision(
        sam,
        user_emails=[],
        admin_emails=["nina@example.com", "omar@example.com", "PIA@example.com"],
    )

    assert org.memberships.filter(role="admin").count() == 3


def test_it_refuses_fewer_than_2_users(sam, newcomers):
    errors = refusal(sam, user_emails=["nina@example.com"], admin_emails=["nina@example.com"])

    assert errors["user_emails"] == [
        "An enterprise account needs at least 2 users; 1 given (nina@example.com)."
    ]


def test_it_refuses_an_account_without_an_admin(sam, newcomers):
    errors = refusal(sam, admin_emails=[])

    assert "at least 1 admin" in errors["admin_emails"][0]


def test_it_names_an_email_that_has_not_registered(sam, newcomers):
    errors = refusal(sam, user_emails=["omar@example.com", "ghost@example.com"])

    assert errors["user_emails"] == [
        "ghost@example.com has not registered yet: every user must register first."
    ]


def test_it_names_an_admin_email_that_is_not_an_email(sam, newcomers):
    errors = refusal(sam, admin_emails=["nina@example.com", "not-an-email"])

    assert errors["admin_emails"] == ["“not-an-email” is not a valid email address."]


def test_it_names_a_user_who_has_not_accepted_the_terms(sam, newcomers):
    UserFactory(email="quinn@example.com", terms_accepted_at=None)

    errors = refusal(sam, user_emails=["omar@example.com", "quinn@example.com"])

    assert errors["user_emails"] == ["quinn@example.com has not accepted the terms and conditions."]


def test_it_names_a_user_who_already_belongs_to_another_organization(sam, newcomers, bob):
    errors = refusal(sam, user_emails=["omar@example.com", "bob@example.com"])

    assert errors["user_emails"] == [
        "bob@example.com already belongs to the organization “Acme Agency”."
    ]


def test_it_refuses_a_purchase_that_is_not_a_multiple_of_2m(sam, newcomers):
    errors = refusal(sam, inference_tokens=3_000_000, embedding_tokens=500_000)

    assert errors["inference_tokens"] == [
        "3,000,000 is not a multiple of 2,000,000 tokens: tokens are sold in blocks of "
        "2,000,000 (for example 2,000,000 or 4,000,000)."
    ]
    assert errors["embedding_tokens"][0].startswith("500,000 is not a multiple of 2,000,000")


def test_it_refuses_an_inference_pool_below_the_floor_of_every_user(sam):
    emails = [UserFactory(email=f"u{n}@example.com").email for n in range(11)]

    errors = refusal(sam, user_emails=emails[1:], admin_emails=emails[:1])

    assert errors["inference_tokens"] == [
        "11 users need at least 2,200,000 inference tokens (200,000 each); 2,000,000 purchased."
    ]


def test_it_refuses_an_initial_purchase_without_inference_tokens(sam, newcomers):
    errors = refusal(sam, inference_tokens=0)

    assert errors["inference_tokens"] == ["The purchase needs at least 2,000,000 tokens per month."]


def test_it_refuses_a_name_already_taken_whatever_its_case(sam, newcomers, org_a):
    errors = refusal(sam, name="ACME agency")

    assert errors["name"] == ["An organization named “ACME agency” already exists."]


def test_a_refused_provisioning_writes_nothing(sam, newcomers):
    refusal(sam, billing_address="  ", admin_emails=[])

    assert not AuditLog.objects.exists()
    assert not Membership.objects.exists()


# --- Status -------------------------------------------------------------------------------


def test_activation_is_refused_before_a_purchase_is_recorded(sam):
    org = OrganizationFactory(name="Unpaid", status="pending", activated_at=None)

    with pytest.raises(DomainError, match="Unpaid cannot be activated before a payment"):
        organizations.organization_activate(actor=sam, org=org)

    org.refresh_from_db()
    assert org.status == "pending"
    assert not AuditLog.objects.exists()


def test_suspension_is_audited(sam, org_a):
    services.organization_suspend(actor=sam, org=org_a, reason="unpaid invoice")

    org_a.refresh_from_db()
    assert org_a.status == "suspended"
    entry = AuditLog.objects.get(action="org.status")
    assert (entry.actor, entry.old_value, entry.new_value) == (sam, "active", "suspended")
    assert entry.details == {"reason": "unpaid invoice"}


def test_updating_the_details_audits_each_changed_field(sam, org_a):
    services.organization_update(
        actor=sam, org=org_a, name="Acme Agency", billing_address="9 New St", admin_notes="VIP"
    )

    changed = AuditLog.objects.filter(action="org.updated").values_list("column", flat=True)
    assert sorted(changed) == ["admin_notes", "billing_address"]


# --- Purchases ----------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, 1_000_000, 3_000_000, -2_000_000])
def test_a_purchase_must_be_a_positive_multiple_of_2m(sam, org_a, amount):
    with pytest.raises(DomainError) as caught:
        organizations.purchase_record(
            actor=sam,
            org=org_a,
            kind="inference",
            tokens_per_month=amount,
            start_month=dt.date(2030, 1, 1),
        )

    assert "tokens_per_month" in caught.value.errors
    assert not Purchase.objects.filter(start_month=dt.date(2030, 1, 1)).exists()


def test_a_purchase_cannot_end_before_it_starts(sam, org_a):
    with pytest.raises(DomainError) as caught:
        organizations.purchase_record(
            actor=sam,
            org=org_a,
            kind="inference",
            tokens_per_month=2_000_000,
            start_month=dt.date(2030, 5, 1),
            end_month=dt.date(2030, 4, 1),
        )

    assert caught.value.errors["end_month"] == [
        "The end month 2030-04 is before the start month 2030-05."
    ]


# --- Memberships --------------------------------------------------------------------------


def test_adding_a_member_gives_them_the_floor_and_audits(sam, alice, bob):
    nina = UserFactory(email="nina@example.com")

    membership = organizations.membership_add(
        actor=sam, org=alice.membership.organization, user=nina
    )

    assert membership.max_inference_tokens == 200_000
    assert AuditLog.objects.get(action="membership.added").target_user == nina


def test_adding_a_member_is_refused_when_the_pool_cannot_cover_their_floor(sam, carol):
    org_b = carol.membership.organization
    MembershipFactory(organization=org_b, max_inference_tokens=1_800_000)
    nina = UserFactory(email="nina@example.com")

    with pytest.raises(DomainError) as caught:
        organizations.membership_add(actor=sam, org=org_b, user=nina)

    assert caught.value.errors["user"] == [
        "Adding nina@example.com needs 200,000 inference tokens (200,000 each) "
        "but only 0 are unallocated."
    ]


def test_adding_a_banned_user_is_refused_and_adds_nothing(sam, alice, bob):
    """A ban is lifted on purpose, not by being added somewhere (staff, provisioning, invites)."""
    nina = UserFactory(email="nina@example.com", is_banned=True)
    org = alice.membership.organization

    with pytest.raises(DomainError) as caught:
        organizations.membership_add(actor=sam, org=org, user=nina)

    assert caught.value.errors["user"] == [
        "nina@example.com is banned: lift the ban before adding them to an organization."
    ]
    assert not Membership.objects.filter(user=nina).exists()
    assert not AuditLog.objects.filter(action="membership.added").exists()


def test_provisioning_names_a_banned_user(sam, newcomers):
    UserFactory(email="quinn@example.com", is_banned=True)

    errors = refusal(sam, user_emails=["omar@example.com", "quinn@example.com"])

    assert errors["user_emails"] == [
        "quinn@example.com is banned: lift the ban before adding them to an organization."
    ]


def test_the_last_admin_cannot_become_a_member(sam, alice, bob):
    with pytest.raises(DomainError, match="alice@example.com cannot stop being an admin"):
        organizations.membership_set_role(actor=sam, membership=alice.membership, role="member")


def test_a_role_change_is_audited(sam, alice, bob):
    organizations.membership_set_role(actor=sam, membership=bob.membership, role="admin")

    entry = AuditLog.objects.get(action="membership.role")
    assert (entry.target_user, entry.old_value, entry.new_value) == (bob, "member", "admin")


def test_removing_a_member_is_refused_below_2_users(sam, alice, bob):
    with pytest.raises(DomainError, match="Removing bob@example.com would leave 1 user"):
        organizations.membership_remove(actor=sam, membership=bob.membership)

    assert Membership.objects.filter(user=bob).exists()


def test_removing_the_last_admin_is_refused(sam, alice, bob):
    MembershipFactory(organization=alice.membership.organization)

    with pytest.raises(DomainError, match="alice@example.com cannot stop being an admin"):
        organizations.membership_remove(actor=sam, membership=alice.membership)


def test_removing_a_member_keeps_the_user_and_drops_their_pending_edits(sam, alice, bob):
    org = alice.membership.organization
    MembershipFactory(organization=org)
    PendingEdit.objects.create(
        organization=org,
        admin=alice,
        target=bob,
        column="max_inference_tokens",
        old_value=200_000,
        new_value=300_000,
    )

    organizations.membership_remove(actor=sam, membership=bob.membership)

    bob.refresh_from_db()
    assert not Membership.objects.filter(user=bob).exists()
    assert not PendingEdit.objects.exists()
    assert AuditLog.objects.get(action="membership.removed").target_user == bob


def test_a_batch_may_swap_members_as_long_as_the_result_is_valid(sam, alice, bob):
    org = alice.membership.organization
    nina = UserFactory(email="nina@example.com")

    organizations.membership_batch_save(
        actor=sam,
        org=org,
        add=[(nina, "admin")],
        set_roles=[(alice.membership, "member")],
        remove=[bob.membership],
    )

    roles = dict(org.memberships.values_list("user__email", "role"))
    assert roles == {"alice@example.com": "member", "nina@example.com": "admin"}


# --- Users --------------------------------------------------------------------------------


def test_a_paid_change_is_audited(sam, bob):
    services.user_set_flag(actor=sam, org=None, user=bob, flag="is_paid", value=False)

    bob.refresh_from_db()
    assert bob.is_paid is False
    entry = AuditLog.objects.get(action="user.paid")
    assert (entry.old_value, entry.new_value) == ("True", "False")


def test_only_a_superuser_grants_staff_access(bob):
    staff = UserFactory(email="stan@example.com", is_staff=True)

    with pytest.raises(DomainError, match="Only a superuser"):
        services.user_update(actor=staff, user=bob, changes={"is_staff": True})
