"""Alerts already emailed, so each threshold fires once per month."""

from django.db import models
from django.utils import timezone

from accounts.models import Organization


class AlertSent(models.Model):
    """An alert already emailed this month, so each threshold fires once per month."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    month = models.DateField()
    key = models.CharField(max_length=60)  # "user:<id>:<kind>:<threshold>" or "pool:<kind>"
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "month", "key"], name="alert_once")
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.month:%Y-%m}"
