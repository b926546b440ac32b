"""Durations in words, for messages people read ("Try again in 15 minutes")."""

import math

_UNITS = [("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)]


def in_words(seconds: float) -> str:
    """`seconds` rounded up to a whole second, in its two largest units: "32 seconds",
    "15 minutes", "1 hour 4 minutes", "3 days 2 hours"."""
    left = max(1, math.ceil(seconds))
    parts = []
    for name, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return " ".join(parts[:2])
