"""Tenant scoping in one place: the organization always comes from the logged-in user."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse

from accounts.mfa import mfa_required_for, session_verified
from accounts.models import AUDITOR_READ_ONLY, Membership


def _membership(request) -> Membership | None:
    return Membership.objects.select_related("organization").filter(user=request.user).first()


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def org_admin_required(view: Callable) -> Callable:
    """Anonymous → login; not an admin of an organization → 403; inactive org → closed page.

    Read-only auditors pass for safe methods only: every write path (POST, …) answers them
    403, whatever the view, so a new view cannot forget the rule.
    Sets `request.org`, `request.membership` and `request.can_edit`; views must look objects
    up through `request.org` so another organization's ids answer 404.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = _membership(request)
        if membership is None or not membership.can_view_panel:
            return render(request, "403.html", status=403)
        if not session_verified(request) and mfa_required_for(request.user, membership):
            return redirect_to_login(request.get_full_path(), reverse("accounts:mfa"))
        if not membership.is_admin and request.method not in SAFE_METHODS:
            return render(request, "403.html", {"reason": AUDITOR_READ_ONLY}, status=403)
        if not membership.organization.is_active:
            return render(
                request, "accounts/org_closed.html", {"org": membership.organization}, status=403
            )
        request.membership = membership
        request.org = membership.organization
        request.can_edit = membership.is_admin
        return view(request, *args, **kwargs)

    return wrapper


def member_required(view: Callable) -> Callable:
    """Logged-in user; sets `request.membership` (None when not in an organization)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        request.membership = _membership(request)
        request.org = request.membership.organization if request.membership else None
        return view(request, *args, **kwargs)

    return wrapper
