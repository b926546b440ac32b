"""Reading an uploaded table (CSV, TSV or XLSX) into rows of text, safely.

Whatever arrives, the answer is rows or a `SheetError` whose message is a sentence: a file
that is not text, a cell larger than any real cell, more rows than allowed. Nothing here
evaluates a cell: a spreadsheet formula stays the text it is (`=1+1`), and the caller refuses
it as the value it is not.

CSV as people save it: UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8"), UTF-16
with one (Excel's "Unicode text"), and otherwise Windows-1252, what Excel's plain "CSV" writes
on Windows (a superset of Latin-1 for the printable characters). The separator is Excel's
`sep=;` first line when present, else whichever of comma, semicolon and tab the header uses
most (Excel writes `;` where the decimal mark is a comma).
"""

import codecs
import csv
import io
from dataclasses import dataclass

from asksage_admin.lib.inputs import InputError, text_problem
from asksage_admin.lib.xlsx_reader import is_xlsx, xlsx_rows

SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
# The csv module refuses a field past this (its default); a row with one is refused as a whole.
CSV_FIELD_LIMIT = 131_072


class SheetError(InputError):
    """The file as a whole cannot be read; the message says why and what to do."""


@dataclass(frozen=True)
class Sheet:
    rows: list[list[str]]  # the header first; every cell stripped text
    kind: str  # "CSV" or "XLSX"
    encoding: str = ""  # how a CSV was decoded, for the preview's note
    separator: str = ""


def read_sheet(data: bytes, filename: str, *, max_rows: int) -> Sheet:
    """Rows of text from an uploaded file: at most `max_rows` rows after the header."""
    if not data.strip():
        raise SheetError("The file is empty: it needs a header row and at least one user.")
    if is_xlsx(data):
        rows = xlsx_rows(data, max_rows=max_rows + 1, error=SheetError)
        return Sheet(rows=_trimmed(rows, max_rows), kind="XLSX")
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith((".xls", ".xlsx", ".ods")):
        raise SheetError(
            "This is not a file we can read: save it as CSV (UTF-8) or as an Excel workbook "
            "(.xlsx); older .xls and OpenDocument files are not read."
        )
    text, encoding = decode(data)
    return _csv_sheet(text, encoding, max_rows)


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the name of the encoding it was read with."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            raise SheetError("The file says UTF-16 but is not: save it as CSV UTF-8.") from None
    if b"\x00" in data:
        raise SheetError(
            "This file is not text: upload a CSV (comma, semicolon or tab separated) or an "
            "Excel workbook (.xlsx)."
        )
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        # Not UTF-8: Excel's plain "CSV" on Windows. Undefined cp1252 bytes fall to Latin-1.
        try:
            return data.decode("cp1252"), "Windows-1252"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "Latin-1"


def _separator(first_line: str) -> str:
    counts = {sep: first_line.count(sep) for sep in SEPARATORS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _csv_sheet(text: str, encoding: str, max_rows: int) -> Sheet:
    problem = text_problem(text)
    if problem:
        raise SheetError(f"The file {problem}: save it again as CSV UTF-8.")
    lines = io.StringIO(text, newline="")
    first = lines.readline()
    if first.strip().lower().startswith("sep=") and len(first.strip()) == 5:
        separator = first.strip()[4]
    else:
        separator = _separator(first)
        lines.seek(0)
    reader = csv.reader(lines, delimiter=separator)
    rows: list[list[str]] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank lines (a trailing one, Excel's empty rows)
            rows.append([cell.strip() for cell in row])
            if len(rows) > max_rows + 1:
                break
    except csv.Error as exc:
        raise SheetError(
            f"Line {reader.line_num:,} cannot be read ({exc}): a cell may be longer than "
            f"{CSV_FIELD_LIMIT:,} characters or a quote may be left open."
        ) from None
    return Sheet(
        rows=_trimmed(rows, max_rows),
        kind="CSV",
        encoding=encoding,
        separator=SEPARATORS.get(separator, repr(separator)),
    )


def _trimmed(rows: list[list[str]], max_rows: int) -> list[list[str]]:
    if len(rows) > max_rows + 1:
        raise SheetError(
            f"The file has more than {max_rows:,} rows: split it into files of at most "
            f"{max_rows:,} users each."
        )
    return rows
