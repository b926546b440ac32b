"""Keys for the usage API and the admin API, each with the scopes chosen at its creation."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization


class ApiKeyScope(models.TextChoices):
    """What a key may do. Chosen when the key is created and never changed afterwards: a key
    that should do more is a new key (its secret then says what it may do, see
    `tokens.usage_api.keys.ADMIN_ONLY_PREFIX`)."""

    USAGE = "usage", "Report usage and read balances (the gateway)"
    ADMIN_READ = "admin:read", "Read users, requests and the activity log; export"
    ADMIN_WRITE = "admin:write", "Change limits, approve and deny requests"
    SCIM = "scim", "Provision users and roles from an identity provider (SCIM 2.0)"


def default_scopes() -> list[str]:
    """A key made before scopes existed, or without a choice, is a gateway key."""
    return [ApiKeyScope.USAGE.value]


class ApiKey(models.Model):
    """An organization's API key. Only a hash of the secret is stored."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="Shown to recognise the key.")
    key_hash = models.CharField(max_length=128, unique=True)
    scopes = models.JSONField(default=default_scopes)  # ApiKeyScope values
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or ())

    @property
    def scope_labels(self) -> list[str]:
        return [scope for scope in ApiKeyScope.values if self.has_scope(scope)]
