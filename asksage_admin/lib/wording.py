"""Counted nouns in messages: "1 inference token", "2,000,000 inference tokens".

English only (the console is not translated); numbers always carry thousands separators.
"""


def counted(n: int, noun: str, plural: str | None = None, *, sign: bool = False) -> str:
    """`n` and `noun`, pluralised unless n is ±1 (`plural` for irregular nouns); `sign`
    prefixes + to a positive number (a change rather than an amount)."""
    number = f"{n:+,}" if sign else f"{n:,}"
    word = noun if abs(n) == 1 else (plural or f"{noun}s")
    return f"{number} {word}"
