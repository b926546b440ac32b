"""Writing audit rows. Callers run inside their own transaction so the row lands with the change."""

from typing import Any

from analytics.models import AuditLog


def audit_record(
    *,
    action: str,
    organization=None,
    actor=None,
    actor_label: str = "",
    target_user=None,
    column: str = "",
    old: Any = "",
    new: Any = "",
    batch_id=None,
    ip: str | None = None,
    **details: Any,
) -> AuditLog:
    return AuditLog.objects.create(
        organization=organization,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=actor_label,
        action=action,
        target_user=target_user,
        column=column,
        old_value="" if old is None else str(old),
        new_value="" if new is None else str(new),
        batch_id=batch_id,
        ip=ip,
        details=details,
    )


def audit_bulk(rows: list[AuditLog]) -> None:
    """Many rows of one action at once (a batch save): one INSERT whatever the size."""
    AuditLog.objects.bulk_create(rows, batch_size=500)
