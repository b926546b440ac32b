"""What the token capabilities share: column and kind checks, amount and number parsing.

Each raises `DomainError` keyed by the form field, so a view can show it beside the input.
"""

from django.conf import settings

from accounts.models import Organization
from asksage_admin.lib.amounts import AmountError, parse_tokens
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.inputs import InputError, parse_whole
from tokens.models import MAX_COLUMNS, TokenKind


def check_column(column: str) -> str:
    if column not in MAX_COLUMNS:
        raise DomainError(f"“{column[:40]}” is not an editable column.")
    return column


def validate_amount(org: Organization, column: str, raw: object) -> int:
    """Parse a typed amount and check it against the organization's floor for the column."""
    try:
        value = parse_tokens(raw)
    except AmountError as exc:
        raise DomainError(errors={"value": [str(exc)]}) from exc
    floor = org.floor(MAX_COLUMNS[column])
    if value < floor:
        raise DomainError(
            errors={"value": [f"At least {floor:,}: the organization's minimum per user."]}
        )
    return value


def parse_amount(raw: object, field: str = "amount") -> int:
    try:
        value = parse_tokens(raw)
    except AmountError as exc:
        raise DomainError(errors={field: [str(exc)]}) from exc
    if value == 0:
        raise DomainError(errors={field: ["Enter an amount above zero."]})
    return value


def check_kind(kind: str) -> str:
    if kind not in TokenKind.values:
        raise DomainError(errors={"kind": [f"Choose inference or embedding, not “{kind[:20]}”."]})
    return kind


def platform_floor(kind: str) -> int:
    return (
        settings.PLATFORM_MIN_INFERENCE_TOKENS
        if kind == TokenKind.INFERENCE
        else settings.PLATFORM_MIN_EMBEDDING_TOKENS
    )


def parse_int(raw: object, field: str, label: str, low: int, high: int) -> int:
    # The one whole-number validator (ASCII digits, bounded length before int()).
    try:
        return parse_whole(raw, label=label, low=low, high=high)
    except InputError:
        raise DomainError(
            errors={field: [f"{label}: enter a whole number from {low} to {high}."]}
        ) from None
