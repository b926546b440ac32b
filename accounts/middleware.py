"""Ends the session of a user who was banned after logging in; sends staff to their second
factor before /staff/; asks a user who never accepted the terms to accept them first."""

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

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


# What a user who has not accepted the terms may still open: the terms page itself, leaving,
# the invitation link (it asks for the terms itself) and the files the pages load.
TERMS_FREE = ("/accounts/terms/", "/accounts/logout/", "/invitations/", "/static/")


class TermsRequiredMiddleware:
    """Someone created without registering (by SCIM or by sales) has not accepted the terms:
    their first signed-in request goes to the terms page, which then continues to where they
    were going. Registration asks for the terms, so registered users never see it; staff,
    the platform's own people, are not asked."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.terms_accepted_at is None
            and not user.is_staff
            and not request.path.startswith(TERMS_FREE)
        ):
            url = reverse("accounts:terms") + "?" + urlencode({"next": request.get_full_path()})
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(url)
            return redirect(url)
        return self.get_response(request)
