"""The sales admin at /staff/: provisioning form, organizations, inlines, users, read-only logs."""

import pytest
from django.urls import reverse

from accounts.models import Membership, Organization, User
from audit.models import AuditLog
from tests.accounts.staff_forms import (
    NEW_PASSWORD,
    ORG_LIST_URL,
    PROVISION_URL,
    add_inline_row,
    add_purchase_row,
    change_url,
    form_data,
    org_url,
    password_url,
    post_password,
    provision_data,
)
from tests.factories import MembershipFactory, OrganizationFactory, PurchaseFactory, UserFactory
from tokens.models import Purchase

pytestmark = pytest.mark.django_db


@pytest.fixture
def newcomers(db):
    return [UserFactory(email=f"{name}@example.com") for name in ("nina", "omar", "pia")]


def row_index(data: dict, prefix: str, user: User) -> int:
    return next(
        int(key.split("-")[1])
        for key, value in data.items()
        if key.startswith(f"{prefix}-") and key.endswith("-email") and value == user.email
    )


def error_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- Access -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:index",
        "admin:accounts_organization_changelist",
        "admin:accounts_organization_add",
        "admin:accounts_user_changelist",
        "admin:accounts_user_add",
        "admin:audit_auditlog_changelist",
        "admin:tokens_purchase_changelist",
        "admin:tokens_monthlyusage_changelist",
        "admin:tokens_usageevent_changelist",
    ],
)
def test_the_admin_pages_load_for_sales_staff_and_redirect_others(client, sam, bob, url_name):
    url = reverse(url_name)
    client.force_login(bob)
    assert client.get(url).status_code == 302

    client.force_login(sam)
    assert client.get(url).status_code == 200


def test_the_change_pages_load(staff_client, sam, alice, bob):
    org = alice.membership.organization
    AuditLog.objects.create(action="test.entry", organization=org, actor=sam)

    for url in [
        org_url(org),
        change_url(bob),
        password_url(bob),
        reverse("admin:audit_auditlog_change", args=[AuditLog.objects.get().pk]),
        reverse("admin:tokens_purchase_change", args=[Purchase.objects.first().pk]),
    ]:
        assert staff_client.get(url).status_code == 200, url


def test_sales_staff_without_superuser_rights_can_run_the_admin(client, sales, alice):
    client.force_login(sales)

    assert client.get(ORG_LIST_URL).status_code == 200
    assert client.get(org_url(alice.membership.organization)).status_code == 200
    assert client.get(PROVISION_URL).status_code == 200


# --- Provisioning -------------------------------------------------------------------------


def test_provisioning_creates_the_account_and_opens_its_page(staff_client, newcomers):
    response = staff_client.post(
        PROVISION_URL, provision_data(inference_tokens="4,000,000", activate="on"), follow=True
    )

    org = Organization.objects.get(name="Newco")
    assert response.redirect_chain[-1][0] == org_url(org)
    assert "Newco was provisioned with 3 users. It is active." in error_messages(response)
    assert org.status == Organization.Status.ACTIVE
    assert Purchase.objects.get(organization=org).tokens_per_month == 4_000_000
    assert set(org.memberships.values_list("max_inference_tokens", flat=True)) == {200_000}


def test_provisioning_leaves_the_account_pending_until_payment_is_confirmed(
    staff_client, newcomers
):
    staff_client.post(PROVISION_URL, provision_data())

    assert Organization.objects.get(name="Newco").status == Organization.Status.PENDING


