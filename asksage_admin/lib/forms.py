"""Form fields and helpers every edge shares: the panel (tokens/forms.py) and /staff/
(accounts/admin_forms.py, tokens/admin_forms.py) parse the same inputs the same way.

Fields parse; services decide. A field turns what people type into a typed value (an int,
a list of emails) or a sentence saying why it cannot; rules that need the database or
several fields at once (floors, the pool, ceiling ≥ floor) stay in the services, whose
`DomainError` comes back to the form through `add_domain_errors`.
"""

from django import forms
from django.core.exceptions import ValidationError

from asksage_admin.lib.amounts import ACCEPTED_FORMATS, AmountError, parse_tokens
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.inputs import (
    InputError,
    parse_email_list,
    parse_id,
    parse_whole,
    text_problem,
)
from asksage_admin.lib.months import month_start

AMOUNT_REQUIRED = f"Enter an amount: {ACCEPTED_FORMATS}."


def add_domain_errors(form: forms.BaseForm, error: DomainError) -> None:
    """Show a service's refusal on the form: on its field when the form has it, else on top."""
    for field, messages in error.errors.items():
        form.add_error(field if field in form.fields else None, messages)


class InputForm(forms.Form):
    """A form at an edge: any field refuses text the databases cannot store (NUL, unpaired
    surrogates: PostgreSQL raised on it, a 500), and a choice error never quotes the value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            # Django's default quotes the value ("Select a valid choice. %(value)s is…").
            if "%(value)s" in str(field.error_messages.get("invalid_choice", "")):
                field.error_messages["invalid_choice"] = "Choose one of the options."

    def full_clean(self):
        """Text the databases cannot store is named as such (not "not an amount"), and its
        field's value never reaches a service."""
        super().full_clean()
        if not self.is_bound:
            return
        for name in self.fields:
            key = self.add_prefix(name)
            raw = self.data.getlist(key) if hasattr(self.data, "getlist") else [self.data.get(key)]
            problem = next((p for v in raw if isinstance(v, str) and (p := text_problem(v))), None)
            if problem:
                self._errors[name] = self.error_class(
                    [f"The “{name.replace('_', ' ')}” field {problem}."]
                )
                self.cleaned_data.pop(name, None)


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


class WholeNumberField(forms.CharField):
    """A whole number typed with ASCII digits only, within [low, high] (no int() of 5,000
    digits, no "²"). `message` words the refusal; it may use {label}, {low} and {high}."""

    def __init__(
        self,
        *,
        low: int,
        high: int,
        message: str = "{label}: enter a whole number from {low} to {high}.",
        **kwargs,
    ):
        self.low, self.high, self.message = low, high, message
        kwargs.setdefault("max_length", None)
        super().__init__(**kwargs)
        self.error_messages.setdefault("required", self._refusal())

    def _refusal(self) -> str:
        return self.message.format(label=self.label or "The number", low=self.low, high=self.high)

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return parse_whole(
                value, label=self.label or "The number", low=self.low, high=self.high
            )
        except InputError:
            raise ValidationError(self._refusal(), code="whole") from None


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
    """Emails separated by new lines, commas, semicolons or spaces → a de-duplicated list."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def to_python(self, value):
        return parse_email_list(super().to_python(value))


class IdListField(forms.Field):
    """Several database ids under one name (checkboxes): a list of ints, each 1 … 2**63 − 1."""

    widget = forms.MultipleHiddenInput

    def __init__(self, *, message: str = "A selected id is not valid.", **kwargs):
        self.message = message
        super().__init__(**kwargs)

    def to_python(self, value):
        if not value:
            return []
        try:
            return [parse_id(item, label="An id") for item in value]
        except InputError:
            raise ValidationError(self.message, code="id") from None
