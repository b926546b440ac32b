"""How each user signs in and their second factor, as SQL annotations for the user table
(shown, filtered and sorted in the database, so a page costs the same queries at any size).

Sign-in is "sso" for a user bound to an identity provider (an `SsoIdentity`, OpenID Connect)
or a member of an organization whose single sign-on is required, else a password ("none"
while a user created by sales has not set one). A new method adds a `When(...)` to
`sign_in_method()` and an entry to SIGN_IN_LABELS; the table, its filter and the exports
follow. Passkeys joined `second_factor()` that way.
"""

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db.models import Case, CharField, Exists, OuterRef, Value, When
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import IdentityProvider, SsoIdentity

SIGN_IN_LABELS = {"sso": "SSO", "password": "Password", "none": "Not set"}
SECOND_FACTOR_LABELS = {
    "passkey_totp": "Passkey + TOTP",
    "passkey": "Passkey",
    "totp": "TOTP",
    "none": "None",
}


def sign_in_method() -> Case:
    """ "sso" (bound to an identity provider, or in an organization that requires it),
    "password" or "none", per User row."""
    sso = Exists(SsoIdentity.objects.filter(user=OuterRef("pk"))) | Exists(
        IdentityProvider.objects.filter(
            enabled=True, sso_required=True, organization__memberships__user=OuterRef("pk")
        )
    )
    return Case(
        When(sso, then=Value("sso")),
        When(password__startswith=UNUSABLE_PASSWORD_PREFIX, then=Value("none")),
        default=Value("password"),
        output_field=CharField(),
    )


def second_factor() -> Case:
    """ "passkey", "totp", both ("passkey_totp") or "none", per User row."""
    totp = Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True))
    passkey = Exists(WebAuthnCredential.objects.filter(user=OuterRef("pk"), confirmed=True))
    return Case(
        When(passkey & totp, then=Value("passkey_totp")),
        When(passkey, then=Value("passkey")),
        When(totp, then=Value("totp")),
        default=Value("none"),
        output_field=CharField(),
    )
