"""The sales admin's page for an organization's single sign-on (OpenID Connect).

The client secret is a write-only field: typed once, stored encrypted (or as an `env:NAME`
reference), never shown back; left blank, the stored one stays. Domains are a text box, one
per line, each claimable by one organization only. Every save is audited
(`accounts.sso.identity_provider_save`); nothing is deleted here: untick "enabled" instead.
"""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from accounts.models import IdentityProvider
from accounts.sso import domain_claim_errors, identity_provider_save, issuer_errors, parse_domains
from accounts.sso_secrets import ENV_PREFIX, env_name_errors, is_reference
from asksage_admin.lib.admin import ServiceErrorsAsMessages, StaffPermissions

SECRET_HELP = (
    "Typed once, stored encrypted, never shown again; leave blank to keep the stored one. "
    "Or “env:OIDC_VARIABLE_NAME” to read it from the server's environment at sign-in."
)
NO_SECRET = "Enter the client secret the identity provider gave."
SECRET_AGAIN = (
    "The issuer or client ID changed: type the client secret again (the stored one is never "
    "sent to another provider)."
)


class IdentityProviderForm(forms.ModelForm):
    secret = forms.CharField(
        label="Client secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=SECRET_HELP,
    )
    domains = forms.CharField(
        label="Allowed email domains",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line (e.g. agency.gov). Only addresses of these domains sign in "
        "through this provider; a domain belongs to one organization only.",
    )

    class Meta:
        model = IdentityProvider
        fields = [
            "organization",
            "enabled",
            "issuer",
            "client_id",
            "sso_required",
            "jit_enabled",
            "require_verified_email",
            "trust_idp_mfa",
        ]
        labels = {"client_id": "Client ID"}
        help_texts = {
            "trust_idp_mfa": "An SSO session counts as second-factor verified only when the "
            "IdP's id_token shows a multi-factor sign-in: its “amr” claim contains “mfa”, or "
            "two different methods (e.g. “pwd” and “otp”, “hwk”, “sc” or “swk”). Otherwise "
            "the member passes this site's own second factor, as when this is off. Okta sends "
            "amr; check that Entra ID's id_tokens carry it (README); Keycloak needs an “amr” "
            "mapper on the client.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        secret = self.fields["secret"]
        if stored := self.instance.client_secret:
            # Says that one is there (and which variable), never what it is.
            kind = stored if is_reference(stored) else "an encrypted secret"
            secret.help_text = f"Stored: {kind}. {SECRET_HELP}"
        else:
            secret.required = True  # the admin marks it so
            secret.error_messages["required"] = NO_SECRET
        if self.instance.pk and not self.is_bound:
            self.initial["domains"] = "\n".join(
                self.instance.domains.order_by("domain").values_list("domain", flat=True)
            )

    def clean_issuer(self) -> str:
        issuer = self.cleaned_data["issuer"].strip().rstrip("/")
        if errors := issuer_errors(issuer):
            raise forms.ValidationError(errors)
        return issuer

    def clean_domains(self) -> list[str]:
        domains, errors = parse_domains(self.cleaned_data["domains"])
        if not domains and not errors:
            errors = ["Enter at least one email domain."]
        errors += domain_claim_errors(domains, self.instance)
        if errors:
            raise forms.ValidationError(errors)
        return domains

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"]
        if not secret and not self.instance.client_secret:
            raise forms.ValidationError(NO_SECRET)
        if is_reference(secret) and (errors := env_name_errors(secret[len(ENV_PREFIX) :])):
            raise forms.ValidationError(errors)
        return secret

    def clean(self):
        """A new issuer or client ID needs its secret typed again: the stored one must never be
        sent to another provider's token endpoint."""
        data = super().clean()
        moved = self.instance.pk and (
            data.get("issuer", self.instance.issuer) != self.instance.issuer
            or data.get("client_id", self.instance.client_id) != self.instance.client_id
        )
        if moved and not data.get("secret") and "secret" not in self.errors:
            self.add_error("secret", SECRET_AGAIN)
        return data


@admin.register(IdentityProvider)
class IdentityProviderAdmin(ServiceErrorsAsMessages, StaffPermissions, admin.ModelAdmin):
    form = IdentityProviderForm
    list_display = ["organization", "issuer", "domain_list", "enabled", "sso_required"]
    list_filter = ["enabled", "sso_required", "jit_enabled"]
    list_select_related = ["organization"]
    search_fields = ["organization__name", "domains__domain", "issuer"]
    readonly_fields = ["redirect_uri", "post_logout_redirect_uri", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["organization", "enabled", "issuer", "client_id", "secret"]}),
        ("Who signs in", {"fields": ["domains", "jit_enabled", "require_verified_email"]}),
        (
            "Rules",
            {
                "fields": ["sso_required", "trust_idp_mfa"],
                "description": "Break-glass: staff always sign in with their own password and "
                "second factor; if the IdP is down, untick “SSO required” here and members "
                "may use their passwords again.",
            },
        ),
        (
            "Registration at the IdP",
            {"fields": ["redirect_uri", "post_logout_redirect_uri", "created_at", "updated_at"]},
        ),
    ]

    def get_fieldsets(self, request, obj=None):
        if obj is not None:
            return self.fieldsets
        # Not saved yet: no dates to show (they would read "now"); the redirect URI stays.
        *rest, (title, options) = self.fieldsets
        return [*rest, (title, {**options, "fields": ["redirect_uri"]})]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["organization"] if obj is not None else fields

    @admin.display(description="domains")
    def domain_list(self, provider: IdentityProvider) -> str:
        return ", ".join(d.domain for d in provider.domains.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("domains")

    @admin.display(description="redirect URI to register at the IdP")
    def redirect_uri(self, provider: IdentityProvider) -> str:
        return settings.SITE_URL.rstrip("/") + reverse("sso:callback")

    @admin.display(description="post-logout redirect URI to register at the IdP")
    def post_logout_redirect_uri(self, provider: IdentityProvider) -> str:
        return settings.SITE_URL.rstrip("/") + reverse("accounts:login")

    @method_decorator(sensitive_post_parameters("secret"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The typed secret never reaches an error report.
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        identity_provider_save(
            actor=request.user,
            provider=obj,
            domains=form.cleaned_data["domains"],
            new_secret=form.cleaned_data["secret"],
            changed=list(form.changed_data),
        )
