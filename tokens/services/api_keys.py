"""The gateway's API keys: admins create and revoke them; the secret is shown once.

Authenticating a key on each usage call stays with the usage API (`tokens.usage_api.keys`).
"""

import secrets

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from asksage_admin.lib.errors import DomainError
from audit.services import audit_record
from tokens.models import ApiKey
from tokens.usage_api.keys import KEY_PREFIX, PREFIX_LENGTH, api_key_hash


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise DomainError(errors={"name": ["Give the key a name, such as “Gateway production”."]})
    if len(name) > 100:
        raise DomainError(errors={"name": ["Names are at most 100 characters."]})
    return name


@transaction.atomic
def api_key_create(
    *, actor: User, org: Organization, name: str, ip: str | None = None
) -> tuple[ApiKey, str]:
    """Create a key; returns it with the secret, which is never stored and never shown again."""
    name = _clean_name(name)
    # Lock the organization row: two admins creating the same name at once get one key.
    # NO KEY UPDATE: usage inserts (foreign keys to the organization) are not blocked.
    Organization.objects.select_for_update(no_key=True).filter(pk=org.pk).first()
    if ApiKey.objects.filter(organization=org, name=name, revoked_at__isnull=True).exists():
        raise DomainError(errors={"name": [f"An active key is already named “{name}”."]})
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        organization=org,
        name=name,
        prefix=raw_key[:PREFIX_LENGTH],
        key_hash=api_key_hash(raw_key),
        created_by=actor,
    )
    _audit(action="api_key.created", key=key, actor=actor, ip=ip)
    return key, raw_key


@transaction.atomic
def api_key_revoke(*, actor: User, org: Organization, key_id: int, ip: str | None = None) -> ApiKey:
    """Revoke one of the organization's keys; another organization's ids raise DoesNotExist."""
    key = ApiKey.objects.select_for_update().get(organization=org, pk=key_id)
    if key.revoked_at is not None:
        raise DomainError(f"The key “{key.name}” is already revoked.")
    key.revoked_at = timezone.now()
    key.revoked_by = actor
    key.save(update_fields=["revoked_at", "revoked_by"])
    _audit(action="api_key.revoked", key=key, actor=actor, ip=ip)
    return key


def _audit(*, action: str, key: ApiKey, actor: User, ip: str | None) -> None:
    """The key's audit row: its id, name and prefix, never the secret."""
    audit_record(
        action=action,
        organization=key.organization,
        actor=actor,
        ip=ip,
        key_id=key.pk,
        name=key.name,
        prefix=key.prefix,
    )
