"""Least privilege in the sales admin (/staff/): the groups Sales and Sales lead, and the
accounts and fields that only superusers touch. Every refused attempt answers 403, changes
nothing and leaves a "staff.denied" row in the audit log."""

import importlib

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services, staff_roles
from accounts.models import Organization, User
from asksage_admin.lib.errors import DomainError
from audit.models import AuditLog
from tests.accounts.staff_forms import (
    NEW_PASSWORD,
    PROVISION_URL,
    USER_LIST_URL,
    change_url,
    password_url,
    post_password,
    post_second_factor_reset,
    post_user_change,
    provision_data,
)
from tests.factories import UserFactory
from tokens.models import Purchase
from tokens.services import purchases as purchase_services

pytestmark = pytest.mark.django_db


def second_factor(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="app", confirmed=True)


def the_refusal(actor: User, target: User | None) -> AuditLog:
    return AuditLog.objects.get(action="staff.denied", actor=actor, target_user=target)


def as_user(client, user: User):
    client.force_login(user)
    return client


# --- The groups ---------------------------------------------------------------------------


def test_the_migration_creates_the_groups_sales_and_sales_lead():
    # The latest group migration syncs the groups with today's roles (accounts 0008: single
    # sign-on for sales; tokens 0023, 0014 and accounts 0004 keep their own).
    migration = importlib.import_module("accounts.migrations.0008_identity_providers")
    Group.objects.filter(name__in=["Sales", "Sales lead"]).delete()

    migration.sync_groups(django_apps, None)

    def perms(name: str) -> set[str]:
        group = Group.objects.get(name=name)
        return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}

    assert perms("Sales") == set(staff_roles.SALES_PERMISSIONS)
    assert perms("Sales lead") - perms("Sales") == {
        "accounts.reset_second_factor",
        "accounts.set_user_password",
        "audit.view_auditlog",
        "tokens.view_periodicrun",
    }
    assert "tokens.view_emaildelivery" in perms("Sales")
    assert "tokens.change_platformmodel" in perms("Sales")
    assert "tokens.delete_platformmodel" not in perms("Sales")
    assert not {p for p in perms("Sales lead") if p.startswith("auth.") or "delete_user" in p}


# --- Superusers' accounts -----------------------------------------------------------------


@pytest.mark.parametrize("actor", ["sales", "sales_lead"])
def test_sales_staff_cannot_change_a_superusers_password(client, request, sam, actor):
    staff = as_user(client, request.getfixturevalue(actor))
    before = User.objects.get(pk=sam.pk).password

    response = post_password(staff, sam)

    assert response.status_code == 403
    assert b"Only a superuser can change a superuser" in response.content
    assert User.objects.get(pk=sam.pk).password == before
    entry = the_refusal(request.getfixturevalue(actor), sam)
    assert entry.column == "password"
    assert entry.details["path"] == password_url(sam)
    assert not AuditLog.objects.filter(action="user.password").exists()


def test_sales_staff_cannot_change_a_superusers_email(client, sales, sam):
    as_user(client, sales)

    response = post_user_change(client, sam, email="mine@example.com")

    assert response.status_code == 403
    sam.refresh_from_db()
    assert sam.email == "sam@example.com"
    assert the_refusal(sales, sam).column == "change"


def test_sales_staff_cannot_ban_a_superuser(client, sales, sam):
    as_user(client, sales)

    response = post_user_change(client, sam, is_banned="on")

    assert response.status_code == 403
    sam.refresh_from_db()
    assert not sam.is_banned
    assert the_refusal(sales, sam).new_value == "email, is_banned, is_paid, name, password"


def test_a_sales_lead_cannot_reset_the_second_factor_of_a_superuser(client, sales_lead, sam, bob):
    sams_device, bobs_device = second_factor(sam), second_factor(bob)
    as_user(client, sales_lead)

    response = post_second_factor_reset(client, sam, bob)

    assert response.status_code == 403
    # All or nothing: bob, who could have been reset, was not either.
    assert TOTPDevice.objects.filter(pk__in=[sams_device.pk, bobs_device.pk]).count() == 2
    assert the_refusal(sales_lead, sam).column == "mfa.reset"
    assert not AuditLog.objects.filter(action="mfa.reset").exists()


