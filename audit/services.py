"""Writing audit rows. Callers run inside their own transaction so the row lands with the change.

Every row is sealed onto its organization's hash chain as it is inserted (`audit.chain`);
there is no update or delete path. Callers pass the organization and users; this module
imports no app above it.
"""

from typing import Any

from django.db import transaction

from asksage_admin.lib.audit_actions import AuditAction, check_action
from audit.models import AuditLog

LOGIN = AuditAction.LOGIN
LOGIN_FAILED = AuditAction.LOGIN_FAILED
EXPORT = AuditAction.EXPORT


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
        action=check_action(action),
        target_user=target_user,
        column=column,
        old_value="" if old is None else str(old),
        new_value="" if new is None else str(new),
        batch_id=batch_id,
        ip=ip,
        details=details,
    )


def audit_bulk(rows: list[AuditLog]) -> None:
    """Many rows at once (a batch save): sealed in Python, then inserted in as few INSERTs as
    the database allows (one up to ~2,000 rows on SQLite, ~4,000 on PostgreSQL)."""
    for action in {row.action for row in rows}:
        check_action(action)
    AuditLog.objects.bulk_create(rows)


@transaction.atomic
def audit_login(*, user, organization, ip: str | None, **details: Any) -> AuditLog:
    """`organization`: the user's (None: on the platform's chain)."""
    return audit_record(
        action=LOGIN, organization=organization, actor=user, target_user=user, ip=ip, **details
    )


@transaction.atomic
def audit_login_failed(
    *, email: str, user, organization, ip: str | None, locked_after: int | None = None
) -> AuditLog:
    """A refused login against `user` (None: no account has that email; recorded without an
    organization, on the global chain). `locked_after`: this failure locked the account,
    the count of failures that did."""
    details: dict[str, Any] = {"email": (email or "").strip()[:254]}
    if locked_after is not None:
        details.update(locked_out=True, failures=locked_after)
    return audit_record(
        action=LOGIN_FAILED,
        organization=organization,
        target_user=user,
        ip=ip,
        **details,
    )


@transaction.atomic
def audit_export(*, org, actor, what: str, ip: str | None, **details: Any) -> AuditLog:
    return audit_record(action=EXPORT, organization=org, actor=actor, new=what, ip=ip, **details)
