"""Forms that collect input for the token services; the services hold the rules."""

from django import forms

from tokens.models import TokenKind


class TokenRequestForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=TokenKind.choices)
    amount = forms.CharField(
        label="Amount",
        max_length=40,
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


def add_domain_errors(form: forms.Form, exc) -> None:
    for field, messages in exc.errors.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)