# --- Privileges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("is_superuser", "on"),
        ("is_staff", "on"),
        ("groups", "sales-lead"),
        ("user_permissions", "1"),
    ],
)
def test_sales_staff_cannot_grant_privileges_to_anyone(client, sales_lead, bob, field, value):
    if value == "sales-lead":
        value = str(Group.objects.get(name="Sales lead").pk)
    as_user(client, sales_lead)

    response = post_user_change(client, bob, **{field: value})

    assert response.status_code == 403
    bob.refresh_from_db()
    assert (bob.is_staff, bob.is_superuser) == (False, False)
    assert not bob.groups.exists() and not bob.user_permissions.exists()
    entry = the_refusal(sales_lead, bob)
    assert (entry.column, entry.new_value) == ("escalation", field)


def test_sales_staff_cannot_make_themselves_superusers(client, sales):
    as_user(client, sales)

    response = post_user_change(client, sales, is_superuser="on")

    assert response.status_code == 403
    sales.refresh_from_db()
    assert not sales.is_superuser
    assert the_refusal(sales, sales).column == "escalation"


def test_sales_staff_cannot_create_a_staff_account(client, sales):
    as_user(client, sales)

    response = client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "mole@example.com",
            "name": "Mole",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "is_staff": "on",
        },
    )

    assert response.status_code == 403
    assert not User.objects.filter(email="mole@example.com").exists()
    entry = the_refusal(sales, None)
    assert (entry.column, entry.new_value) == ("escalation", "is_staff")


def test_the_privilege_fields_are_read_only_for_sales_staff(client, sales_lead, bob):
    response = as_user(client, sales_lead).get(change_url(bob))

    form = response.context["adminform"].form
    assert {"is_staff", "is_superuser", "groups", "user_permissions"}.isdisjoint(form.fields)


def test_a_superuser_puts_staff_in_a_group_and_it_is_audited(client, sam):
    stan = UserFactory(email="stan@example.com", is_staff=True)
    sales_group = Group.objects.get_or_create(name="Sales")[0]
    as_user(client, sam)

    response = post_user_change(client, stan, is_staff="on", groups=[str(sales_group.pk)])

    assert response.status_code == 302
    assert list(stan.groups.values_list("name", flat=True)) == ["Sales"]
    entry = AuditLog.objects.get(action="user.updated", column="groups")
    assert (entry.actor, entry.target_user, entry.old_value, entry.new_value) == (
        sam,
        stan,
        "",
        "Sales",
    )


# --- Other staff members ------------------------------------------------------------------


def test_a_sales_lead_cannot_set_the_password_of_another_staff_member(client, sales_lead, sales):
    before = User.objects.get(pk=sales.pk).password
    as_user(client, sales_lead)

    response = post_password(client, sales)

    assert response.status_code == 403
    assert User.objects.get(pk=sales.pk).password == before
    assert the_refusal(sales_lead, sales).column == "password"


def test_a_sales_lead_cannot_reset_the_second_factor_of_staff(client, sales_lead, sales):
    device = second_factor(sales)
    as_user(client, sales_lead)

    response = post_second_factor_reset(client, sales)

    assert response.status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert the_refusal(sales_lead, sales).column == "mfa.reset"


def test_sales_staff_cannot_change_another_staff_members_account(client, sales, sales_lead):
    as_user(client, sales)

    response = post_user_change(client, sales_lead, name="Demoted")

    assert response.status_code == 403
    sales_lead.refresh_from_db()
    assert sales_lead.name == "Lee Lead"
    assert the_refusal(sales, sales_lead).column == "change"


def test_the_services_refuse_a_non_superuser_on_a_staff_account(sales, sales_lead, sam):
    """Behind the admin, the services hold the same line (defence in depth)."""
    with pytest.raises(DomainError, match="Only a superuser"):
        services.user_set_password(actor=sales_lead, user=sales, password=NEW_PASSWORD)
    with pytest.raises(DomainError, match="Only a superuser"):
        services.user_update(actor=sales_lead, user=sam, changes={"name": "Someone Else"})


# --- What each group may do ---------------------------------------------------------------


def test_plain_sales_cannot_set_a_customers_password(client, sales, bob):
    before = User.objects.get(pk=bob.pk).password

    response = post_password(as_user(client, sales), bob)

    assert response.status_code == 403
    assert User.objects.get(pk=bob.pk).password == before
    assert the_refusal(sales, bob).details["reason"] == (
        "Only a sales lead can set another user's password."
    )


