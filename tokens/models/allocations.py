"""Allocation edits: an admin's unsaved cells, and the saved batches the audit rows point to."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization
from asksage_admin.lib.amounts import MAX_TOKENS

from .kinds import COLUMN_LABELS


class PendingEdit(models.Model):
    """An admin's unsaved change to one allocation cell, kept on the server until saved.

    `old_value` is the value the admin edited from: saving refuses the cell if someone else
    changed it since.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    admin = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pending_edits"
    )
    target = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    column = models.CharField(max_length=30, choices=list(COLUMN_LABELS.items()))
    old_value = models.BigIntegerField()
    new_value = models.BigIntegerField()
    error = models.CharField(max_length=300, blank=True, help_text="Why the last save refused it.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["admin", "column", "target"], name="pending_edit_one_per_cell"
            ),
            models.CheckConstraint(
                condition=models.Q(new_value__gte=0, new_value__lte=MAX_TOKENS)
                & models.Q(old_value__gte=0, old_value__lte=MAX_TOKENS),
                name="pending_edit_values_in_range",
            ),
        ]
        indexes = [models.Index(fields=["admin", "organization", "column"])]

    def __str__(self) -> str:
        return f"{self.column} of user {self.target_id}: {self.old_value:,} → {self.new_value:,}"


class AllocationBatch(models.Model):
    """A saved set of allocation changes to one column; its audit rows carry its id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    column = models.CharField(max_length=30)
    source = models.CharField(max_length=30, default="table")  # table, undo, distribution…
    changes = models.JSONField(default=list)  # [{"user": id, "old": n, "new": n}, …]
    undoes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="undone_by"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"batch {self.id} ({self.column}, {len(self.changes)} changes)"
