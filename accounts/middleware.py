"""Ends the session of a user who was banned after logging in."""

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.urls import reverse

from accounts.mfa import mfa_required_for, session_verified


class BannedUserLogoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_banned:
            logout(request)
            messages.error(request, "Your account has been banned. Contact your administrator.")
            return redirect("accounts:login")
        return self.get_response(request)


class StaffSecondFactorMiddleware:
    """Sales staff reach Django admin (/staff/) only once their session passed the second factor.

    The Admin Panel's own check lives in `org_admin_required`, which already has the
    membership at hand.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            request.path.startswith("/staff/")
            and user is not None
            and user.is_authenticated
            and user.is_staff
            and not session_verified(request)
            and mfa_required_for(user)
        ):
            return redirect_to_login(request.get_full_path(), reverse("accounts:mfa"))
        return self.get_response(request)
