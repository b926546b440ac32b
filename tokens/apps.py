from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the task queue's readiness check and depth gauge (/readyz, /metrics).
        from tokens import queue_health  # noqa: F401
