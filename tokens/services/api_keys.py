"""The gateway's API keys: admins create and revoke them; the secret is shown once.

Authenticating a key on each usage call stays with the usage API (`tokens.usage_api.keys`).
"""

import secrets

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from asksage_admin.lib.errors import DomainError
from audit.services import audit_record
from tokens.models import ApiKey, ApiKeyScope
from tokens.usage_api.keys import (
    ADMIN_ONLY_PREFIX,
    ADMIN_ONLY_PREFIX_LENGTH,
    KEY_PREFIX,
    PREFIX_LENGTH,
    api_key_hash,
)


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise DomainError(errors={"name": ["Give the key a name, such as “Gateway production”."]})
    if len(name) > 100:
        raise DomainError(errors={"name": ["Names are at most 100 characters."]})
    return name


def _clean_scopes(scopes) -> list[str]:
    """The chosen scopes in their canonical order; at least one, each a known one."""
    chosen = set(scopes or ())
    if not chosen:
        raise DomainError(errors={"scopes": ["Choose at least one scope."]})
    unknown = chosen - set(ApiKeyScope.values)
    if unknown:
        raise DomainError(errors={"scopes": [f"Unknown scope “{sorted(unknown)[0][:40]}”."]})
    return [scope for scope in ApiKeyScope.values if scope in chosen]


def _new_secret(scopes: list[str]) -> tuple[str, str]:
    """(secret, shown prefix): a key without `usage` carries the admin-only mark."""
    if ApiKeyScope.USAGE in scopes:
        raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
        return raw_key, raw_key[:PREFIX_LENGTH]
    raw_key = ADMIN_ONLY_PREFIX + secrets.token_urlsafe(32)
    return raw_key, raw_key[:ADMIN_ONLY_PREFIX_LENGTH]


@transaction.atomic
def api_key_create(
    *,
    actor: User,
    org: Organization,
    name: str,
    scopes: list[str] | None = None,
    ip: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key with its scopes (default: `usage`, the gateway's); returns it with the
    secret, which is never stored and never shown again."""
    name = _clean_name(name)
    scopes = _clean_scopes([ApiKeyScope.USAGE] if scopes is None else scopes)
    # Lock the organization row: two admins creating the same name at once get one key.
    # NO KEY UPDATE: usage inserts (foreign keys to the organization) are not blocked.
    Organization.objects.select_for_update(no_key=True).filter(pk=org.pk).first()
    if ApiKey.objects.filter(organization=org, name=name, revoked_at__isnull=True).exists():
        raise DomainError(errors={"name": [f"An active key is already named “{name}”."]})
    raw_key, prefix = _new_secret(scopes)
    key = ApiKey.objects.create(
        organization=org,
        name=name,
        prefix=prefix,
        key_hash=api_key_hash(raw_key),
        scopes=scopes,
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
        scopes=key.scopes,
    )
