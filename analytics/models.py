"""The analytics app's own table: snapshots of the statistics page's slowest block."""

from django.db import models

from accounts.models import Organization


class ForecastSnapshot(models.Model):
    """The members at risk of reaching their max this month, as computed at `computed_at`
    for the UTC day `day` (`analytics.snapshots`). One per organization, replaced whole.

    The list sums each candidate's last 7 days per user: 1–2 s at 10 million events, so a
    periodic task computes it and the page reads it ("as of"). `rows` are the selector's plain
    rows (user id, name, email, kind, used, max, the window's tokens). A cache of what the
    rollups say, not a user's write: replacing one writes no audit row.
    """

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    day = models.DateField()
    computed_at = models.DateTimeField()
    rows = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"forecast of {self.organization_id} as of {self.computed_at:%Y-%m-%d %H:%M}"
