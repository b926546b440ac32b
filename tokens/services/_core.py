"""What the token capabilities share: column, kind and amount checks.

Amounts arrive parsed (the forms' `TokenAmountField`); these check what a typed value must
still be (present, in range, above the floor).

Each raises `DomainError` keyed by the form field, so a view can show it beside the input.
"""

from django.conf import settings

from accounts.models import Organization, User
from asksage_admin.lib.amounts import ACCEPTED_FORMATS, MAX_TOKENS
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.forms import AMOUNT_REQUIRED
from tokens.models import MAX_COLUMNS, TokenKind


def check_column(column: str) -> str:
    if column not in MAX_COLUMNS:
        raise DomainError(f"“{column[:40]}” is not an editable column.")
    return column


def member_floor(org: Organization, kind: str, user: User | None = None) -> int:
    """The organization's floor, except for a banned member: 0, so that no save, import,
    preset or policy forces tokens back onto someone who cannot use them."""
    return 0 if user is not None and user.is_banned else org.floor(kind)


def check_floor(
    org: Organization, column: str, value: int, field: str = "value", user: User | None = None
) -> int:
    """A parsed amount (a form's `TokenAmountField`) against the organization's floor (the
    member's, when `user` is given)."""
    check_amount(value, field, allow_zero=True)
    floor = member_floor(org, MAX_COLUMNS[column], user)
    if value < floor:
        raise DomainError(
            errors={field: [f"At least {floor:,}: the organization's minimum per user."]}
        )
    return value


def check_amount(value: int | None, field: str = "amount", *, allow_zero: bool = False) -> int:
    """A parsed amount that must be there (and above zero unless `allow_zero`). The form
    parsed it; a direct caller (a command, a test) gets the same words."""
    if value is None:
        raise DomainError(errors={field: [AMOUNT_REQUIRED]})
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise DomainError(errors={field: [f"Enter {ACCEPTED_FORMATS}."]})
    if value == 0 and not allow_zero:
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
