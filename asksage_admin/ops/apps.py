from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Registers the deployment checks; the app has no models."""

    name = "asksage_admin.ops"
    label = "ops"

    def ready(self) -> None:
        from asksage_admin.ops import checks  # noqa: F401 - registers the checks
