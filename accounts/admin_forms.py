"""Forms of the sales admin (/staff/): provisioning, the organization inlines, users.

Rules live in `accounts.services`; these forms parse what staff type and call the services'
`*_errors` helpers in `clean()` so that a refusal shows on the field that caused it.
"""

from django import forms
from django.conf import settings
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    BaseUserCreationForm,
    UserChangeForm,
)
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from accounts import services
from accounts.models import Membership, Organization, User
from asksage_admin.lib.amounts import ACCEPTED_FORMATS, AmountError, parse_tokens
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.months import current_month, month_start
from tokens.models import KIND_HELP, Purchase, TokenKind


def add_domain_errors(form: forms.BaseForm, error: DomainError) -> None:
    """Show a service's refusal on the form: on its field when the form has it, else on top."""
    for field, messages in error.errors.items():
        form.add_error(field if field in form.fields else None, messages)


class TokenAmountField(forms.CharField):
    """A token amount as people type it: 250000, 250,000, 250 000, 250k, 1.5M."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "size": 14}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return parse_tokens(value)
        except AmountError as exc:
            raise ValidationError(str(exc), code="amount") from exc


class MonthField(forms.DateField):
    """A UTC calendar month, typed as YYYY-MM (a full date is accepted and rounded down)."""

    input_formats = ["%Y-%m", "%Y-%m-%d"]

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "widget",
            forms.DateInput(format="%Y-%m", attrs={"type": "month", "placeholder": "YYYY-MM"}),
        )
        kwargs.setdefault("error_messages", {"invalid": "Enter a month as YYYY-MM."})
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return month_start(value) if value else value


class EmailListField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def to_python(self, value):
        return services.parse_email_list(super().to_python(value))


# --- Provisioning -------------------------------------------------------------------------


class ProvisionForm(forms.Form):
    """Everything sales needs to open an enterprise account, on one page."""

    name = forms.CharField(label="Organization name", max_length=200)
    billing_address = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))
    user_emails = EmailListField(
        required=False,
        help_text="One per line or separated by commas. Every user must already be registered "
        "and have accepted the terms. At least 2 users in all (admins count).",
    )
    admin_emails = EmailListField(
        required=False,
        help_text="At least 1, no maximum. Admins are users too: no need to repeat them above.",
    )
    inference_tokens = TokenAmountField(
        label="Inference tokens per month",
        help_text=f"{KIND_HELP[TokenKind.INFERENCE]} In blocks of 2,000,000; must cover "
        f"{settings.PLATFORM_MIN_INFERENCE_TOKENS:,} per user. Enter {ACCEPTED_FORMATS}.",
    )
    embedding_tokens = TokenAmountField(
        label="Embedding tokens per month",
        required=False,
        initial=0,
        help_text=f"{KIND_HELP[TokenKind.EMBEDDING]} Optional: 0 or blocks of 2,000,000.",
    )
    start_month = MonthField(initial=current_month, help_text="First month the purchase covers.")
    payment_reference = forms.CharField(
        max_length=100, required=False, help_text="Invoice or payment number."
    )
    activate = forms.BooleanField(
        label="Payment confirmed — activate now",
        required=False,
        help_text="Leave unticked to create the account as pending; activate it later from "
        "the organization list.",
    )

    fieldsets = (
        ("Organization", ("name", "billing_address")),
        ("People", ("user_emails", "admin_emails")),
        (
            "Initial purchase",
            (
                "inference_tokens",
                "embedding_tokens",
                "start_month",
                "payment_reference",
                "activate",
            ),
        ),
    )

    def clean_embedding_tokens(self) -> int:
        return self.cleaned_data["embedding_tokens"] or 0


# --- Organization change page -------------------------------------------------------------


class OrganizationChangeForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["name", "billing_address", "admin_notes"]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and "name" in cleaned and "billing_address" in cleaned:
            errors = services.organization_update_errors(
                org=self.instance, name=cleaned["name"], billing_address=cleaned["billing_address"]
            )
            add_domain_errors(self, DomainError(errors=errors))
        return cleaned


class PurchaseInlineForm(forms.ModelForm):
    """A new purchase. Existing ones are payment records: shown read-only, never edited."""

    tokens_per_month = TokenAmountField(
        label="Tokens per month", help_text="In blocks of 2,000,000 (2M, 4,000,000…)."
    )
    start_month = MonthField(initial=current_month)
    end_month = MonthField(required=False, help_text="Empty: ongoing.")

    class Meta:
        model = Purchase
        fields = [
            "kind",
            "tokens_per_month",
            "start_month",
            "end_month",
            "payment_reference",
            "note",
        ]
        widgets = {"note": forms.TextInput(attrs={"size": 24})}

    def clean(self):
        cleaned = super().clean()
        if not self.instance._state.adding:
            return cleaned
        if all(cleaned.get(f) is not None for f in ("kind", "tokens_per_month", "start_month")):
            errors = services.purchase_errors(
                kind=cleaned["kind"],
                tokens_per_month=cleaned["tokens_per_month"],
                start_month=cleaned["start_month"],
                end_month=cleaned.get("end_month"),
            )
            add_domain_errors(self, DomainError(errors=errors))
        return cleaned


class MembershipInlineForm(forms.ModelForm):
    """A member: their email is fixed once added; the role can change."""

    email = forms.EmailField(
        label="User email", help_text="A registered user who accepted the terms."
    )

    class Meta:
        model = Membership
        fields = ["email", "role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user: User | None = None
        if self.instance.pk:
            self.fields["email"].initial = self.instance.user.email
            self.fields["email"].disabled = True
            self.fields["email"].required = False
            self.fields["email"].help_text = ""

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if self.instance.pk:
            return email
        self.user = User.objects.filter(email__iexact=email).first()
        if self.user is None:
            raise ValidationError(f"{email} has not registered yet: users must register first.")
        if errors := services.membership_user_errors(self.user):
            raise ValidationError(errors)
        return email


class MembershipInlineFormSet(BaseInlineFormSet):
    """Checks the members as a whole: 2 users and 1 admin remain, new members fit the pool."""

    def changes(self) -> tuple[list, list, list]:
        add, set_roles, remove = [], [], []
        for form in self.forms:
            if not hasattr(form, "cleaned_data"):
                continue
            if form.instance.pk is None:
                if form.has_changed() and not self._should_delete_form(form) and form.user:
                    add.append((form.user, form.cleaned_data["role"]))
            elif self._should_delete_form(form):
                remove.append(form.instance)
            elif "role" in form.changed_data:
                set_roles.append((form.instance, form.cleaned_data["role"]))
        return add, set_roles, remove

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        add, set_roles, remove = self.changes()
        errors = services.membership_batch_errors(
            org=self.instance, add=add, set_roles=set_roles, remove=remove
        )
        if errors:
            raise ValidationError(errors)


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