def test_provisioning_shows_each_refusal_on_its_field(staff_client, newcomers, bob):
    response = staff_client.post(
        PROVISION_URL,
        provision_data(
            user_emails="omar@example.com, ghost@example.com, bob@example.com",
            admin_emails="",
        ),
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["user_emails"] == [
        "ghost@example.com has not registered yet: every user must register first.",
        "bob@example.com already belongs to the organization “Acme Agency”.",
    ]
    assert "at least 1 admin" in errors["admin_emails"][0]
    assert not Organization.objects.filter(name="Newco").exists()
    assert b"ghost@example.com has not registered yet" in response.content


def test_provisioning_says_which_amount_formats_are_accepted(staff_client, newcomers):
    response = staff_client.post(PROVISION_URL, provision_data(embedding_tokens="lots"))

    assert response.context["form"].errors["embedding_tokens"] == [
        "“lots” is not an amount. Enter a whole number such as 250000, 250,000, 250 000, "
        "250k or 1.5M."
    ]


def test_provisioning_reports_the_purchase_rules_once_the_amounts_parse(staff_client, newcomers):
    response = staff_client.post(PROVISION_URL, provision_data(inference_tokens="3M"))

    assert (
        response.context["form"]
        .errors["inference_tokens"][0]
        .startswith("3,000,000 is not a multiple of 2,000,000 tokens")
    )


def test_provisioning_refuses_a_duplicate_name(staff_client, newcomers, org_a):
    response = staff_client.post(PROVISION_URL, provision_data(name="acme agency"))

    assert response.context["form"].errors["name"] == [
        "An organization named “acme agency” already exists."
    ]


# --- Organization list --------------------------------------------------------------------


def test_the_list_shows_members_and_this_months_inference_pool(staff_client, alice, bob):
    response = staff_client.get(ORG_LIST_URL)

    org = response.context["cl"].result_list.get(name="Acme Agency")
    assert (org.member_count, org.inference_pool) == (2, 4_000_000)
    assert b"4,000,000" in response.content


def test_the_list_finds_an_organization_by_a_members_email(staff_client, alice, bob, carol):
    response = staff_client.get(ORG_LIST_URL, {"q": "bob@example"})

    assert [o.name for o in response.context["cl"].result_list] == ["Acme Agency"]


def test_activation_is_refused_for_an_organization_without_a_purchase(staff_client, org_a):
    unpaid = OrganizationFactory(name="Unpaid", status="pending", activated_at=None)
    org_a.status = "suspended"
    org_a.save()

    response = staff_client.post(
        ORG_LIST_URL,
        {"action": "activate_selected", "_selected_action": [unpaid.pk, org_a.pk]},
        follow=True,
    )

    assert "Unpaid cannot be activated before a payment (purchase) is recorded." in (
        error_messages(response)
    )
    assert "1 organization active." in error_messages(response)
    unpaid.refresh_from_db()
    org_a.refresh_from_db()
    assert (unpaid.status, org_a.status) == ("pending", "active")


def test_suspending_from_the_list_is_audited(staff_client, sam, org_a):
    staff_client.post(ORG_LIST_URL, {"action": "suspend_selected", "_selected_action": [org_a.pk]})

    org_a.refresh_from_db()
    assert org_a.status == "suspended"
    entry = AuditLog.objects.get(action="org.status")
    assert (entry.actor, entry.organization, entry.new_value) == (sam, org_a, "suspended")


# --- Organization change page -------------------------------------------------------------


def test_the_status_cannot_be_changed_from_the_form(staff_client, alice, bob):
    org = alice.membership.organization
    data = form_data(staff_client.get(org_url(org)))
    data.update(status="suspended", admin_notes="Renewal due in May")

    response = staff_client.post(org_url(org), data)

    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.status, org.admin_notes) == ("active", "Renewal due in May")
    assert AuditLog.objects.get(action="org.updated").column == "admin_notes"


def test_a_purchase_is_recorded_from_the_organization_page(staff_client, sam, alice, bob):
    org = alice.membership.organization
    data = form_data(staff_client.get(org_url(org)))
    add_purchase_row(data, payment_reference="INV-9")

    assert staff_client.post(org_url(org), data).status_code == 302

    purchase = Purchase.objects.get(organization=org, start_month="2031-01-01")
    assert (purchase.tokens_per_month, purchase.created_by) == (2_000_000, sam)
    assert AuditLog.objects.get(action="purchase.recorded").details["payment_reference"] == "INV-9"


def test_the_purchase_inline_refuses_amounts_not_in_2m_blocks(staff_client, alice, bob):
    org = alice.membership.organization
    data = form_data(staff_client.get(org_url(org)))
    add_purchase_row(data, tokens_per_month="2,500,000")

    response = staff_client.post(org_url(org), data)

    assert response.status_code == 200
    formset = next(
        i.formset
        for i in response.context["inline_admin_formsets"]
        if i.formset.prefix == "purchases-2"
    )
    assert formset.errors[-1]["tokens_per_month"][0].startswith(
        "2,500,000 is not a multiple of 2,000,000 tokens"
    )
    assert not Purchase.objects.filter(start_month="2031-01-01").exists()


def test_recorded_purchases_cannot_be_edited(staff_client, alice, bob):
    org = alice.membership.organization
    data = form_data(staff_client.get(org_url(org)))
    for index in range(int(data["purchases-INITIAL_FORMS"])):
        data[f"purchases-{index}-tokens_per_month"] = "100M"
        data[f"purchases-{index}-DELETE"] = "on"

    assert staff_client.post(org_url(org), data).status_code == 302

    assert sorted(Purchase.objects.filter(organization=org).values_list("tokens_per_month")) == [
        (2_000_000,),
        (4_000_000,),
    ]


