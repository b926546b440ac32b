"""The forms at the Admin Panel's edge: one per POST. They parse (amounts, whole numbers,
ids, emails, choices) into typed values; the services hold the rules that need the database
or several fields at once (floors, the pool, ceiling ≥ floor) and raise `DomainError`, which
`add_domain_errors` (asksage_admin.lib.forms) puts back on the form."""

import datetime as dt

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.forms import RegistrationForm
from accounts.models import Membership
from asksage_admin.lib.amounts import MAX_TOKENS
from asksage_admin.lib.forms import (
    AMOUNT_REQUIRED,
    EmailListField,
    IdListField,
    InputForm,
    TokenAmountField,
    WholeNumberField,
    add_domain_errors,
)
from asksage_admin.lib.months import add_months
from tokens.models import MAX_COLUMNS, ApiKeyScope, Preset, StepMode, TokenKind
from tokens.services.model_access import MODES, ROLE_LABELS
from tokens.services.policy import POLICY_FIELDS

__all__ = ["add_domain_errors"]  # the views and member_views take it from here

KIND_CHOICE_ERROR = {
    "invalid_choice": "Choose inference or embedding.",
    "required": "Choose inference or embedding.",
}


def _kind_field(**kwargs) -> forms.ChoiceField:
    return forms.ChoiceField(
        label="Kind", choices=TokenKind.choices, error_messages=KIND_CHOICE_ERROR, **kwargs
    )


def _amount_field(label: str = "Amount", **kwargs) -> TokenAmountField:
    kwargs.setdefault("error_messages", {"required": AMOUNT_REQUIRED})
    return TokenAmountField(label=label, max_length=None, **kwargs)


# --- Member -------------------------------------------------------------------------------


class TokenRequestForm(InputForm):
    kind = _kind_field()
    amount = _amount_field(
        required=False,
        help_text="For example 250000, 250,000, 250k or 1.5M.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. 500k"}),
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=2000,  # the service refuses over 500 with a clear message
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 500}),
        help_text="Up to 500 characters.",
    )


MEMBER_RANGES = [
    ("month", "This month"),
    ("7", "Last 7 days"),
    ("30", "Last 30 days"),
    ("90", "Last 90 days"),
    ("months", "This month and the 3 before"),
]


class MemberPeriodForm(forms.Form):
    """The period of "Your usage" on the member's home page: this month, the last 7/30/90
    UTC days (the presets of the statistics page), or this month and the 3 before, today
    included."""

    range = forms.ChoiceField(choices=MEMBER_RANGES, required=False, label="Period")

    def period(self) -> tuple[str, dt.date, dt.date, str]:
        """(choice, start, end, error): an unknown choice shows this month, and says so."""
        error, choice = "", "month"
        if self.is_bound and not self.is_valid():
            error = "That period is not one of the choices; showing this month instead."
        elif self.is_bound:
            choice = self.cleaned_data["range"] or "month"
        today = timezone.now().astimezone(dt.UTC).date()
        if choice == "month":
            return choice, today.replace(day=1), today, error
        if choice == "months":  # whole calendar months, as the monthly limits count them
            return choice, add_months(today.replace(day=1), -3), today, error
        return choice, today - dt.timedelta(days=int(choice) - 1), today, error


# --- User Management ----------------------------------------------------------------------


class CellEditForm(InputForm):
    """A Max cell confirmed: the typed value, and the stored value the editor showed."""

    value = _amount_field()
    seen = WholeNumberField(
        label="The value shown",
        low=0,
        high=MAX_TOKENS,
        required=False,
        message="{label} must be a whole number from {low:,} to {high:,}. "
        "Reload the page and edit the cell again.",
    )


class BulkEditForm(InputForm):
    """Selected rows (or all matching the filters in `query`) set or topped up to an amount."""

    column = forms.ChoiceField(
        choices=[(c, c) for c in MAX_COLUMNS],
        error_messages={
            "invalid_choice": "Choose a Max column.",
            "required": "Choose a Max column.",
        },
    )
    mode = forms.ChoiceField(
        choices=[("set", "set to"), ("topup", "top up to")],
        error_messages={
            "invalid_choice": "Choose “set to” or “top up to”.",
            "required": "Choose “set to” or “top up to”.",
        },
    )
    amount = _amount_field()
    users = IdListField(
        required=False, message="The selection is not valid: reload the page and select again."
    )
    all_matching = forms.BooleanField(required=False)
    query = forms.CharField(required=False, strip=False)


