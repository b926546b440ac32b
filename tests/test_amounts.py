"""Parsing what people type as token amounts, and formatting what they read."""

import pytest

from asksage_admin.lib.amounts import (
    ACCEPTED_FORMATS,
    MAX_TOKENS,
    AmountError,
    format_tokens,
    parse_tokens,
    short_tokens,
)


@pytest.mark.parametrize(
    ("raw", "tokens"),
    [
        (250000, 250_000),
        ("250000", 250_000),
        ("250,000", 250_000),
        ("250 000", 250_000),
        ("1,234,567", 1_234_567),
        ("250k", 250_000),
        ("250K", 250_000),
        ("1.5M", 1_500_000),
        ("1.5m", 1_500_000),
        ("2m", 2_000_000),
        (".5k", 500),
        (" 42 ", 42),
        ("0", 0),
        (str(MAX_TOKENS), MAX_TOKENS),
    ],
)
def test_it_accepts_the_documented_formats(raw, tokens):
    assert parse_tokens(raw) == tokens


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "1.5",
        "",
        "   ",
        None,
        "١٢٣",  # Arabic-Indic digits: isdigit() would say yes
        "²",  # superscript two
        "1,00,000",  # Indian grouping
        "250,00",
        "250,000 000",  # mixed separators
        "1e6",
        "2g",
        "1.5k5",
        True,
    ],
)
def test_it_refuses_anything_else_and_names_what_is_accepted(raw):
    with pytest.raises(AmountError) as excinfo:
        parse_tokens(raw)
    assert ACCEPTED_FORMATS in str(excinfo.value)


@pytest.mark.parametrize("raw", ["-5", "-250k", -5])
def test_it_refuses_negative_amounts(raw):
    with pytest.raises(AmountError, match="cannot be negative"):
        parse_tokens(raw)


@pytest.mark.parametrize("raw", ["9007199254740992", 2**53, "9007199254.740992M"])
def test_it_refuses_amounts_above_2_pow_53_minus_1_and_names_the_largest(raw):
    with pytest.raises(AmountError, match="9,007,199,254,740,991"):
        parse_tokens(raw)


@pytest.mark.parametrize("raw", ["1.0000001k", "0.0000001M", "2.5000001k"])
def test_it_refuses_fractions_of_a_token(raw):
    with pytest.raises(AmountError, match="is not a whole number of tokens"):
        parse_tokens(raw)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (250_000, "250,000"), (MAX_TOKENS, "9,007,199,254,740,991"), (None, "—")],
)
def test_format_tokens_shows_every_digit_grouped_by_thousands(value, text):
    assert format_tokens(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1_000, "1K"),
        (200_000, "200K"),
        (1_500_000, "1.5M"),
        (2_500_000, "2.5M"),
        (1_234_567, "1.23M"),
        (2_000_000_000, "2B"),
        (None, "—"),
    ],
)
def test_short_tokens_abbreviates_for_summaries(value, text):
    assert short_tokens(value) == text
