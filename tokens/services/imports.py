"""Turning an allocation file into the admin's pending edits, in one transaction.

The file's rows become pending edits, one per changed cell, in the usual per-column batches:
Save Changes then applies them with every check a typed cell gets (floors, the pool, cells
changed by someone else since), one audit row per cell, and an Undo. A row the file leaves
unchanged clears the admin's pending edit of that cell, since the file says what it should be.
"""

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Membership, Organization, User
from asksage_admin.lib.audit_actions import AuditAction
from asksage_admin.lib.errors import DomainError
from audit.services import audit_record
from tokens.imports.parse import ImportFile
from tokens.imports.preview import Classified, classify, members_by_email
from tokens.models import MAX_COLUMNS, PendingEdit, TokenKind
from tokens.services.allocations import upsert_pending_edits


@dataclass(frozen=True)
class ImportResult:
    pending: dict[str, int]  # column → pending edits written
    cleared: int  # pending edits removed because the file keeps the stored value
    skipped: int  # rows left out: invalid, unknown, under the floor

    @property
    def total(self) -> int:
        return sum(self.pending.values())


def _locked_members(org: Organization, file: ImportFile):
    """The file's members, their rows locked (as a cell's pending edit locks its row) so the
    values read here are the ones the edits start from."""
    emails = sorted({row.email for row in file.rows if not row.error})
    locked = Membership.objects.select_for_update(no_key=True, of=("self",))
    return members_by_email(org, emails, queryset=locked)


def _clear_settled(admin: User, org: Organization, rows: Classified) -> int:
    """Delete the admin's pending edits on cells the file sets to their stored value."""
    keep = {(change.member.user_id, column) for change in rows.changes for column in change.cells}
    stale = [key for key in rows.settled if key not in keep]
    if not stale:
        return 0
    edits = PendingEdit.objects.filter(
        admin=admin, organization=org, target_id__in={uid for uid, _ in stale}
    ).values_list("pk", "target_id", "column")
    wanted = set(stale)
    ids = [pk for pk, uid, column in edits if (uid, column) in wanted]
    PendingEdit.objects.filter(pk__in=ids).delete()
    return len(ids)


@transaction.atomic
def allocation_import_apply(
    *,
    admin: User,
    org: Organization,
    file: ImportFile,
    filename: str,
    digest: str,
    ip: str | None = None,
) -> ImportResult:
    """Write the file's valid rows as the admin's pending edits, and one audit row saying so.

    Refuses (DomainError, nothing written) when no row would change anything.
    """
    rows = classify(org, file.rows, _locked_members(org, file))
    if not rows.changes and not rows.unchanged:
        raise DomainError("No row of this file can be applied: see the preview for why.")
    cleared = _clear_settled(admin, org, rows)
    pending: dict[str, int] = {}
    for column in MAX_COLUMNS:
        cells = [
            (change.member.user_id, *change.cells[column])
            for change in rows.changes
            if column in change.cells
        ]
        if cells:
            pending[column] = upsert_pending_edits(
                admin=admin, org=org, column=column, rows=cells, keep_old=True
            )
    skipped = len(rows.invalid) + len(rows.unknown) + len(rows.under_floor)
    audit_record(
        action=AuditAction.ALLOCATION_IMPORTED,
        organization=org,
        actor=admin,
        new=filename[:200],
        ip=ip,
        rows=len(file.rows),
        **{
            f"pending_{TokenKind(kind).label.lower()}": pending.get(c, 0)
            for c, kind in MAX_COLUMNS.items()
        },
        cleared=cleared,
        unchanged=len(rows.unchanged),
        skipped=skipped,
        sha256=digest,
    )
    return ImportResult(pending=pending, cleared=cleared, skipped=skipped)
