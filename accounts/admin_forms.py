"""Forms of the sales admin (/staff/): the organization's details and users (the provisioning,
purchase and membership forms are in `tokens.admin_forms`; the fields both use, such as
`TokenAmountField`, in `asksage_admin.lib.forms`, which the panel's forms use too).

Rules live in `accounts.services`; these forms parse what staff type and call the services'
`*_errors` helpers in `clean()` so that a refusal shows on the field that caused it.
"""

from django import forms
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    BaseUserCreationForm,
    UserChangeForm,
)
from django.core.exceptions import ValidationError

from accounts import services
from accounts.models import Organization, User
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.forms import add_domain_errors

# --- Provisioning -------------------------------------------------------------------------


# --- Organization change page -------------------------------------------------------------


class OrganizationChangeForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["name", "billing_address", "admin_notes", "on_deactivation"]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and "name" in cleaned and "billing_address" in cleaned:
            errors = services.organization_update_errors(
                org=self.instance, name=cleaned["name"], billing_address=cleaned["billing_address"]
            )
            add_domain_errors(self, DomainError(errors=errors))
        return cleaned


# --- Users --------------------------------------------------------------------------------


class StaffUserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "name"]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if errors := services.user_email_errors(email):
            raise ValidationError(errors)
        return email


class StaffUserChangeForm(UserChangeForm):
    # Set by the admin on the class it builds for each request: who is editing.
    actor: User | None = None

    class Meta:
        model = User
        fields = [
            "email",
            "name",
            "password",
            "is_paid",
            "is_banned",
            "is_staff",
            "is_superuser",
            "groups",
        ]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if errors := services.user_email_errors(email, exclude=self.instance):
            raise ValidationError(errors)
        return email

    def clean_is_banned(self) -> bool:
        banned = self.cleaned_data["is_banned"]
        if banned and self.actor is not None and self.actor.pk == self.instance.pk:
            raise ValidationError("You cannot ban yourself.")
        return banned


class StaffPasswordChangeForm(AdminPasswordChangeForm):
    """Sets the password through `services.user_set_password`, which audits it."""

    def __init__(self, user, *args, actor: User, **kwargs):
        self.actor = actor
        super().__init__(user, *args, **kwargs)

    def save(self, commit=True):
        password = (
            self.cleaned_data["password1"] if self.cleaned_data["set_usable_password"] else None
        )
        self.user = services.user_set_password(actor=self.actor, user=self.user, password=password)
        return self.user
