"""The notifications page behind the header's bell: the user's own notifications, marked
read one by one or all at once (htmx, or plain POST-redirect-GET without JavaScript).

For every logged-in user (members, admins, auditors, staff): a notification belongs to its
recipient, never to an organization's page, so another person's id answers 404.
"""

from django.http import Http404, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import member_required
from accounts.http import AuthedRequest
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.htmx import page_or_partial, respond
from asksage_admin.lib.wording import counted
from tokens import selectors
from tokens.context_processors import forget_unread_badge
from tokens.services import notifications as notification_services

PAGE = "tokens/notifications.html"


def _context(request: AuthedRequest) -> dict:
    return {"notifications": list(selectors.notifications_for(request.user))}


@require_GET
@member_required
def notifications(request: AuthedRequest) -> HttpResponse:
    """The user's latest notifications, unread ones marked."""
    return page_or_partial(request, PAGE, "notification-list", _context(request))


def _answer(request: AuthedRequest, ok: str) -> HttpResponse:
    """The list again, and the bell's count out of band (its live region says the change)."""
    forget_unread_badge(request)
    return respond(
        request,
        template=PAGE,
        fragment=("notification-list", "bell-count-oob"),
        context=lambda: {**_context(request), "notice": ok},
        redirect_to=reverse("member:notifications"),
        ok=ok,
    )


@require_POST
@member_required
def notification_read(request: AuthedRequest, notification_id: int) -> HttpResponse:
    """Mark one of the user's notifications read."""
    try:
        notification_services.notification_mark_read(
            user=request.user, notification_id=notification_id
        )
    except DomainError as exc:
        raise Http404("No such notification.") from exc
    return _answer(request, "Marked as read.")


@require_POST
@member_required
def notifications_read_all(request: AuthedRequest) -> HttpResponse:
    """Mark every unread notification of the user read."""
    n = notification_services.notifications_mark_all_read(user=request.user)
    return _answer(
        request, f"Marked {counted(n, 'notification')} as read." if n else "Nothing was unread."
    )
