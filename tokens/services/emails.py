"""The mail that token writes send, one function per kind.

Each renders templates/emails/<kind>.{subject.txt,txt,html} with absolute links from
SITE_URL and stores it in the outbox (`tokens.mail.email_queue`) inside the write's
transaction; the `send_email` task sends it after the commit, with retries. A rolled-back
write sends nothing.
"""

from accounts.models import Organization, User
from tokens.alerts import admin_emails
from tokens.mail import absolute_url, email_queue
from tokens.models import Invitation, Purchase, PurchaseRequest, TokenRequest


def home_url() -> str:
    """The members' home page, absolute."""
    return absolute_url("member:home")


def request_to_admins(*, org: Organization, token_request: TokenRequest) -> None:
    email_queue(
        kind="request_to_admins",
        to=admin_emails(org),
        organization=org,
        context={"request": token_request, "requests_url": absolute_url("tokens:requests")},
    )


def request_approved(
    *, token_request: TokenRequest, amount: int, new_max: int, actor: User | None, note: str
) -> None:
    email_queue(
        kind="request_approved",
        to=[token_request.user.email],
        organization=token_request.organization,
        context={
            "request": token_request,
            "amount": amount,
            "smaller": amount < token_request.amount,
            "new_max": new_max,
            "actor": actor,
            "note": note,
            "home_url": home_url(),
        },
    )


def request_denied(*, token_request: TokenRequest, admin: User, note: str) -> None:
    email_queue(
        kind="request_denied",
        to=[token_request.user.email],
        organization=token_request.organization,
        context={"request": token_request, "admin": admin, "note": note, "home_url": home_url()},
    )


def usage_alert(
    *, org: Organization, user: User, kind: str, top: int, used: int, current: int
) -> None:
    email_queue(
        kind="usage_alert",
        to=[user.email, *admin_emails(org)],
        organization=org,
        context={
            "user": user,
            "kind": kind,
            "top": top,
            "used": used,
            "current": current,
            "percent": used * 100 // current,
            "home_url": home_url(),
            "users_url": absolute_url("tokens:users"),
        },
    )


def purchase_request_to_sales(*, org: Organization, admin: User, request: PurchaseRequest) -> None:
    sales = User.objects.filter(is_staff=True, is_active=True, is_banned=False).order_by("email")
    email_queue(
        kind="purchase_request_to_sales",
        to=sales.values_list("email", flat=True),
        organization=org,
        context={
            "org": org,
            "admin": admin,
            "request": request,
            "staff_url": absolute_url("admin:tokens_purchaserequest_changelist"),
        },
    )


def purchase_recorded(*, request: PurchaseRequest, purchase: Purchase) -> None:
    email_queue(
        kind="purchase_recorded",
        to=[request.requested_by.email],
        organization=request.organization,
        context={
            "request": request,
            "purchase": purchase,
            "distribution_url": absolute_url("tokens:distribution"),
        },
    )


def invitation(*, invitation: Invitation, raw_token: str) -> None:
    """The link to join, carrying the secret the database keeps only a hash of."""
    email_queue(
        kind="invitation",
        to=[invitation.email],
        organization=invitation.organization,
        context={
            "invitation": invitation,
            "org": invitation.organization,
            "inviter": invitation.invited_by,
            "accept_url": absolute_url("member:invitation", raw_token),
        },
    )
