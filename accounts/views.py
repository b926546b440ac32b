"""Registration, the member's home page and the shell's closed-organization page."""

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpResponse
from django.shortcuts import redirect, render

from accounts import selectors, services
from accounts.decorators import member_required
from accounts.forms import RegistrationForm
from accounts.http import AuthedRequest
from asksage_admin.lib.errors import DomainError


def register(request: AuthedRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:home")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            data = form.cleaned_data
            user = services.user_register(
                email=data["email"],
                name=data["name"],
                password=data["password"],
                accepted_terms=data["accept_terms"],
            )
        except DomainError as exc:
            for field, errors in exc.errors.items():
                for error in errors:
                    form.add_error(None if field == "__all__" else field, error)
        else:
            login(request, user, backend="accounts.backends.EmailBackend")
            messages.success(request, "Welcome! Your account is ready.")
            return redirect("accounts:home")
    return render(request, "registration/register.html", {"form": form})


@member_required
def home(request: AuthedRequest) -> HttpResponse:
    """A member's own limits and usage."""
    context = selectors.member_home(request.user, request.membership)
    return render(request, "accounts/home.html", context)