def test_plain_sales_cannot_reset_a_second_factor(client, sales, bob):
    device = second_factor(bob)
    as_user(client, sales)

    assert client.get(USER_LIST_URL).context["action_form"] is None  # no action is offered
    response = post_second_factor_reset(client, bob)

    assert response.status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert the_refusal(sales, bob).column == "mfa.reset"


def test_a_sales_lead_sets_a_customers_password(client, sales_lead, bob):
    response = post_password(as_user(client, sales_lead), bob)

    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.check_password(NEW_PASSWORD)
    assert AuditLog.objects.get(action="user.password").actor == sales_lead


def test_a_sales_lead_resets_a_customers_second_factor(client, sales_lead, alice):
    device = second_factor(alice)

    response = post_second_factor_reset(as_user(client, sales_lead), alice)

    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    assert AuditLog.objects.get(action="mfa.reset").actor == sales_lead


def test_sales_can_still_provision_record_a_purchase_and_edit_a_member(client, sales, bob):
    for name in ("nina", "omar", "pia"):
        UserFactory(email=f"{name}@example.com")
    as_user(client, sales)

    response = client.post(PROVISION_URL, provision_data(activate="on", payment_reference=""))
    org = Organization.objects.get(name="Newco")
    assert response.status_code == 302
    assert Purchase.objects.filter(organization=org).count() == 1

    response = post_user_change(client, bob, name="Robert Member")
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.name == "Robert Member"
    assert not AuditLog.objects.filter(action="staff.denied").exists()


def test_sales_mark_a_purchase_request_fulfilled(client, sales, alice, org_a):
    purchase_request = purchase_services.purchase_request_create(
        admin=alice, org=org_a, kind="embedding", blocks=1, note="More docs"
    )
    url = reverse("admin:tokens_purchaserequest_changelist")

    response = as_user(client, sales).post(
        url, {"action": "mark_fulfilled", "_selected_action": [purchase_request.pk]}
    )

    assert response.status_code == 302
    purchase_request.refresh_from_db()
    assert (purchase_request.status, purchase_request.fulfilled_by) == ("fulfilled", sales)


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:accounts_organization_changelist",
        "admin:accounts_user_changelist",
        "admin:tokens_purchase_changelist",
        "admin:tokens_purchaserequest_changelist",
        "admin:audit_auditlog_changelist",
    ],
)
def test_staff_in_no_group_see_nothing(client, url_name):
    stan = UserFactory(email="stan@example.com", is_staff=True)
    as_user(client, stan)

    assert client.get(reverse(url_name)).status_code == 403
    assert client.get(reverse("admin:index")).context["app_list"] == []


def test_only_a_sales_lead_reads_the_audit_log(client, sales, sales_lead):
    url = reverse("admin:audit_auditlog_changelist")

    assert as_user(client, sales).get(url).status_code == 403
    assert as_user(client, sales_lead).get(url).status_code == 200


# --- The record of a refusal --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_refusal_is_recorded_even_when_each_request_runs_in_a_transaction(
    client, monkeypatch, sales, sam
):
    # With ATOMIC_REQUESTS a raised PermissionDenied would roll the audit row back with the
    # request: the refusal is a response, and its row is committed.
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    as_user(client, sales)

    response = post_user_change(client, sam, is_superuser="on")

    assert response.status_code == 403
    assert the_refusal(sales, sam).column == "escalation"


# --- Second-factor secrets ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/staff/otp_totp/totpdevice/",
        "/staff/otp_totp/totpdevice/{pk}/change/",
        "/staff/otp_totp/totpdevice/{pk}/config/",
        "/staff/otp_totp/totpdevice/{pk}/qrcode/",
        "/staff/otp_static/staticdevice/",
    ],
)
def test_no_one_reads_second_factor_secrets_in_the_sales_admin(client, sam, alice, path):
    device = second_factor(alice)

    response = as_user(client, sam).get(path.format(pk=device.pk))

    assert response.status_code == 404
    assert device.key.encode() not in response.content


def test_running_the_group_migration_leaves_the_app_registry_as_it_was():
    """The migration lends a models module to app configs for create_permissions; clearing the
    real registry's afterwards made every later flush skip these apps' permissions."""
    migration = importlib.import_module("accounts.migrations.0004_staff_groups_audit_app")
    before = {
        label: django_apps.get_app_config(label).models_module
        for label in ("accounts", "tokens", "audit")
    }

    migration.sync_groups(django_apps, None)

    after = {label: django_apps.get_app_config(label).models_module for label in before}
    assert after == before
    assert all(module is not None for module in after.values())
