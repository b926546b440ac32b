"""An allocation file's rows: its header mapped to columns, each row checked on its own.

No database here: a row is valid when its email looks like one and its amounts parse as the
table's cells do (`250k`, `1.5M`, …); whether the email is a member and the amounts meet the
floor is the preview's business. A cell that starts like a spreadsheet formula (`=`, `@`, or
`+`/`-` before something other than a number) is refused as such, never evaluated.
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from asksage_admin.lib.amounts import AmountError, parse_tokens
from asksage_admin.lib.sheets import Sheet, SheetError
from tokens.models import COLUMN_LABELS, MAX_COLUMNS

EMAIL = "email"
TEMPLATE_HEADER = [EMAIL, *MAX_COLUMNS]
MAX_EMAIL_CHARS = 254
QUOTE_CHARS = 40
_HEADERS = {
    EMAIL: {"email", "e_mail", "email_address", "user_email", "user"},
    "max_inference_tokens": {"max_inference_tokens", "max_inference", "inference", "max_tokens"},
    "max_embedding_tokens": {
        "max_embedding_tokens",
        "max_embedding",
        "embedding",
        "max_train_tokens",
    },
}
_SIGNED_NUMBER = re.compile(r"^[+-][0-9][0-9.,\s]*[kKmM]?$")


@dataclass
class ImportRow:
    number: int  # the row in the file, the header being row 1 (blank rows skipped)
    email: str
    values: dict[str, int | None] = field(default_factory=dict)  # column → amount, None: keep
    error: str = ""


@dataclass
class ImportFile:
    rows: list[ImportRow]
    columns: list[str]  # the Max columns the file has
    ignored: list[str]  # header cells that are none of ours
    kind: str = "CSV"
    encoding: str = ""
    separator: str = ""


def quoted(text: str) -> str:
    return f"“{text[:QUOTE_CHARS]}…”" if len(text) > QUOTE_CHARS else f"“{text}”"


def _normal(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lstrip("\ufeff").strip("\"'").lower())


def _header(cells: list[str]) -> tuple[dict[str, int], list[str]]:
    """Column → position, and the header cells ignored. Refuses a file without email and a
    Max column, in words naming what the template has."""
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, cell in enumerate(cells):
        name = _normal(cell)
        column = next((c for c, names in _HEADERS.items() if name in names), None)
        if column and column not in positions:
            positions[column] = index
        elif cell:
            ignored.append(cell[:QUOTE_CHARS])
    if EMAIL not in positions or not set(positions) & set(MAX_COLUMNS):
        expected = ", ".join(TEMPLATE_HEADER)
        raise SheetError(
            f"The first row must name the columns: {expected} (either Max column may be left "
            "out). Download the template to start from."
        )
    return positions, ignored


def is_formula(text: str) -> bool:
    if text.startswith(("=", "@")):
        return True
    return text.startswith(("+", "-")) and not _SIGNED_NUMBER.match(text)


def _email(text: str) -> tuple[str, str]:
    """(the email lower-cased, why it is refused or "")."""
    if is_formula(text):
        return "", f"{quoted(text)} is a spreadsheet formula, not an email."
    if not text:
        return "", "The email is missing."
    if len(text) > MAX_EMAIL_CHARS:
        return "", f"The email is too long ({len(text):,} characters)."
    try:
        validate_email(text)
    except ValidationError:
        return "", f"{quoted(text)} is not an email address."
    return text.lower(), ""


def _amount(text: str, column: str) -> tuple[int | None, str]:
    if not text:
        return None, ""
    label = COLUMN_LABELS[column]
    if is_formula(text):
        return None, f"{label}: {quoted(text)} is a spreadsheet formula, not an amount."
    try:
        return parse_tokens(text), ""
    except AmountError as exc:
        return None, f"{label}: {exc}"


def _row(number: int, cells: list[str], positions: dict[str, int]) -> ImportRow:
    def cell(column: str) -> str:
        index = positions.get(column)
        return cells[index] if index is not None and index < len(cells) else ""

    email, email_error = _email(cell(EMAIL))
    row = ImportRow(number=number, email=email or cell(EMAIL)[:QUOTE_CHARS])
    errors = [email_error] if email_error else []
    for column in MAX_COLUMNS:
        if column in positions:
            value, error = _amount(cell(column), column)
            row.values[column] = value
            errors += [error] if error else []
    if not errors and all(v is None for v in row.values.values()):
        errors.append("No Max value is given: nothing to change.")
    row.error = " ".join(errors)
    return row


def _mark_duplicates(rows: list[ImportRow]) -> None:
    """Every row of an email given twice is refused: which one is meant cannot be told."""
    where: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        if row.email and not row.error:
            where[row.email].append(row.number)
    for row in rows:
        numbers = where.get(row.email, [])
        if len(numbers) > 1 and not row.error:
            listed = ", ".join(str(n) for n in numbers[:5]) + (" …" if len(numbers) > 5 else "")
            row.error = f"This email is on rows {listed}: keep one row per user."


def parse_allocation_file(sheet: Sheet) -> ImportFile:
    """The sheet's rows after its header, each an `ImportRow` (with its error, if any)."""
    if not sheet.rows:
        raise SheetError("The file is empty: it needs a header row and at least one user.")
    positions, ignored = _header(sheet.rows[0])
    rows = [_row(number, cells, positions) for number, cells in enumerate(sheet.rows[1:], 2)]
    if not rows:
        raise SheetError("The file has a header but no users under it.")
    _mark_duplicates(rows)
    return ImportFile(
        rows=rows,
        columns=[c for c in MAX_COLUMNS if c in positions],
        ignored=ignored,
        kind=sheet.kind,
        encoding=sheet.encoding,
        separator=sheet.separator,
    )
