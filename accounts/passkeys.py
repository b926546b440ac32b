"""Passkeys and security keys (WebAuthn) as a second factor beside TOTP.

django-otp-webauthn runs the ceremonies (its JSON endpoints and its own JS, served from our
static files); a credential is a django-otp device, so `django_otp.login` marks the session
verified as a TOTP code does. These services name, audit, list and remove them.
"""

from django.db import transaction
from django.db.models import QuerySet
from django_otp import login as otp_login
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import Membership, User
from asksage_admin.lib.errors import DomainError
from audit.services import audit_record

NAME_MAX_LENGTH = 64
DEFAULT_NAME = "Passkey"


def passkeys_of(user: User) -> QuerySet[WebAuthnCredential]:
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")


def has_passkey(user: User) -> bool:
    return passkeys_of(user).exists()


def clean_passkey_name(name: str | None) -> str:
    """The name the person gives a passkey ("Work laptop"), so they can tell them apart."""
    name = " ".join((name or "").split())
    if not name:
        raise DomainError(errors={"name": ["Give the passkey a name, e.g. “Work laptop”."]})
    if len(name) > NAME_MAX_LENGTH:
        raise DomainError(errors={"name": [f"Keep the name to {NAME_MAX_LENGTH} characters."]})
    return name


def _org(user: User):
    membership = Membership.objects.select_related("organization").filter(user=user).first()
    return membership.organization if membership else None


@transaction.atomic
def passkey_registered(*, user: User, passkey_id: int, name: str) -> WebAuthnCredential:
    """Name the credential the library just stored and audit it (called inside its request's
    transaction, so a failed audit leaves no unaudited passkey)."""
    passkey = WebAuthnCredential.objects.select_for_update().get(user=user, pk=passkey_id)
    passkey.name = name
    passkey.save(update_fields=["name"])
    audit_record(
        action="mfa.passkey_added",
        organization=_org(user),
        actor=user,
        target_user=user,
        passkey=name,
    )
    return passkey


def passkey_verified(*, request, user: User, passkey: WebAuthnCredential, ip: str | None) -> None:
    """The session passed the second factor with a passkey."""
    otp_login(request, passkey)
    audit_record(
        action="mfa.verified",
        organization=_org(user),
        actor=user,
        target_user=user,
        ip=ip,
        method="passkey",
    )


@transaction.atomic
def passkey_remove(*, user: User, passkey_id: int) -> str:
    """Remove one of the user's own passkeys; another user's id is "not found"."""
    passkey = (
        WebAuthnCredential.objects.select_for_update().filter(user=user, pk=passkey_id).first()
    )
    if passkey is None:
        raise DomainError(errors={"__all__": ["That passkey was not found."]})
    name = passkey.name
    passkey.delete()
    audit_record(
        action="mfa.passkey_removed",
        organization=_org(user),
        actor=user,
        target_user=user,
        passkey=name,
    )
    return name
