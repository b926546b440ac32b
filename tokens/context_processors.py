"""What the app shell needs on every page: the viewer's organization and role."""

from accounts.models import Membership
from tokens.selectors import pending_request_count, unread_notification_count


def shell(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    membership = getattr(request, "membership", None)
    if membership is None:
        membership = Membership.objects.select_related("organization").filter(user=user).first()
    can_view = bool(membership and membership.can_view_panel)
    panel_nav = can_view and request.path.startswith("/panel/")
    return {
        "shell_membership": membership,
        "shell_is_org_admin": can_view,  # the Admin Panel link: admins and auditors
        "shell_can_edit": bool(membership and membership.is_admin),
        "panel_nav": panel_nav,
        "shell_pending_requests": _pending_badge(request, membership) if panel_nav else 0,
        # A callable: a template that shows no bell (a fragment) costs no query.
        "shell_unread_notifications": lambda: unread_badge(request),
    }


def unread_badge(request) -> int:
    """The header bell's unread count: one COUNT per request, however many templates ask;
    a view that just marked notifications read calls `forget_unread_badge` first."""
    if not hasattr(request, "_shell_unread"):
        request._shell_unread = unread_notification_count(request.user)
    return request._shell_unread


def forget_unread_badge(request) -> None:
    request.__dict__.pop("_shell_unread", None)


def _pending_badge(request, membership) -> int:
    """The sidebar's Token Requests badge: one COUNT per request, however many templates
    (table cells render with a RequestContext too) ask for it."""
    if not hasattr(request, "_shell_pending_requests"):
        request._shell_pending_requests = pending_request_count(membership.organization)
    return request._shell_pending_requests
