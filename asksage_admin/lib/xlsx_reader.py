"""The first sheet of an Excel workbook (.xlsx) as rows of text, within bounds.

An .xlsx is a zip of XML files, so a small upload can expand to gigabytes (a zip bomb) or
carry XML entity tricks (billion laughs). Before openpyxl opens it: at most `MAX_MEMBERS`
files whose declared sizes add up to at most `MAX_EXPANDED_BYTES` (zipfile never inflates a
member past its declared size). openpyxl parses through defusedxml (installed beside it, it
uses it), reads in read-only mode (streamed, row by row) and with `data_only=False`, so a
formula is its text, never a cached result.
"""

import io
import warnings
import zipfile

import openpyxl

MAX_MEMBERS = 500
MAX_EXPANDED_BYTES = 64 * 1024 * 1024


def is_xlsx(data: bytes) -> bool:
    if data[:4] != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False


def _check_archive(data: bytes, error: type[Exception]) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise error(f"This workbook holds {len(members):,} parts: save it as CSV instead.")
        expanded = sum(member.file_size for member in members)
        if expanded > MAX_EXPANDED_BYTES:
            raise error(
                f"This workbook expands to {expanded / 1_048_576:,.0f} MB "
                f"(at most {MAX_EXPANDED_BYTES // 1_048_576} MB): save it as CSV instead."
            )


def _text(value: object) -> str:
    """A cell as the text it shows: 250000.0 is "250000", a formula is its "=…" text."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value).strip()


def xlsx_rows(data: bytes, *, max_rows: int, error: type[Exception]) -> list[list[str]]:
    """Up to `max_rows` + 1 non-blank rows of the first sheet (one more tells the caller the
    file is over its limit); `error` is raised with a sentence when the file cannot be read."""
    _check_archive(data, error)
    rows: list[list[str]] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no default style", unknown extensions
            book = openpyxl.load_workbook(
                io.BytesIO(data), read_only=True, data_only=False, keep_links=False
            )
            try:
                sheet = book.worksheets[0]
                for row in sheet.iter_rows(values_only=True):
                    cells = [_text(value) for value in row]
                    if any(cells):
                        rows.append(cells)
                    if len(rows) > max_rows:
                        break
            finally:
                book.close()
    except error:
        raise
    except Exception as exc:  # openpyxl raises many types on a damaged or hostile file
        while exc.__cause__ is not None:  # openpyxl wraps the parser's own (EntitiesForbidden)
            exc = exc.__cause__
        raise error(
            f"This workbook cannot be read ({type(exc).__name__}): open it in Excel and save "
            "it again as .xlsx, or as CSV UTF-8."
        ) from None
    return rows
