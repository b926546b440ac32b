"""Streaming CSV exports: constant memory whatever the row count, safe to open in Excel.

Rows come from `.iterator(chunk_size=…)` (a server-side cursor on PostgreSQL) as value tuples,
are written a chunk at a time, and every text cell that a spreadsheet would read as a formula
is prefixed with an apostrophe.
"""

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.http import StreamingHttpResponse

from analytics.filters import today

BOM = "\ufeff"
CHUNK = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


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


def csv_lines(header: list[str], rows: Iterable[tuple]) -> Iterator[str]:
    """BOM and header, then the rows, yielded about CHUNK rows at a time."""
    sink = _Line()
    writer = csv.writer(sink)
    writer.writerow(header)
    yield BOM + sink.take()
    for count, row in enumerate(rows, start=1):
        writer.writerow([neutralise(cell) for cell in row])
        if count % CHUNK == 0:
            yield sink.take()
    if rest := sink.take():
        yield rest


@dataclass(frozen=True)
class Export:
    what: str
    header: list[str]
    rows: Iterable[tuple]


def filename(slug: str, what: str) -> str:
    return f"{slug}-{what}-{today():%Y-%m-%d}.csv"


def response(slug: str, export: Export) -> StreamingHttpResponse:
    answer = StreamingHttpResponse(
        csv_lines(export.header, export.rows), content_type="text/csv; charset=utf-8"
    )
    answer["Content-Disposition"] = f'attachment; filename="{filename(slug, export.what)}"'
    answer["Cache-Control"] = "no-store"
    return answer
