from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The task queue's readiness check and depth gauge (/readyz, /metrics); the receiver
        # that moves a banned member's allocation by the organization's policy.
        from tokens import queue_health, signals  # noqa: F401
