"""Token amounts: parsing what people type and formatting what they read.

Accepted: 250000, 250,000, 250 000, 250k, 1.5M (case-insensitive). Amounts are integers in
[0, 2**53 - 1] so they stay exact in JSON and JavaScript.
"""

import re
from decimal import Decimal, InvalidOperation

MAX_TOKENS = 2**53 - 1
# "9 007 199 254 740 991" is 21 characters; leading zeros and a decimal part get some room.
MAX_AMOUNT_CHARS = 40
ACCEPTED_FORMATS = "a whole number such as 250000, 250,000, 250 000, 250k or 1.5M"

# ASCII digits only: str.isdigit() and \d would accept "٣" or "³".
_PLAIN = re.compile(r"^[0-9]{1,3}(?:([, ])[0-9]{3})?(?:\1[0-9]{3})*$|^[0-9]+$")
_SUFFIXED = re.compile(r"^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*([km])$", re.IGNORECASE)
_MULTIPLIERS = {"k": 1_000, "m": 1_000_000}


class AmountError(ValueError):
    """A token amount that cannot be accepted; the message is shown to the person."""


def parse_tokens(raw: object) -> int:
    """Parse a typed amount into an integer number of tokens, or raise AmountError."""
    if isinstance(raw, bool):
        raise AmountError(f"Enter {ACCEPTED_FORMATS}.")
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw if raw is not None else "").strip().replace("\u00a0", " ")
        if not text:
            raise AmountError(f"Enter an amount: {ACCEPTED_FORMATS}.")
        if text.startswith("-"):
            raise AmountError("Amounts cannot be negative.")
        # Before any int() or Decimal(): past 4,300 digits int() raises ValueError (a 500),
        # and long ones are slow. The largest amount written with separators fits.
        if len(text) > MAX_AMOUNT_CHARS:
            raise AmountError(
                f"“{text[:20]}…” is too long for an amount ({len(text):,} characters). "
                f"Enter {ACCEPTED_FORMATS}."
            )
        if _PLAIN.match(text):
            value = int(text.replace(",", "").replace(" ", ""))
        else:
            match = _SUFFIXED.match(text)
            if not match:
                raise AmountError(f"“{text[:40]}” is not an amount. Enter {ACCEPTED_FORMATS}.")
            try:
                number = Decimal(match.group(1)) * _MULTIPLIERS[match.group(2).lower()]
            except InvalidOperation as exc:  # pragma: no cover - regex keeps this unreachable
                raise AmountError(f"Enter {ACCEPTED_FORMATS}.") from exc
            if number != number.to_integral_value():
                raise AmountError(f"“{text}” is not a whole number of tokens.")
            value = int(number)
    if value < 0:
        raise AmountError("Amounts cannot be negative.")
    if value > MAX_TOKENS:
        raise AmountError(f"Amounts cannot exceed {MAX_TOKENS:,} tokens.")
    return value


def format_tokens(value: int | None) -> str:
    """250000 → '250,000' (exact, for cells and forms)."""
    return "—" if value is None else f"{value:,}"


def short_tokens(value: int | None) -> str:
    """2500000 → '2.5M' (compact, for summaries)."""
    if value is None:
        return "—"
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if abs(value) >= size:
            text = f"{value / size:.2f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return str(value)
