"""API keys on each usage call: the keyed hash of a secret, its shape, and authentication.

Creating and revoking keys (audited) is `tokens.services.api_keys`; listing them for the panel
is `tokens.selectors.api_keys_for`.
"""

import datetime as dt
import functools
import hashlib
import hmac
import json

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import Organization
from tokens.models import ApiKey, ApiKeyScope
from tokens.usage_api.errors import invalid_key, key_revoked, organization_inactive, scope_missing
from tokens.usage_api.tables import table

KEY_PREFIX = "ask_"
PREFIX_LENGTH = 12  # "ask_" and 8 characters of the secret: enough to tell keys apart
# A key created without the `usage` scope says so in its secret: "ask_adm." and 8 characters
# are its shown prefix. token_urlsafe never makes a ".", so no gateway key starts this way,
# and the mark cannot be added or removed without changing the hash (an unknown key). The
# usage API refuses these keys before its PostgreSQL statement, which never reads scopes.
ADMIN_ONLY_PREFIX = "ask_adm."
ADMIN_ONLY_PREFIX_LENGTH = 16
# Writing last_used_at on every call would add a write to each request; a minute is precise
# enough for an admin deciding whether a key is still in use.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


def api_key_hash(raw_key: str) -> str:
    """HMAC-SHA256 of the key with a server secret.

    A slow password hash (PBKDF2, Argon2) protects low-entropy secrets that people choose.
    These keys are 256 random bits: nobody can enumerate them, however fast the hash, so a
    fast hash costs nothing in safety and keeps authentication to one indexed lookup per
    request. Keying it with the server secret means a leaked database alone does not even
    let an attacker test guesses offline.
    """
    mac = _keyed_mac().copy()  # the keyed state, computed once: each call only hashes the key
    mac.update(raw_key.encode())
    return mac.hexdigest()


@functools.cache
def _keyed_mac() -> "hmac.HMAC":
    secret = getattr(settings, "API_KEY_HASH_SECRET", settings.SECRET_KEY)
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


@receiver(setting_changed)
def _forget_keyed_mac(setting: str, **kwargs) -> None:
    if setting in {"API_KEY_HASH_SECRET", "SECRET_KEY"}:
        _keyed_mac.cache_clear()


def api_key_well_formed(raw_key: str) -> bool:
    return raw_key.startswith(KEY_PREFIX) and len(raw_key) <= 100


def api_key_lacks_usage(raw_key: str) -> bool:
    """Whether the key was created without the `usage` scope (its secret says so; no query)."""
    return raw_key.startswith(ADMIN_ONLY_PREFIX)


def bearer_lacks_usage(authorization: str) -> bool:
    """`api_key_lacks_usage` for an Authorization header, as the fast path receives it."""
    return api_key_lacks_usage(authorization.partition(" ")[2].strip())


def api_key_authenticate(raw_key: str, scope: str = ApiKeyScope.USAGE) -> ApiKey:
    """The active key with this secret and `scope`, with its organization; else UsageError
    (401 unknown or revoked, 403 organization inactive or scope missing).

    Hand-written SQL: this runs on every API call, and building the ORM query would cost more
    than the query itself.
    """
    if not api_key_well_formed(raw_key):
        raise invalid_key()
    presented = api_key_hash(raw_key)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k.id, k.name, k.prefix, k.key_hash, k.revoked_at IS NOT NULL, "
            "k.last_used_at IS NULL OR k.last_used_at < %s, k.scopes, "
            "o.id, o.name, o.slug, o.status, o.models_restricted "
            f"FROM {table(ApiKey)} k JOIN {table(Organization)} o ON o.id = k.organization_id "
            "WHERE k.key_hash = %s",
            [connection.ops.adapt_datetimefield_value(now - LAST_USED_RESOLUTION), presented],
        )
        row = cursor.fetchone()
    # The lookup is by hash, so its timing says nothing about the secret; compare anyway.
    if row is None or not hmac.compare_digest(row[3], presented):
        raise invalid_key()
    key_id, name, prefix, key_hash, revoked, stale, scopes, *org_values = row
    if revoked:
        raise key_revoked()
    # Instances with only these fields loaded; anything else is fetched if ever read.
    org = Organization.from_db(
        "default", ["id", "name", "slug", "status", "models_restricted"], org_values
    )
    if not org.is_active:
        raise organization_inactive(org.status)
    key = ApiKey.from_db(
        "default",
        ["id", "organization_id", "name", "prefix", "key_hash", "scopes"],
        [key_id, org.pk, name, prefix, key_hash, _scopes(scopes)],
    )
    key.organization = org
    if not key.has_scope(scope):
        raise scope_missing(scope)
    if stale:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def _scopes(value) -> list[str]:
    """The scopes column as read by a raw cursor: JSON text (SQLite, Django's psycopg loader)
    or already a list."""
    return json.loads(value) if isinstance(value, str | bytes) else list(value or ())
