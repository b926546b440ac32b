"""The checks a new enterprise account passes before anything is written.

Used by `tokens.organizations` (provisioning, purchases); kept apart so the writes stay short.
Nothing here writes, but `provisioning_errors` locks the users it finds (it runs inside the
provisioning transaction).
"""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import Membership, Organization, User
from accounts.services import banned_join_error
from asksage_admin.lib.amounts import MAX_TOKENS
from asksage_admin.lib.wording import counted
from tokens.models import BLOCK, TokenKind


def nearest_blocks(amount: int) -> str:
    lower, upper = amount // BLOCK * BLOCK, (amount // BLOCK + 1) * BLOCK
    options = [f"{upper:,}"] if lower == 0 else [f"{lower:,}", f"{upper:,}"]
    return " or ".join(options)


def amount_errors(amount: int, *, optional: bool) -> list[str]:
    if amount < 0:
        return [f"{amount:,} is negative: amounts cannot be negative."]
    if amount > MAX_TOKENS:
        return [f"{amount:,} is above the maximum of {MAX_TOKENS:,} tokens."]
    if amount == 0 and not optional:
        return ["The purchase needs at least 2,000,000 tokens per month."]
    if amount % BLOCK:
        return [
            f"{amount:,} is not a multiple of 2,000,000 tokens: tokens are sold in blocks of "
            f"2,000,000 (for example {nearest_blocks(amount)})."
        ]
    return []


def provisioning_errors(
    *,
    name: str,
    billing_address: str,
    user_emails: list[str],
    admin_emails: list[str],
    inference_tokens: int,
    embedding_tokens: int,
    floors: dict[str, int],
) -> tuple[list[User], dict[str, list[str]]]:
    """The users to provision (locked, in the order given) and every error, keyed by the
    provisioning form's field.
    """
    errors: dict[str, list[str]] = {}
    if not name:
        _add_error(errors, "name", "Enter the organization's name.")
    elif Organization.objects.filter(name__iexact=name).exists():
        _add_error(errors, "name", f"An organization named “{name}” already exists.")
    if not billing_address:
        _add_error(errors, "billing_address", "Enter the billing address.")
    everyone = list(dict.fromkeys(user_emails + admin_emails))
    if len(everyone) < 2:
        given = f" ({', '.join(everyone)})" if everyone else ""
        _add_error(
            errors,
            "user_emails",
            f"An enterprise account needs at least 2 users; {len(everyone)} given{given}.",
        )
    if not admin_emails:
        _add_error(
            errors,
            "admin_emails",
            "Name at least 1 admin (admins are users too; there is no maximum).",
        )
    found = _provisioned_users(errors, user_emails=user_emails, admin_emails=admin_emails)
    for kind, field, amount in (
        (TokenKind.INFERENCE, "inference_tokens", inference_tokens),
        (TokenKind.EMBEDDING, "embedding_tokens", embedding_tokens),
    ):
        problems = amount_errors(amount, optional=kind == TokenKind.EMBEDDING)
        for message in problems:
            _add_error(errors, field, message)
        needed = floors[kind] * len(everyone)
        if not problems and amount < needed and len(everyone) >= 2:
            _add_error(
                errors,
                field,
                f"{len(everyone)} users need at least {counted(needed, kind + ' token')} "
                f"({floors[kind]:,} each); {amount:,} purchased.",
            )
    return [found[e] for e in everyone if e in found], errors


def _add_error(errors: dict[str, list[str]], field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _provisioned_users(
    errors: dict[str, list[str]], *, user_emails: list[str], admin_emails: list[str]
) -> dict[str, User]:
    """The registered users by email, locked; who is invalid, unregistered or taken, in `errors`.

    Locked because two accounts provisioned at once must not both take the same person.
    """
    everyone = list(dict.fromkeys(user_emails + admin_emails))

    def field_of(email: str) -> str:
        only_admin = email in admin_emails and email not in user_emails
        return "admin_emails" if only_admin else "user_emails"

    valid = []
    for email in everyone:
        try:
            validate_email(email)
        except ValidationError:
            _add_error(errors, field_of(email), f"“{email}” is not a valid email address.")
        else:
            valid.append(email)
    found = {u.email: u for u in User.objects.select_for_update().filter(email__in=valid)}
    member_of = dict(
        Membership.objects.filter(user__email__in=valid).values_list(
            "user__email", "organization__name"
        )
    )
    for email in valid:
        user = found.get(email)
        if user is None:
            message = f"{email} has not registered yet: every user must register first."
        elif user.is_banned:
            message = banned_join_error(email)
        elif user.terms_accepted_at is None:
            message = f"{email} has not accepted the terms and conditions."
        elif email in member_of:
            message = f"{email} already belongs to the organization “{member_of[email]}”."
        else:
            continue
        _add_error(errors, field_of(email), message)
    return found
