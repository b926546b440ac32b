"""What the app shell needs on every page: the viewer's organization and role."""

from accounts.models import Membership


def shell(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    membership = getattr(request, "membership", None)
    if membership is None:
        membership = Membership.objects.select_related("organization").filter(user=user).first()
    is_admin = bool(membership and membership.is_admin)
    return {
        "shell_membership": membership,
        "shell_is_org_admin": is_admin,
        "panel_nav": is_admin and request.path.startswith("/panel/"),
    }
