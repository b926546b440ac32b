"""The append-only audit log of every write, chained per organization so tampering shows.

The audit trail sits at the bottom with the identity models: every app writes to it, so it
imports none of them (its foreign keys name `accounts` models by string).
"""

from django.conf import settings
from django.db import models, router
from django.utils import timezone

from asksage_admin.lib.audit_actions import label_of
from audit import chain
from audit.chain import GENESIS


class AuditChain(models.Model):
    """The head of one hash chain: the organization's (`org:<id>`) or the platform's (`global`).

    Writers lock this row (`select_for_update`) while they append, so two concurrent writers
    of one organization never both link to the same previous row; it also remembers the last
    row, so removing rows from the end of the chain is detected too.
    """

    key = models.CharField(max_length=40, primary_key=True)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS)

    class Meta:
        # The table it had in `analytics`, where it was born: moving the model moved no data.
        db_table = "analytics_auditchain"

    def __str__(self) -> str:
        return f"{self.key} #{self.last_seq}"


class AppendOnlyError(RuntimeError):
    """Audit rows are never updated or deleted."""


class AuditLogQuerySet(models.QuerySet):
    """Inserts go through the chain; updates and deletes are refused."""

    def bulk_create(self, objs, batch_size=None, **kwargs):
        if kwargs.get("ignore_conflicts") or kwargs.get("update_conflicts"):
            raise AppendOnlyError("Audit rows are only ever inserted.")
        objs = list(objs)
        if not objs:
            return objs
        with chain.appending(objs, AuditChain, using=self.db):
            return super().bulk_create(objs, batch_size=batch_size)

    def update(self, **kwargs):
        raise AppendOnlyError("Audit rows cannot be changed.")

    def delete(self):
        raise AppendOnlyError("Audit rows cannot be deleted.")

    update.queryset_only = True
    delete.queryset_only = True


class AuditLog(models.Model):
    """One action: who did what to whom, old → new, when and from where.

    `actor` is empty for the platform's own actions (policies); `actor_label` then names them.
    `seq`, `prev_hash` and `hash` chain the rows of one organization (see `audit.chain`).
    """

    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=50)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    column = models.CharField(max_length=30, blank=True)
    old_value = models.CharField(max_length=100, blank=True)
    new_value = models.CharField(max_length=100, blank=True)
    batch_id = models.UUIDField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    chain = models.CharField(max_length=40, editable=False, default="")
    seq = models.BigIntegerField(editable=False, default=0)
    prev_hash = models.CharField(max_length=64, editable=False, default="")
    hash = models.CharField(max_length=64, editable=False, default="")

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        # The table it had in `analytics`, where it was born: moving the model moved no data.
        db_table = "analytics_auditlog"
        indexes = [
            models.Index(fields=["organization", "created_at"]),
            models.Index(fields=["organization", "action", "created_at"]),
            models.Index(fields=["target_user", "created_at"]),
            models.Index(fields=["batch_id"]),
        ]
        constraints = [
            # A second writer linking to the same previous row fails instead of forking.
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_unique"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        who = self.actor_label or (self.actor and self.actor.email) or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M} {who} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit rows cannot be changed.")
        kwargs["force_insert"] = True
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with chain.appending([self], AuditChain, using=using):
            super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit rows cannot be deleted.")

    @property
    def actor_name(self) -> str:
        if self.actor_label:
            return self.actor_label
        return self.actor.get_full_name() if self.actor_id else "system"

    @property
    def action_label(self) -> str:
        return label_of(self.action)


class AuditCheckpoint(models.Model):
    """How far one chain is known to be intact, so the Activity badge re-checks only what is new.

    `seq`/`hash` name the last row verified (0/GENESIS: none yet); the badge verifies the rows
    after it and moves it forward, never back (a conditional UPDATE, so two viewers at once
    cannot move it backwards or pair a seq with another row's hash). `manage.py verify_audit`
    walks the whole chain, stays the authority, and records its run in `full_at` and
    `full_problem` (empty: intact); a break it found is shown by the badge until a later full
    run finds the chain intact.

    Checkpoints are system bookkeeping about the audit trail, not a user's write: changing
    one writes no audit row (it would append to the very chain being checked on every view).
    """

    INCREMENTAL = "incremental"
    FULL = "full"
    KINDS = [(INCREMENTAL, "incremental"), (FULL, "full")]

    key = models.CharField(max_length=40, primary_key=True)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS)
    verified_at = models.DateTimeField(null=True, blank=True)
    kind = models.CharField(max_length=12, choices=KINDS, default=INCREMENTAL)
    full_at = models.DateTimeField(null=True, blank=True)
    full_problem = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.key} verified up to #{self.seq}"
