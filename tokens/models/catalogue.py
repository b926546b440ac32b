"""The platform's model catalogue (kept by sales) and the models each organization enables.

`PlatformModel` is the catalogue: one row per model, named as the gateway reports it.
`ModelGrant` says who in an organization may use a model, read only while the organization
restricts its models (`Organization.models_restricted`): the usage API refuses a model with
no grant matching the user (`model_not_allowed`). A grant's `audience` is the one column the
usage statement compares, so one index lookup settles a report:

    ""                          everyone in the organization
    "admin", "auditor", "member" the members with that role
    "<user id>"                  that user (digits only: never a role's name)
"""

from django.db import models
from django.utils import timezone

from accounts.models import Organization

from .kinds import TokenKind

EVERYONE = ""


class PlatformModel(models.Model):
    """A model the platform offers. Its name is how the gateway reports it, so it never
    changes once created (grants refer to it by name); retire a model by deactivating it."""

    name = models.CharField(
        max_length=100, unique=True, help_text="Exactly as the gateway reports it, e.g. gpt-4o."
    )
    display_name = models.CharField(max_length=100, help_text="What people read, e.g. GPT-4o.")
    kind = models.CharField(max_length=10, choices=TokenKind, default=TokenKind.INFERENCE)
    active = models.BooleanField(
        default=True,
        help_text="Offered to organizations. Deactivating withdraws it from every "
        "organization that enabled it by name.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "display_name"]
        verbose_name = "model"
        verbose_name_plural = "models (catalogue)"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["inference", "embedding"]),
                name="platform_model_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.name})"


class ModelGrant(models.Model):
    """Who in an organization may use a model (see the module's audiences)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # The column holds the model's name (to_field): the usage statement compares it with the
    # reported name, no join to the catalogue.
    model = models.ForeignKey(
        PlatformModel,
        to_field="name",
        db_column="model",
        on_delete=models.PROTECT,
        related_name="grants",
        db_index=False,
    )
    audience = models.CharField(max_length=20, blank=True)

    class Meta:
        constraints = [
            # Also the usage statement's index: organization and model, then the audiences.
            models.UniqueConstraint(
                fields=["organization", "model", "audience"], name="model_grant_unique"
            ),
        ]
        # No index on the model alone: the statement's lookup must stay on the unique one
        # (a model's grants across organizations could look as cheap and be far more rows).

    def __str__(self) -> str:
        return f"{self.model_id} for {self.audience or 'everyone'}"
