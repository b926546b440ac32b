"""Deployment checks (`manage.py check --deploy`): what production needs from the environment."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def site_url_is_https(app_configs, **kwargs) -> list[Error]:
    """Emails link to SITE_URL: without it they say "See your limits at /"."""
    if settings.SITE_URL.startswith("https://"):
        return []
    return [
        Error(
            "SITE_URL is not set to the console's https address.",
            hint="Set SITE_URL=https://admin.example.gov: links in emails are built from it.",
            id="ops.E001",
        )
    ]
