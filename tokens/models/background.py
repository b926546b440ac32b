"""Background work's own rows: the email outbox and the ledger of periodic runs."""

from django.db import models
from django.utils import timezone

from accounts.models import Organization


class EmailDelivery(models.Model):
    """One email, rendered when the write that caused it ran, sent by the `send_email` task.

    The row is written in the write's own transaction (a rolled-back write leaves none) and is
    the task's idempotency key: the task sends only a PENDING row, under its row lock, so a
    task run twice, or by two workers, sends once. Failed sends are retried with backoff
    (`attempts`, `next_attempt_at`); after the last one the row stays FAILED with its
    `last_error`, for sales to see in /staff/.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=40)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "email deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.kind} to {', '.join(self.to)} ({self.status})"


class PeriodicRun(models.Model):
    """A periodic job's run for one period ("2026-12" for a monthly job, "2026-12-01" for a
    nightly one): the unique (job, period) pair makes it once, however many schedulers
    enqueued it and however many workers picked it up."""

    class Status(models.TextChoices):
        STARTED = "started", "Started"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    job = models.CharField(max_length=60)
    period = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STARTED)
    summary = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "period"], name="periodic_run_once")]

    def __str__(self) -> str:
        return f"{self.job} {self.period} ({self.status})"
