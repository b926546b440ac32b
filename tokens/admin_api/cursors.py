"""Opaque cursors for keyset pagination: the last row's sort value and id, so a page costs one
indexed query however deep it is, and rows added meanwhile do not shift the next page."""

import base64
import binascii
import json
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from tokens.usage_api.errors import UsageError


def encode(sort: str, value, pk: int) -> str:
    raw = json.dumps([sort, value, pk], separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, sort: str, kind: type = object) -> tuple[object, int]:
    """(value, id) after which the next page starts; 400 for a cursor of another sort, a value
    not of the sort's `kind` (bool is no int), or anything else that is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        got_sort, value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if got_sort != sort or not isinstance(pk, int) or not isinstance(value, int | str):
            raise ValueError
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _invalid() from None
    return value, pk


def _invalid() -> UsageError:
    return UsageError(400, "invalid_cursor", "This cursor is not valid for this sort: start again.")


def after(rows: QuerySet, field: str, descending: bool, value, pk: int) -> QuerySet:
    """The rows after (value, pk) in the order (field, pk), both ascending or both descending.
    A forged value of the wrong type for the field (text for a number) is a 400, not a 500."""
    op = "lt" if descending else "gt"
    if field == "pk":  # the id is the whole key: the cursor's value adds nothing
        return rows.filter(**{f"pk__{op}": pk})
    try:
        return rows.filter(Q(**{f"{field}__{op}": value}) | Q(**{field: value, f"pk__{op}": pk}))
    except (ValueError, TypeError, ValidationError):
        raise _invalid() from None


def page(rows: QuerySet, field: str, descending: bool, limit: int) -> tuple[list, bool]:
    """One page of rows in (field, pk) order, and whether more follow."""
    sign = "-" if descending else ""
    items = list(rows.order_by(f"{sign}{field}", f"{sign}pk")[: limit + 1])
    return items[:limit], len(items) > limit


def keyset_page(
    rows: QuerySet,
    *,
    sort: str,
    field: str,
    cursor: str | None,
    limit: int,
    descending: bool = False,
    value_of: Callable[[object], object] | None = None,
    kind: type = object,
    load: Callable[[object], object] | None = None,
) -> tuple[list, str | None]:
    """One page of `rows` after `cursor` in (field, pk) order, and the cursor of the next page
    (None on the last). `sort` is the name the cursor carries, so a cursor of another sort is a
    400; `value_of(row)` is what the next cursor stores (the row's `field` unless said),
    `load(value)` turns it back into what the field compares with (a datetime from its text)."""
    if cursor:
        value, pk = decode(cursor, sort, kind)
        rows = after(rows, field, descending, load(value) if load else value, pk)
    items, more = page(rows, field, descending, limit)
    if not more:
        return items, None
    last = items[-1]
    return items, encode(sort, value_of(last) if value_of else getattr(last, field), last.pk)
