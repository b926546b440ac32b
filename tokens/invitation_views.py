"""The invitation link's page: register (or log in), accept the terms, join the organization.

Open to anyone holding the link (its secret is the proof that they read the invited mailbox);
an unknown link answers 404, a used, revoked or expired one 410 with words, an address that
cannot join (another organization's, a disabled account) 409, someone signed in under
another address 403. In tokens, not accounts: joining takes the floors from the pools.
"""

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedRequest
from accounts.models import User
from asksage_admin.lib.access_log import secret_in_path
from asksage_admin.lib.errors import DomainError
from tokens.forms import InvitationAcceptForm, InvitationRegisterForm, add_domain_errors
from tokens.services import invitations as invitation_services

PAGE = "tokens/invitation.html"


def _refused(request: AuthedRequest, text: str, status: int, invitation=None) -> HttpResponse:
    response = render(request, PAGE, {"refusal": text, "invitation": invitation}, status=status)
    response._has_been_logged = True  # django.request's warning would name the path (the secret)
    return response


@secret_in_path
@require_http_methods(["GET", "POST"])
def invitation_accept(request: AuthedRequest, token: str) -> HttpResponse:
    invitation = invitation_services.invitation_by_token(token)
    if invitation is None:
        return _refused(
            request, "This invitation link is not valid: check that the whole link was copied.", 404
        )
    if refusal := invitation_services.invitation_refusal(invitation):
        return _refused(request, refusal, 410, invitation)
    if refusal := invitation_services.invitee_refusal(invitation):
        return _refused(request, refusal, 409, invitation)
    user = request.user
    if user.is_authenticated and user.email.lower() != invitation.email.lower():
        return _refused(
            request,
            f"This invitation is for {invitation.email}, but you are signed in as {user.email}: "
            "log out, then open the link again.",
            403,
            invitation,
        )
    data = request.POST if request.method == "POST" else None  # an empty POST is still bound
    if user.is_authenticated:
        mode, form = "join", InvitationAcceptForm(data)
    elif User.objects.filter(email__iexact=invitation.email).exists():
        mode, form = "login", None
    else:
        mode, form = "register", InvitationRegisterForm(data)
    status = 200
    if request.method == "POST" and form is not None:
        if form.is_valid():
            try:
                _accept(request, mode, token, form.cleaned_data)
            except DomainError as exc:
                add_domain_errors(form, exc)
            else:
                org = invitation.organization
                messages.success(request, f"Welcome to {org.name}! You are now a member.")
                return redirect("member:home")
        status = 422
    context = {
        "invitation": invitation,
        "mode": mode,
        "form": form,
        "needs_terms": mode == "join" and user.terms_accepted_at is None,
        "login_url": f"{reverse('accounts:login')}?next={request.path}",
    }
    return render(request, PAGE, context, status=status)


def _accept(request: AuthedRequest, mode: str, token: str, data: dict) -> None:
    if mode == "join":
        invitation_services.invitation_accept(
            raw_token=token, user=request.user, accepted_terms=data["accept_terms"]
        )
        return
    user = invitation_services.invitation_accept_registering(
        raw_token=token,
        name=data["name"],
        password=data["password"],
        accepted_terms=data["accept_terms"],
    )
    login(request, user, backend="accounts.backends.EmailBackend")
