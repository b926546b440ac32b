"""Downloading an export in the analytics tests: checked to stream, read back as rows."""

import csv
import io

import openpyxl
from django.http import StreamingHttpResponse
from django.urls import reverse

BOM = b"\xef\xbb\xbf"  # what Excel needs to read a CSV as UTF-8


def export_url(what: str, *, xlsx: bool = False) -> str:
    return reverse("analytics:export_xlsx" if xlsx else "analytics:export", args=[what])


def stream(client, what: str, query: dict | None = None, *, xlsx: bool = False):
    """GET an export that must answer 200 as a stream; the response and its whole body."""
    response = client.get(export_url(what, xlsx=xlsx), query or {})
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    return response, b"".join(response.streaming_content)


def download_csv(client, what: str, query: dict | None = None):
    """The response and the CSV's rows (lists of strings), after checking the BOM."""
    response, body = stream(client, what, query)
    assert body.startswith(BOM)
    return response, list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def first_sheet(body: bytes):
    return openpyxl.load_workbook(io.BytesIO(body)).worksheets[0]


def download_xlsx(client, what: str, query: dict | None = None):
    """The response and the first sheet's rows (lists of typed cell values)."""
    response, body = stream(client, what, query, xlsx=True)
    return response, [list(row) for row in first_sheet(body).iter_rows(values_only=True)]
