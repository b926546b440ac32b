"""Ends the session of a user who was banned after logging in."""

from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect


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
