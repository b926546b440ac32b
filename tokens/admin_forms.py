"""Forms of the sales admin's organization page: provisioning an account with its first
purchases, recording a purchase, and changing the members (whose floors come out of the pools).
The services re-check every rule inside their transaction (`tokens.organizations`)."""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from accounts import services
from accounts.models import Membership, User
from asksage_admin.lib.amounts import ACCEPTED_FORMATS
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.forms import EmailListField, MonthField, TokenAmountField, add_domain_errors
from asksage_admin.lib.months import current_month
from tokens import organizations
from tokens.models import KIND_HELP, Purchase, TokenKind


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


def label_cells(form: forms.BaseForm, whose: str) -> None:
    """Name each input of a tabular inline's row: the column header alone is not a label for
    assistive technology (axe: "Form elements must have labels"), so "Role of nina@…"."""
    for field in form.fields.values():
        if field.label:
            field.widget.attrs.setdefault("aria-label", f"{field.label} {whose}")


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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        label_cells(self, "of the new purchase")

    def clean(self):
        cleaned = super().clean()
        if not self.instance._state.adding:
            return cleaned
        if all(cleaned.get(f) is not None for f in ("kind", "tokens_per_month", "start_month")):
            errors = organizations.purchase_errors(
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
        label="User email",
        help_text="A registered user who accepted the terms.",
        widget=forms.EmailInput(attrs={"size": 34}),
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
        label_cells(
            self, f"of {self.instance.user.email}" if self.instance.pk else "of the new member"
        )

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
    """Checks the members as a whole: 2 users and 1 admin remain, new members fit the pool.

    `page`: which page of the members the forms hold (the organization page shows one)."""

    def __init__(self, *args, page=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.page = page

    def add_fields(self, form, index):
        super().add_fields(form, index)
        if "DELETE" in form.fields and form.instance.pk:
            form.fields["DELETE"].widget.attrs["aria-label"] = f"Remove {form.instance.user.email}"

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
        errors = organizations.membership_batch_errors(
            org=self.instance, add=add, set_roles=set_roles, remove=remove
        )
        if errors:
            raise ValidationError(errors)
