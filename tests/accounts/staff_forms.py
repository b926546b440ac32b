"""The sales admin's (/staff/) forms as a browser fills and posts them, for the tests of
tests/accounts and tests/security."""

from django import forms
from django.urls import reverse

from accounts.models import Organization, User
from asksage_admin.lib.months import current_month

PROVISION_URL = reverse("admin:accounts_organization_add")
ORG_LIST_URL = reverse("admin:accounts_organization_changelist")
USER_LIST_URL = reverse("admin:accounts_user_changelist")
NEW_PASSWORD = "another-long-passphrase"


def org_url(org: Organization) -> str:
    return reverse("admin:accounts_organization_change", args=[org.pk])


def change_url(user: User) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


def password_url(user: User) -> str:
    return reverse("admin:auth_user_password_change", args=[user.pk])


def form_data(response) -> dict:
    """What the browser would post back, unchanged, for an admin change page."""
    data = {}

    def add(form):
        for name, field in form.fields.items():
            value = form[name].value()
            key = form.add_prefix(name)
            if isinstance(field, forms.BooleanField):
                if value:
                    data[key] = "on"
            elif isinstance(field, forms.MultipleChoiceField | forms.ModelMultipleChoiceField):
                data[key] = [str(getattr(v, "pk", v)) for v in value or []]
            elif value is not None:
                data[key] = str(getattr(value, "pk", value))

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.initial_forms:
            add(form)
    return data


def add_inline_row(data: dict, prefix: str, **fields) -> dict:
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    data.update({f"{prefix}-{index}-{name}": value for name, value in fields.items()})
    return data


def add_purchase_row(data: dict, **fields) -> dict:
    """A new row in an organization page's purchases inline: 2M inference from 2031-01."""
    defaults = {"kind": "inference", "tokens_per_month": "2M", "start_month": "2031-01"}
    return add_inline_row(data, "purchases-2", **{**defaults, **fields})


def provision_data(**overrides) -> dict:
    return {
        "name": "Newco",
        "billing_address": "2 Harbour Road",
        "user_emails": "omar@example.com\npia@example.com",
        "admin_emails": "nina@example.com",
        "inference_tokens": "2M",
        "embedding_tokens": "",
        "start_month": current_month().strftime("%Y-%m"),
        "payment_reference": "INV-7",
        **overrides,
    }


def user_data(user: User, **overrides) -> dict:
    """The user's change form as a browser posts it (read-only fields are not posted)."""
    data = {"email": user.email, "name": user.name, "password": user.password}
    if user.is_paid:
        data["is_paid"] = "on"
    return {**data, **overrides}


def post_user_change(client, user: User, **overrides):
    """Post the user's change form with `overrides` over what is stored."""
    return client.post(change_url(user), user_data(user, **overrides))


def post_password(client, user: User):
    """Set the user's password to NEW_PASSWORD through the admin's password form."""
    data = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    return client.post(password_url(user), data)


def post_second_factor_reset(client, *users: User):
    """Run the user list's "reset second factor" action on `users`."""
    data = {"action": "reset_second_factor", "_selected_action": [u.pk for u in users]}
    return client.post(USER_LIST_URL, data)
