"""The mail that token writes send, composed in one place.

Each is queued with `tokens.alerts.email_later`, which sends after the transaction commits
(until a task queue replaces it): a rolled-back write sends nothing.
"""

from django.conf import settings

from accounts.models import Organization, User
from tokens.alerts import admin_emails, email_later
from tokens.models import Purchase, PurchaseRequest, TokenRequest


def home_url() -> str:
    return settings.SITE_URL.rstrip("/") + "/" if getattr(settings, "SITE_URL", "") else "/"


def request_to_admins(*, org: Organization, token_request: TokenRequest) -> None:
    user, amount, kind = token_request.user, token_request.amount, token_request.kind
    email_later(
        to=admin_emails(org),
        subject=f"Token request from {user.get_full_name()}: {amount:,} {kind} tokens",
        body=(
            f"{user.get_full_name()} ({user.email}) asks for {amount:,} more {kind} "
            f"tokens (their max is {token_request.current_max:,}).\n\n"
            f"Reason: {token_request.reason}\n\nDecide in the Admin Panel under Token Requests."
        ),
    )


def request_approved(
    *, token_request: TokenRequest, amount: int, new_max: int, actor: User | None, note: str
) -> None:
    kind = token_request.kind
    smaller = f" (you asked for {token_request.amount:,})" if amount < token_request.amount else ""
    email_later(
        to=[token_request.user.email],
        subject=f"Your request for {kind} tokens was approved",
        body=(
            f"Hello {token_request.user.get_short_name()},\n\n"
            f"Your request was approved: {amount:,} {kind} tokens were added{smaller}. "
            f"Your monthly max is now {new_max:,}.\n"
            + (f"\nNote from {actor.get_full_name()}: {note}\n" if actor and note else "")
            + f"\nSee your limits at {home_url()}\n"
        ),
    )


def request_denied(*, token_request: TokenRequest, admin: User, note: str) -> None:
    email_later(
        to=[token_request.user.email],
        subject=f"Your request for {token_request.kind} tokens was denied",
        body=(
            f"Hello {token_request.user.get_short_name()},\n\n"
            f"Your request for {token_request.amount:,} {token_request.kind} tokens was "
            f"denied by {admin.get_full_name()}.\n\nNote: {note}\n\n"
            f"Your limits are unchanged. See them at {home_url()}\n"
        ),
    )


def usage_alert(
    *, org: Organization, user: User, kind: str, top: int, used: int, current: int
) -> None:
    percent = used * 100 // current
    email_later(
        to=[user.email, *[e for e in admin_emails(org) if e != user.email]],
        subject=f"{user.get_full_name()} has used {top} % of their {kind} tokens",
        body=(
            f"{user.get_full_name()} ({user.email}) has used {used:,} of {current:,} {kind} "
            f"tokens this month ({percent} %).\n\n"
            "Members can ask for more from their home page; admins can raise the max under "
            "User Management or Token Distribution.\n"
        ),
    )


def purchase_request_to_sales(*, org: Organization, admin: User, request: PurchaseRequest) -> None:
    sales = User.objects.filter(is_staff=True, is_active=True, is_banned=False).order_by("email")
    email_later(
        to=list(sales.values_list("email", flat=True)),
        subject=f"{org.name} asks for {request.tokens:,} more {request.kind} tokens a month",
        body=f"{admin.get_full_name()} ({admin.email}) asks for {request.blocks} block(s).\n\n"
        f"Note: {request.note or '—'}\n\nAnswer it in the sales admin under Purchase requests.\n",
    )


def purchase_recorded(*, request: PurchaseRequest, purchase: Purchase) -> None:
    email_later(
        to=[request.requested_by.email],
        subject=f"Your purchase of {request.tokens:,} {request.kind} tokens is recorded",
        body=(
            f"Sales recorded {request.tokens:,} more {request.kind} tokens a month for "
            f"{request.organization.name}, from {purchase.start_month:%Y-%m}.\n"
        ),
    )
