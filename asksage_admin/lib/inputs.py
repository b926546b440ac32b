"""Validators for what comes in from outside: one per kind of input, used at every edge.

Each refuses with `InputError` (a ValueError) whose message is a sentence for people, so an
edge answers 400/422 with words instead of a 500, and SQLite and PostgreSQL give the same
answer: PostgreSQL refuses NUL in text and lone surrogates in any string, SQLite stores them;
Python's int() refuses more than 4,300 digits and accepts "²" after `isdigit()` said yes;
SQLite's integers stop at 2**63 − 1.
"""

import re

MAX_ID = 2**63 - 1  # a bigint primary key; SQLite raises OverflowError past it
# Enough for any id (19 digits) or token amount (16 digits); int() then never sees the
# thousands of digits that make it slow or raise.
MAX_DIGITS = 19
HEADER_TEXT_MAX = 500  # characters of people's text put into a response header

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ASCII_DIGITS = re.compile(r"[0-9]+")
_EMAIL_SPLIT = re.compile(r"[\s,;]+")


class InputError(ValueError):
    """Input that cannot be accepted; the message is shown to the person or the client."""


def text_problem(value: str) -> str | None:
    """Why this text cannot be stored (NUL, lone surrogates), or None when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    if _LONE_SURROGATE.search(value):
        return "contains an invalid character (an unpaired UTF-16 surrogate)"
    return None


def parse_whole(value: object, *, label: str, low: int, high: int) -> int:
    """A whole number typed with ASCII digits only, within [low, high]."""
    if isinstance(value, bool):
        raise InputError(f"{label} must be a whole number.")
    if isinstance(value, int):
        number = value
    else:
        text = str("" if value is None else value).strip()
        # The length first: int() of thousands of digits is slow, and past 4,300 it raises.
        if len(text) > MAX_DIGITS or not _ASCII_DIGITS.fullmatch(text):
            raise InputError(f"{label} must be a whole number from {low:,} to {high:,}.")
        number = int(text)
    if not low <= number <= high:
        raise InputError(f"{label} must be a whole number from {low:,} to {high:,}.")
    return number


def parse_id(value: object, *, label: str = "The id") -> int:
    """A database id: 1 … 2**63 − 1, ASCII digits."""
    return parse_whole(value, label=label, low=1, high=MAX_ID)


def parse_email_list(text: str) -> list[str]:
    """Emails separated by new lines, commas, semicolons or spaces; lower-cased, de-duplicated."""
    seen: dict[str, None] = {}
    for item in _EMAIL_SPLIT.split(text or ""):
        if item.strip():
            seen.setdefault(item.strip().lower(), None)
    return list(seen)


def header_text(text: str, limit: int = HEADER_TEXT_MAX) -> str:
    """Text bounded for a response header: what people typed can be any length."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class IdConverter:
    """`<id:user_id>` in URL patterns: `<int:…>` bounded to a database id, so a path with a
    huge number is a 404 on both databases instead of an OverflowError on SQLite."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValueError("not a database id")  # Django: this pattern does not match
        return number

    def to_url(self, value: int) -> str:
        return str(value)
