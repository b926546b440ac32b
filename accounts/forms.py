"""Registration and login forms."""

from itertools import chain

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.forms import PasswordResetForm as DjangoPasswordResetForm
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX

from accounts.models import User
from accounts.sso import SSO_REQUIRED_MESSAGE, sso_required_for


class RegistrationForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    name = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    accept_terms = forms.BooleanField(
        label="I accept the terms and conditions",
        error_messages={"required": "You must accept the terms and conditions."},
    )

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password


class TermsForm(forms.Form):
    accept_terms = RegistrationForm.base_fields["accept_terms"]


class LoginForm(AuthenticationForm):
    """Login by email; banned users are told why they cannot log in, and members whose
    organization requires single sign-on are sent to it before their password is checked."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Email or password is incorrect.",
        "banned": "This account has been banned. Contact your organization's administrator.",
        "sso_required": SSO_REQUIRED_MESSAGE,
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email"
        self.fields["username"].widget = forms.EmailInput(
            attrs={"autofocus": True, "autocomplete": "email"}
        )
        # Email first: the browser may send the email alone (single sign-on routes it); the
        # server still asks for a password where no identity provider signs the domain in.
        self.fields["password"].widget.use_required_attribute = lambda initial: False

    def clean(self):
        email = (self.data.get("username") or "").strip()
        user = User.objects.filter(email__iexact=email).first() if email else None
        if user is not None and sso_required_for(user):
            raise forms.ValidationError(self.error_messages["sso_required"], code="sso_required")
        return super().clean()

    def confirm_login_allowed(self, user) -> None:
        if user.is_banned:
            raise forms.ValidationError(self.error_messages["banned"], code="banned")
        super().confirm_login_allowed(user)


class PasswordResetForm(DjangoPasswordResetForm):
    """Django's, plus the users created without a password (by SCIM, or by sales leaving it
    unset) who never signed in: the reset link is how they set their first one. Django skips
    every unusable password; a staff member's deliberate "disable password login" on an account
    that has signed in before still holds. No email goes to a member whose organization
    requires single sign-on (a password would not let them in); the page reads the same as
    for an unknown address."""

    def get_users(self, email):
        never_signed_in = User.objects.filter(
            email__iexact=email, is_active=True, is_banned=False, last_login__isnull=True
        ).filter(password__startswith=UNUSABLE_PASSWORD_PREFIX)
        for user in chain(super().get_users(email), never_signed_in):
            if not sso_required_for(user):
                yield user
