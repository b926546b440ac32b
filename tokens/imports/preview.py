"""What an allocation file would do, before anything is written: rows that change, rows that
are unchanged, unknown emails, values under the floor, invalid rows, and the pool after.

An email that is not a member of the admin's organization is "unknown", whether or not it
belongs to someone elsewhere: the lookup is scoped to the organization, so the answer cannot
tell. `classify` is shared with the write (`tokens.services.imports`), which runs it again on
the rows it has locked, so the pending edits are what the preview showed unless the table
moved in between.
"""

from dataclasses import dataclass, field

from accounts.models import Membership, Organization, User
from tokens.imports.parse import ImportFile, ImportRow
from tokens.models import COLUMN_LABELS, MAX_COLUMNS, PendingEdit
from tokens.selectors import allocated as allocated_totals
from tokens.selectors import pending_summary, pools

LOOKUP_CHUNK = 2000  # emails per IN (…): SQLite's parameter limit, whatever the file's size


@dataclass(frozen=True)
class Member:
    user_id: int
    name: str
    values: dict[str, int]  # column → stored max
    banned: bool = False  # a banned member's floor is 0 (`services._core.member_floor`)


@dataclass
class RowChange:
    row: ImportRow
    member: Member
    cells: dict[str, tuple[int, int]]  # column → (stored, new), changed cells only


@dataclass
class Classified:
    changes: list[RowChange] = field(default_factory=list)
    unchanged: list[ImportRow] = field(default_factory=list)
    unknown: list[ImportRow] = field(default_factory=list)
    under_floor: list[tuple[ImportRow, str]] = field(default_factory=list)  # row, why
    invalid: list[ImportRow] = field(default_factory=list)
    settled: dict[tuple[int, str], int] = field(default_factory=dict)  # cells the file sets

    def count(self, column: str) -> int:
        return sum(1 for change in self.changes if column in change.cells)


@dataclass(frozen=True)
class PoolAfter:
    column: str
    label: str
    purchased: int
    allocated: int
    file_delta: int  # what the file's rows add (negative: give back)
    pending_after: int  # all the admin's pending edits of the column once the file is in

    @property
    def available_after(self) -> int:
        return self.purchased - self.allocated - self.pending_after


@dataclass
class ImportPreview:
    file: ImportFile
    rows: Classified
    pools: list[PoolAfter]


def members_by_email(org: Organization, emails: list[str], queryset=None) -> dict[str, Member]:
    """The organization's members among `emails` (lower-case), in chunks of one query each."""
    base = queryset if queryset is not None else Membership.objects
    found: dict[str, Member] = {}
    for start in range(0, len(emails), LOOKUP_CHUNK):
        chunk = emails[start : start + LOOKUP_CHUNK]
        rows = base.filter(organization=org, user__email__in=chunk).order_by("user_id")
        rows = rows.values_list(
            "user_id", "user__email", "user__name", "user__is_banned", *MAX_COLUMNS
        )
        for user_id, email, name, banned, *values in rows:
            stored = dict(zip(MAX_COLUMNS, values, strict=True))
            found[email.lower()] = Member(user_id, name, stored, banned)
    return found


def classify(org: Organization, rows: list[ImportRow], members: dict[str, Member]) -> Classified:
    """Sort the file's rows; a row with any problem is left out whole."""
    floors = {column: org.floor(kind) for column, kind in MAX_COLUMNS.items()}
    result = Classified()
    for row in rows:
        if row.error:
            result.invalid.append(row)
            continue
        member = members.get(row.email)
        if member is None:
            result.unknown.append(row)
            continue
        given = {c: v for c, v in row.values.items() if v is not None}
        low = [
            f"{COLUMN_LABELS[c]}: at least {floors[c]:,}"
            for c, v in given.items()
            if v < floors[c] and not member.banned
        ]
        if low:
            why = "; ".join(low) + " (the organization's minimum per user)."
            result.under_floor.append((row, why))
            continue
        for column, value in given.items():
            result.settled[(member.user_id, column)] = value
        cells = {c: (member.values[c], v) for c, v in given.items() if v != member.values[c]}
        if cells:
            result.changes.append(RowChange(row, member, cells))
        else:
            result.unchanged.append(row)
    return result


def _pools_after(admin: User, org: Organization, rows: Classified) -> list[PoolAfter]:
    """Per column: the pool once the file's cells replace the admin's pending ones there."""
    _columns, pending_delta = pending_summary(admin, org)
    purchased, allocated = pools(org), allocated_totals(org)
    replaced: dict[str, int] = dict.fromkeys(MAX_COLUMNS, 0)
    file_delta: dict[str, int] = dict.fromkeys(MAX_COLUMNS, 0)
    stored = {
        (change.member.user_id, column): old
        for change in rows.changes
        for column, (old, _new) in change.cells.items()
    }
    for (user_id, column), value in rows.settled.items():
        file_delta[column] += value - stored.get((user_id, column), value)
    if rows.settled:
        edits = PendingEdit.objects.filter(admin=admin, organization=org).values_list(
            "target_id", "column", "new_value", *(f"target__membership__{c}" for c in MAX_COLUMNS)
        )
        for user_id, column, new, *stored_values in edits:
            current = dict(zip(MAX_COLUMNS, stored_values, strict=True))[column]
            if (user_id, column) in rows.settled and current is not None:
                replaced[column] += new - current
    return [
        PoolAfter(
            column=column,
            label=COLUMN_LABELS[column],
            purchased=purchased[kind],
            allocated=allocated[kind],
            file_delta=file_delta[column],
            pending_after=pending_delta.get(kind, 0) - replaced[column] + file_delta[column],
        )
        for column, kind in MAX_COLUMNS.items()
    ]


def import_preview(*, admin: User, org: Organization, file: ImportFile) -> ImportPreview:
    """The dry run the admin reviews before turning the file into pending edits."""
    emails = sorted({row.email for row in file.rows if not row.error})
    rows = classify(org, file.rows, members_by_email(org, emails))
    return ImportPreview(file=file, rows=rows, pools=_pools_after(admin, org, rows))
