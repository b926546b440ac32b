"""The analytics app's own tables: caches of what the rollups say, for the statistics page."""

from django.conf import settings
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


class CumulativeUsage(models.Model):
    """A user's running total of one kind in one organization, through a closed UTC month:
    the sum of their MonthlyUsage there up to and including `month` (`analytics.cumulative`).

    Top users over whole months m1…m2 are then cum(m2) − cum(m1 − 1): two rows per user and
    kind instead of one per month (a year read 367,000 MonthlyUsage rows at 20,000 users).
    Carried forward: every closed month holds a row for each user with any usage through it,
    so a missing row means zero. A cache of MonthlyUsage, not a user's write: no audit row.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # No constraint and no index: a user with rows here has MonthlyUsage rows, which
    # protect them from deletion, and an index on the user would cost every closing.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    kind = models.CharField(max_length=10)
    month = models.DateField()
    total = models.BigIntegerField()

    class Meta:
        constraints = [
            # Organization and month first: the page reads one month's rows of one
            # organization (the closing writes them in month order, so they share pages).
            models.UniqueConstraint(
                fields=["organization", "month", "user", "kind"], name="cumulative_usage_one_row"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} through {self.month:%Y-%m}: {self.total:,}"


class ClosedUsageMonth(models.Model):
    """A month whose CumulativeUsage rows are written, with the organization's MonthlyUsage
    total of each kind that the closing saw: a later write into that month (a backdated
    report, a bulk load) makes them differ, and the next closing rebuilds from there."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    month = models.DateField()
    kind = models.CharField(max_length=10)
    used = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "month", "kind"], name="closed_usage_month_one_row"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.kind} {self.month:%Y-%m} closed: {self.used:,}"