def test_a_registered_user_is_added_by_email(staff_client, sam, alice, bob):
    org = alice.membership.organization
    nina = UserFactory(email="nina@example.com")
    data = form_data(staff_client.get(org_url(org)))
    add_inline_row(data, "memberships", email="NINA@example.com", role="member")

    assert staff_client.post(org_url(org), data).status_code == 302

    assert nina.membership.organization == org
    assert nina.membership.max_inference_tokens == 200_000
    assert AuditLog.objects.get(action="membership.added").target_user == nina


def test_adding_an_unregistered_email_is_refused_on_its_row(staff_client, alice, bob):
    org = alice.membership.organization
    data = form_data(staff_client.get(org_url(org)))
    add_inline_row(data, "memberships", email="ghost@example.com", role="member")

    response = staff_client.post(org_url(org), data)

    assert response.status_code == 200
    assert b"ghost@example.com has not registered yet" in response.content
    assert org.memberships.count() == 2


def test_adding_a_member_of_another_organization_is_refused(staff_client, alice, bob, carol):
    org = alice.membership.organization
    data = form_data(staff_client.get(org_url(org)))
    add_inline_row(data, "memberships", email="carol@example.com", role="admin")

    response = staff_client.post(org_url(org), data)

    assert "carol@example.com already belongs to “Bureau of Birds”." in response.content.decode()
    assert carol.membership.organization.name == "Bureau of Birds"


def test_a_role_change_from_the_inline_is_audited(staff_client, alice, bob):
    org = alice.membership.organization
    data = form_data(staff_client.get(org_url(org)))
    data[f"memberships-{row_index(data, 'memberships', bob)}-role"] = "admin"

    assert staff_client.post(org_url(org), data).status_code == 302

    bob.membership.refresh_from_db()
    assert bob.membership.role == "admin"
    assert AuditLog.objects.get(action="membership.role").target_user == bob


def test_the_last_admin_cannot_be_demoted_from_the_inline(staff_client, alice, bob):
    org = alice.membership.organization
    data = form_data(staff_client.get(org_url(org)))
    data[f"memberships-{row_index(data, 'memberships', alice)}-role"] = "member"

    response = staff_client.post(org_url(org), data)

    assert response.status_code == 200
    assert "alice@example.com cannot stop being an admin" in response.content.decode()
    alice.membership.refresh_from_db()
    assert alice.membership.role == "admin"


def test_removing_a_member_below_2_users_is_refused(staff_client, alice, bob):
    org = alice.membership.organization
    data = form_data(staff_client.get(org_url(org)))
    data[f"memberships-{row_index(data, 'memberships', bob)}-DELETE"] = "on"

    response = staff_client.post(org_url(org), data)

    assert response.status_code == 200
    assert "Removing bob@example.com would leave 1 user" in response.content.decode()
    assert Membership.objects.filter(user=bob).exists()


def test_removing_a_member_keeps_the_user(staff_client, alice, bob):
    org = alice.membership.organization
    MembershipFactory(organization=org)
    data = form_data(staff_client.get(org_url(org)))
    data[f"memberships-{row_index(data, 'memberships', bob)}-DELETE"] = "on"

    assert staff_client.post(org_url(org), data).status_code == 302

    assert not Membership.objects.filter(user=bob).exists()
    assert User.objects.filter(pk=bob.pk).exists()
    assert AuditLog.objects.get(action="membership.removed").target_user == bob


def test_organizations_cannot_be_deleted(staff_client, org_a):
    url = reverse("admin:accounts_organization_delete", args=[org_a.pk])

    assert staff_client.post(url, {"post": "yes"}).status_code == 403
    assert Organization.objects.filter(pk=org_a.pk).exists()


# --- Users --------------------------------------------------------------------------------


def test_staff_create_a_user_with_email_name_and_password(staff_client, sam):
    response = staff_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "Zoe@Example.com",
            "name": "Zoe",
            "password1": "a-long-unusual-passphrase",
            "password2": "a-long-unusual-passphrase",
        },
    )

    zoe = User.objects.get(email="zoe@example.com")
    assert response.status_code == 302
    assert response.url == change_url(zoe)
    assert zoe.check_password("a-long-unusual-passphrase")
    assert zoe.terms_accepted_at is None
    assert AuditLog.objects.get(action="user.created").actor == sam


def test_a_duplicate_email_is_refused_when_creating_a_user(staff_client, bob):
    response = staff_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "BOB@example.com",
            "name": "Bob Again",
            "password1": "a-long-unusual-passphrase",
            "password2": "a-long-unusual-passphrase",
        },
    )

    assert response.context["adminform"].form.errors["email"] == [
        "A user with the email bob@example.com already exists."
    ]


