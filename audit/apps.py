from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit trail: the append-only, hash-chained log every app writes to."""

    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"