class UserFlagForm(InputForm):
    """Paid or Banned toggled to `value` (on/true/1/yes: set; anything else: clear);
    `confirmed` once the ban page was answered."""

    value = forms.CharField(required=False)
    confirmed = forms.BooleanField(required=False)

    def clean_value(self) -> bool:
        return self.cleaned_data["value"].strip().lower() in {"on", "true", "1", "yes"}


# --- Token Distribution -------------------------------------------------------------------


class PresetForm(InputForm):
    """A preset, and for Custom its settings. Only Custom reads them (the other presets are
    fixed), so they are parsed only then; which unit the step is in depends on its mode."""

    preset = forms.CharField(required=False)
    floor_inference = forms.CharField(required=False)
    floor_embedding = forms.CharField(required=False)
    ceiling = forms.CharField(required=False)  # an amount, or "none"
    trigger_percent = forms.CharField(required=False)
    cooldown_minutes = forms.CharField(required=False)
    step_mode = forms.CharField(required=False)
    step_value = forms.CharField(required=False)  # a percent or an amount, by step_mode

    PARSERS = {
        "floor_inference": TokenAmountField(required=False),
        "floor_embedding": TokenAmountField(required=False),
        "ceiling": TokenAmountField(required=False),
        "trigger_percent": WholeNumberField(label="Trigger", low=1, high=100, required=False),
        "cooldown_minutes": WholeNumberField(
            label="Cooldown", low=1, high=60 * 24 * 31, required=False
        ),
        "step_percent": WholeNumberField(label="Percent step", low=1, high=1000, required=False),
        "step_value": TokenAmountField(required=False),
    }

    def clean(self) -> dict:
        data = super().clean()
        if data.get("preset") != Preset.CUSTOM:
            return data
        if str(data.get("ceiling", "")).strip().lower() in {"none", "no ceiling"}:
            data["ceiling"] = ""
        for name in (
            "floor_inference",
            "floor_embedding",
            "ceiling",
            "trigger_percent",
            "cooldown_minutes",
            "step_value",
        ):
            parser = self.PARSERS[name]
            if name == "step_value" and data.get("step_mode") == StepMode.PERCENT:
                parser = self.PARSERS["step_percent"]
            try:
                data[name] = parser.clean(data.get(name, ""))
            except ValidationError as exc:
                self.add_error(name, exc)
        return data

    def settings(self) -> dict:
        """What the service reads for Custom: the parsed settings by field."""
        return {name: self.cleaned_data.get(name) for name in POLICY_FIELDS}


class DistributionActionForm(InputForm):
    kind = _kind_field()
    action = forms.CharField(required=False)  # the service names the actions
    amount = _amount_field(required=False)
    users = EmailListField(required=False)
    signature = forms.CharField(required=False)


class ReclaimForm(InputForm):
    kind = _kind_field()
    idle_days = WholeNumberField(label="Idle days", low=1, high=366)
    signature = forms.CharField(required=False)


class OverrideForm(InputForm):
    email = forms.CharField(required=False)
    pinned = forms.BooleanField(required=False)
    floor_inference = _amount_field("Floor (inference)", required=False)
    ceiling_inference = _amount_field("Ceiling (inference)", required=False)
    floor_embedding = _amount_field("Floor (embedding)", required=False)
    ceiling_embedding = _amount_field("Ceiling (embedding)", required=False)


class OptionsForm(InputForm):
    thresholds = forms.CharField(required=False)  # "50, 80, 95"
    low_unallocated = _amount_field("Low unallocated", required=False)
    auto_approve_enabled = forms.BooleanField(required=False)
    auto_approve_max = _amount_field("Auto-approve max", required=False)
    auto_approve_below_percent = WholeNumberField(label="Pool share", low=1, high=100)
    reclaim_idle_days = WholeNumberField(label="Idle days", low=1, high=366)

    def clean_thresholds(self) -> list[int]:
        text = self.cleaned_data["thresholds"].replace("%", "").replace(" ", "")
        field = WholeNumberField(label="Each threshold", low=1, high=100)
        return sorted({field.clean(item) for item in text.split(",") if item})