def test_banning_and_unpaying_a_user_go_through_the_audited_service(staff_client, sam, bob):
    url = change_url(bob)
    data = form_data(staff_client.get(url))
    data.pop("is_paid")
    data.update(is_banned="on", name="Robert Member")

    assert staff_client.post(url, data).status_code == 302

    bob.refresh_from_db()
    assert (bob.is_paid, bob.is_banned, bob.name) == (False, True, "Robert Member")
    actions = AuditLog.objects.filter(target_user=bob).values_list("action", "organization")
    org = bob.membership.organization.pk
    # The ban returned bob's allocation to the pool (the organization's default policy).
    assert sorted(actions) == [
        ("allocation.changed", org),
        ("user.banned", org),
        ("user.paid", org),
        ("user.updated", org),
    ]


def test_staff_cannot_ban_themselves(staff_client, sam):
    url = change_url(sam)
    data = form_data(staff_client.get(url))
    data["is_banned"] = "on"

    response = staff_client.post(url, data)

    assert response.context["adminform"].form.errors["is_banned"] == ["You cannot ban yourself."]
    sam.refresh_from_db()
    assert not sam.is_banned


def test_staff_who_are_not_superusers_cannot_grant_staff_access(client, sales, bob):
    client.force_login(sales)
    url = change_url(bob)
    data = form_data(client.get(url))
    data["is_staff"] = "on"

    assert client.post(url, data).status_code == 403

    bob.refresh_from_db()
    assert not bob.is_staff
    assert AuditLog.objects.get(action="staff.denied").target_user == bob


def test_a_password_set_by_staff_is_audited(staff_client, sam, bob):
    response = post_password(staff_client, bob)

    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.check_password(NEW_PASSWORD)
    assert AuditLog.objects.get(action="user.password").actor == sam


def test_users_cannot_be_deleted(staff_client, bob):
    url = reverse("admin:accounts_user_delete", args=[bob.pk])

    assert staff_client.post(url, {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=bob.pk).exists()


# --- Read-only records --------------------------------------------------------------------


def test_the_audit_log_cannot_be_added_changed_or_deleted(staff_client, sam, org_a):
    entry = AuditLog.objects.create(action="org.created", organization=org_a, actor=sam)
    change_url = reverse("admin:audit_auditlog_change", args=[entry.pk])

    assert staff_client.get(reverse("admin:audit_auditlog_add")).status_code == 403
    assert staff_client.post(change_url, {"action": "forged"}).status_code == 403
    delete_url = reverse("admin:audit_auditlog_delete", args=[entry.pk])
    assert staff_client.post(delete_url, {"post": "yes"}).status_code == 403

    entry.refresh_from_db()
    assert entry.action == "org.created"


def test_the_audit_log_filters_by_action_and_organization(staff_client, sam, org_a, org_b):
    AuditLog.objects.create(action="org.created", organization=org_a, actor=sam)
    AuditLog.objects.create(action="org.created", organization=org_b, actor=sam)
    AuditLog.objects.create(action="org.status", organization=org_a, actor=sam)

    response = staff_client.get(
        reverse("admin:audit_auditlog_changelist"),
        {"action": "org.created", "organization__id__exact": org_a.pk},
    )

    assert [(e.action, e.organization) for e in response.context["cl"].result_list] == [
        ("org.created", org_a)
    ]


def test_purchases_are_listed_but_not_added_from_their_own_list(staff_client, org_a):
    assert staff_client.get(reverse("admin:tokens_purchase_add")).status_code == 403
    response = staff_client.get(reverse("admin:tokens_purchase_changelist"))
    assert b"4,000,000" in response.content


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:accounts_organization_changelist",
        "admin:accounts_user_changelist",
        "admin:audit_auditlog_changelist",
        "admin:tokens_purchase_changelist",
    ],
)
def test_the_lists_query_count_does_not_grow_with_their_rows(
    staff_client, sam, url_name, django_assert_max_num_queries
):
    for n in range(15):
        membership = MembershipFactory(organization__name=f"Org {n:02}")
        PurchaseFactory(organization=membership.organization)
        AuditLog.objects.create(
            action="org.created", organization=membership.organization, actor=sam
        )

    with django_assert_max_num_queries(14):
        assert staff_client.get(reverse(url_name)).status_code == 200


def test_the_staff_index_names_allocation_policies_in_plain_english(client, sam):
    client.force_login(sam)
    html = client.get(reverse("admin:index")).content.decode()
    assert "Allocation policies" in html and "Allocation policys" not in html
