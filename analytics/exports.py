"""Streaming CSV and XLSX exports: constant memory whatever the row count, safe in Excel.

On PostgreSQL an export is the database's own `COPY (SELECT …) TO STDOUT WITH CSV`, its text
cells neutralised in the SELECT, streamed through psycopg a block at a time. Elsewhere rows
come from `.iterator(chunk_size=…)` as value tuples and are written by the csv module. Either
way every text cell a spreadsheet would read as a formula is prefixed with an apostrophe, and
both paths write the same cells.

An XLSX export is written by XlsxWriter in its constant-memory mode (each row goes to disk
as it is written) into a temporary file, then streamed from it: numbers are numbers, days
and times (UTC) are dates, and text is always written as a string, never as a formula.
"""

import csv
import datetime as dt
import json
import re
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

import xlsxwriter
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from analytics.filters import today

BOM = "\ufeff"
CHUNK = 2000
COPY_BLOCK = 256 * 1024
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain number ("-750000", "12.5") is data, not a formula: it stays a number in Excel.
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")

# How each kind of column is written, in SQL for COPY ({c} is the column).
_NEUTRAL = (
    "CASE WHEN left({c}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r')"
    " AND {c} !~ '^-?[0-9]+([.][0-9]+)?$' THEN '''' || {c} ELSE {c} END"
)
SQL_CELLS = {
    "text": _NEUTRAL,
    "int": "{c}",
    "time": "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')",
    "date": "to_char({c}, 'YYYY-MM-DD')",
    "bool": "CASE WHEN {c} THEN 'yes' WHEN NOT {c} THEN 'no' END",
    "uuid": "{c}::text",
    "json": _NEUTRAL.replace("{c}", "NULLIF({c}::text, '{{}}')"),
    "ip": "host({c})",
}


def neutralise(value) -> object:
    """A cell as text Excel will not evaluate: '=1+1' → "'=1+1". Numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value) if value else ""
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.match(text):
        return "'" + text
    return text


@dataclass(frozen=True)
class Export:
    """What to write: a header and a values_list queryset whose columns have these kinds."""

    what: str
    header: list[str]
    rows: QuerySet
    kinds: list[str]

    def __post_init__(self):
        assert len(self.header) == len(self.kinds), "one kind per column"
        assert all(kind in SQL_CELLS for kind in self.kinds)


class _Line:
    """A file-like sink for csv.writer that hands back what was written."""

    def __init__(self):
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        return text


def csv_lines(header: list[str], rows: Iterable[tuple]) -> Iterator[bytes]:
    """BOM and header, then the rows, yielded about CHUNK rows at a time."""
    sink = _Line()
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(header)
    yield (BOM + sink.take()).encode()
    for count, row in enumerate(rows, start=1):
        writer.writerow([neutralise(cell) for cell in row])
        if count % CHUNK == 0:
            yield sink.take().encode()
    if rest := sink.take():
        yield rest.encode()


def copy_lines(export: Export) -> Iterator[bytes]:
    """BOM and header, then PostgreSQL's COPY of the rows in blocks of about 256 KB."""
    sink = _Line()
    csv.writer(sink, lineterminator="\n").writerow(export.header)
    yield (BOM + sink.take()).encode()
    sql, params = export.rows.query.sql_with_params()
    names = [f"c{i}" for i in range(len(export.kinds))]
    cells = ", ".join(
        SQL_CELLS[kind].format(c=name) for kind, name in zip(export.kinds, names, strict=True)
    )
    statement = (
        f"COPY (SELECT {cells} FROM ({sql}) AS rows({', '.join(names)})) "
        f"TO STDOUT WITH (FORMAT csv)"
    )
    connection = connections[export.rows.db]
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, cursor.copy(statement, params) as copy:
        block: list[bytes] = []
        size = 0
        for data in copy:
            block.append(bytes(data))
            size += len(data)
            if size >= COPY_BLOCK:
                yield b"".join(block)
                block, size = [], 0
        if block:
            yield b"".join(block)


def lines(export: Export) -> Iterator[bytes]:
    if connections[export.rows.db].vendor == "postgresql":
        return copy_lines(export)
    return csv_lines(export.header, export.rows.iterator(chunk_size=CHUNK))


def filename(slug: str, what: str, extension: str = "csv") -> str:
    return f"{slug}-{what}-{today():%Y-%m-%d}.{extension}"