class PurchaseRequestForm(InputForm):
    kind = _kind_field()
    blocks = WholeNumberField(
        label="Blocks",
        low=1,
        high=1000,
        message="Enter how many blocks of 2,000,000 tokens, from {low} to {high}.",
    )
    note = forms.CharField(required=False, max_length=None)


# --- Token Requests -----------------------------------------------------------------------


class ApproveForm(InputForm):
    """Approve as asked, or a smaller amount."""

    amount = _amount_field(required=False)
    note = forms.CharField(required=False)


class DenyForm(InputForm):
    note = forms.CharField(required=False)


# --- API keys -----------------------------------------------------------------------------


class ApiKeyForm(InputForm):
    name = forms.CharField(required=False, strip=False)
    scopes = forms.MultipleChoiceField(choices=ApiKeyScope.choices, required=False)
    # The page's form says it showed the scope boxes: then none ticked is a refusal, while a
    # client posting only a name (before scopes existed) still gets a gateway key.
    scopes_shown = forms.BooleanField(required=False)

    def chosen_scopes(self) -> list[str] | None:
        scopes = self.cleaned_data["scopes"]
        return scopes if scopes or self.cleaned_data["scopes_shown"] else None


class AllocationImportForm(InputForm):
    """An allocation file to preview, or to apply once previewed (`previewed`: the digest of
    the file the preview showed; applying another file is refused)."""

    file = forms.FileField(
        label="CSV or Excel file",
        error_messages={"required": "Choose a CSV or Excel (.xlsx) file to import."},
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.txt,.xlsx"}),
    )
    step = forms.ChoiceField(
        choices=[("preview", "Preview"), ("apply", "Apply")],
        required=False,
        error_messages={"invalid_choice": "Choose Preview or Apply."},
    )
    previewed = forms.CharField(required=False, max_length=64)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.IMPORT_MAX_BYTES
        if upload.size > limit:
            raise ValidationError(too_large_message(upload.size, limit), code="too_large")
        return upload


def readable_size(size: int) -> str:
    """4194304 → "4 MB", 1536 → "1.5 KB" (binary units, as file managers show them)."""
    for unit, scale in (("MB", 1_048_576), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:,.1f}".removesuffix(".0") + f" {unit}"
    return f"{size:,} bytes"


def too_large_message(size: int | None, limit: int) -> str:
    found = f" ({readable_size(size)})" if size else ""
    return (
        f"The file is too large{found}: at most {readable_size(limit)}. "
        "Split it into smaller files."
    )


# --- Members and invitations --------------------------------------------------------------

ROLE_ERRORS = {
    "invalid_choice": "Choose admin, auditor or member.",
    "required": "Choose admin, auditor or member.",
}


class InviteForm(InputForm):
    email = forms.EmailField(
        label="Email",
        max_length=254,
        error_messages={"invalid": "Enter a valid email address, such as ana@example.gov."},
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@example.gov"}),
    )
    role = forms.ChoiceField(
        label="Role", choices=Membership.Role.choices, initial="member", error_messages=ROLE_ERRORS
    )


class RoleForm(InputForm):
    role = forms.ChoiceField(
        label="Role", choices=Membership.Role.choices, error_messages=ROLE_ERRORS
    )


class ConfirmForm(InputForm):
    """`confirmed` once the confirmation page (without JavaScript) was answered."""

    confirmed = forms.BooleanField(required=False)


class InvitationAcceptForm(InputForm):
    """A signed-in invitee: the terms box only matters if they never accepted them."""

    accept_terms = forms.BooleanField(label="I accept the terms and conditions", required=False)


class InvitationRegisterForm(RegistrationForm):
    """Registration for the invited address: the email comes from the invitation, not a field."""

    email = None


class ModelAccessForm(InputForm):
    """Who may use one model (the Models page): everyone, some roles, some members, nobody."""

    model = forms.CharField(max_length=100, error_messages={"required": "Choose a model."})
    mode = forms.ChoiceField(
        choices=list(MODES.items()),
        error_messages={"required": "Choose who may use the model."},
    )
    roles = forms.MultipleChoiceField(choices=list(ROLE_LABELS.items()), required=False)
    emails = EmailListField(required=False, max_length=20_000)
