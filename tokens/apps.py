from django.apps import AppConfig

from asksage_admin.lib.tables import cache_cell_signatures


class TokensConfig(AppConfig):
    name = "tokens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The task queue's readiness check and depth gauge (/readyz, /metrics); the receiver
        # that moves a banned member's allocation by the organization's policy.
        from tokens import queue_health, signals  # noqa: F401

        cache_cell_signatures()  # the user table's cells: see asksage_admin.lib.tables
