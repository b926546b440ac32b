"""Client secrets of identity providers: encrypted at rest, or a reference to the environment.

Encrypted with Fernet under a key derived from SECRET_KEY; SECRET_KEY_FALLBACKS still decrypt
(MultiFernet), so rotating SECRET_KEY keeps every stored secret readable: move the old key to
the fallbacks, and saving a provider again (or `rotate`) re-encrypts under the new one.
A value "env:NAME" is not a secret but a reference: the secret is read from the environment
variable NAME at sign-in, so it never enters the database.
"""

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

ENV_PREFIX = "env:"
# Only variables named for this purpose: staff choose the name, and the value is sent to the
# IdP they configure, so "env:SECRET_KEY" must never be readable this way.
ENV_NAME_PREFIX = "OIDC_"
_SALT = b"asksage-admin.sso.client-secret"


class SecretUnavailable(Exception):
    """The stored secret cannot be read (key rotated away, variable unset)."""


def _fernet(key: str) -> Fernet:
    digest = hashlib.sha256(_SALT + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(k) for k in keys])


def env_name_errors(name: str) -> list[str]:
    """A reference names OIDC_<letters, digits, underscores>, nothing else."""
    if name.startswith(ENV_NAME_PREFIX) and name[len(ENV_NAME_PREFIX) :].replace("_", "").isalnum():
        return []
    return [
        f"After “env:”, the name of an environment variable that starts with {ENV_NAME_PREFIX} "
        f"(letters, digits and _), e.g. env:{ENV_NAME_PREFIX}ACME_SECRET: no other variable "
        "of the server may be sent to an identity provider."
    ]


def is_reference(stored: str) -> bool:
    return stored.startswith(ENV_PREFIX)


def secret_store(raw: str) -> str:
    """What to store for what staff typed: an env reference as is, anything else encrypted."""
    raw = raw.strip()
    if not raw or is_reference(raw):
        return raw
    return _keys().encrypt(raw.encode()).decode()


def secret_read(stored: str) -> str:
    """The secret itself, at sign-in."""
    if not stored:
        return ""
    if is_reference(stored):
        name = stored[len(ENV_PREFIX) :]
        if env_name_errors(name):
            raise SecretUnavailable(f"{name} is not a variable that may hold a client secret.")
        value = os.environ.get(name)
        if not value:
            raise SecretUnavailable(f"The environment variable {name} is not set.")
        return value
    try:
        return _keys().decrypt(stored.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnavailable("The stored client secret cannot be decrypted.") from exc


def secret_rotate(stored: str) -> str:
    """Re-encrypted under the current SECRET_KEY if it was under a fallback; unchanged if it
    already is (or is a reference)."""
    if not stored or is_reference(stored):
        return stored
    try:
        _fernet(settings.SECRET_KEY).decrypt(stored.encode())
    except InvalidToken:
        return _keys().rotate(stored.encode()).decode()
    return stored