# XLSX ---------------------------------------------------------------------------------------

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MAX_ROWS = 1_048_576  # a worksheet's limit, header included: more rows go on a next sheet
XLSX_FORMATS = {"time": "yyyy-mm-dd hh:mm:ss", "date": "yyyy-mm-dd"}
XLSX_WIDTHS = {"time": 20, "date": 12, "int": 14, "bool": 8, "uuid": 38, "ip": 16}
# Whole numbers Excel holds exactly (15 digits): a longer run of digits stays text.
PLAIN_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,15}\Z")


def _xlsx_cell(kind: str, value) -> tuple[str, object]:
    """How one cell is written: ("number" | "datetime" | "string" | "blank", value)."""
    if value is None:
        return "blank", None
    if kind == "int":
        return "number", value
    if kind == "time":
        return "datetime", value.astimezone(dt.UTC).replace(tzinfo=None)
    if kind == "date":
        return "datetime", dt.datetime.combine(value, dt.time())
    if kind == "bool":
        return "string", "yes" if value else "no"
    if kind == "json":
        return ("string", json.dumps(value)) if value else ("blank", None)
    text = str(value)
    if not text:
        return "blank", None
    if kind == "text" and PLAIN_WHOLE_NUMBER.match(text):
        return "number", int(text)  # an audit row's "-750000" is a number, as in the CSV
    return "string", text


def write_xlsx(export: Export, handle, rows: Iterable[tuple] | None = None) -> int:
    """Write the export as a workbook to the binary file `handle`; the number of rows."""
    workbook = xlsxwriter.Workbook(
        handle,
        {
            "constant_memory": True,
            # Belt and braces: cells are written with explicit types below anyway.
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    bold = workbook.add_format({"bold": True})
    formats = {kind: workbook.add_format({"num_format": f}) for kind, f in XLSX_FORMATS.items()}
    kinds = export.kinds

    def new_sheet(number: int):
        sheet = workbook.add_worksheet(export.what[:25] + (f" {number}" if number > 1 else ""))
        for column, (title, kind) in enumerate(zip(export.header, kinds, strict=True)):
            sheet.set_column(column, column, XLSX_WIDTHS.get(kind, max(14, len(title) + 2)))
            sheet.write_string(0, column, title, bold)
        sheet.freeze_panes(1, 0)
        return sheet

    sheets = 1
    sheet = new_sheet(sheets)
    line = count = 0
    for row in export.rows.iterator(chunk_size=CHUNK) if rows is None else rows:
        count += 1
        line += 1
        if line == XLSX_MAX_ROWS:
            sheets += 1
            sheet, line = new_sheet(sheets), 1
        for column, (kind, value) in enumerate(zip(kinds, row, strict=True)):
            how, cell = _xlsx_cell(kind, value)
            if how == "number":
                sheet.write_number(line, column, cell)
            elif how == "datetime":
                sheet.write_datetime(line, column, cell, formats[kind])
            elif how == "string":
                sheet.write_string(line, column, cell)
    workbook.close()
    return count


def xlsx_chunks(export: Export) -> Iterator[bytes]:
    """The workbook, built into a temporary file when the first chunk is asked for, then
    read back in blocks of about 256 KB: memory stays flat whatever the row count."""
    with tempfile.TemporaryFile() as handle:
        write_xlsx(export, handle)
        handle.seek(0)
        while block := handle.read(COPY_BLOCK):
            yield block


async def _in_request_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks for an ASGI server, each read in the request's own thread (its database
    connection and cursor stay there). Given a synchronous iterator instead, Django under
    ASGI would read the whole export into memory before sending a byte."""
    step = sync_to_async(next, thread_sensitive=True)
    end = object()
    while (chunk := await step(chunks, end)) is not end:
        yield chunk


def response(
    slug: str, export: Export, *, asgi: bool = False, format: str = "csv"
) -> StreamingHttpResponse:
    """The export as a streamed CSV or XLSX download; `asgi`: served by the ASGI application."""
    if format == "xlsx":
        chunks, content_type = xlsx_chunks(export), XLSX_TYPE
    else:
        chunks, content_type = lines(export), "text/csv; charset=utf-8"
    content = _in_request_thread(chunks) if asgi else chunks
    answer = StreamingHttpResponse(content, content_type=content_type)
    name = filename(slug, export.what, format)
    answer["Content-Disposition"] = f'attachment; filename="{name}"'
    answer["Cache-Control"] = "no-store"
    return answer
