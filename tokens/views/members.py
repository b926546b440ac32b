"""User Management's people: invitations (send, resend, revoke), a member's role, removal.

Admins only (`org_admin_required`: auditors get 403 on every POST); every object is looked up
through `request.org`, so another organization's ids answer 404.
"""

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.decorators import org_admin_required
from accounts.http import PanelRequest
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.htmx import respond
from asksage_admin.lib.http import client_ip
from tokens.forms import ConfirmForm, InviteForm, RoleForm, add_domain_errors
from tokens.models import Invitation
from tokens.services import invitations as invitation_services
from tokens.services import members as member_services
from tokens.views import user_page
from tokens.views._common import membership_or_404, refusal_text


def _whole_page(request: PanelRequest, **extra) -> dict:
    """The User Management page as a GET would show it, plus what the answer adds."""
    context = user_page.workspace(
        request, active="users", **user_page.table_context(request, request.GET)
    )
    context.update(user_page.invitations_context(request), **extra)
    return context


def _answer_invitations(
    request: PanelRequest, *, form: InviteForm | None = None, ok: str = "", error: str = ""
) -> HttpResponse:
    def context() -> dict:
        section = user_page.invitations_context(
            request, form=form, notice=error or ok, ok=not error
        )
        return _whole_page(request, **section) if error and not request.htmx else section

    return respond(
        request,
        template=user_page.PAGE,
        fragment="invitations",
        context=context,
        redirect_to=reverse("tokens:users"),
        ok=ok,
        error=error,
        page_on_error=True,  # the typed address stays beside its error
    )


@require_POST
@org_admin_required
def invite(request: PanelRequest) -> HttpResponse:
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _answer_invitations(request, form=form, error=refusal_text(form))
    try:
        invitation = invitation_services.invitation_create(
            admin=request.user,
            org=request.org,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            ip=client_ip(request),
        )
    except DomainError as exc:
        add_domain_errors(form, exc)
        return _answer_invitations(request, form=form, error=refusal_text(exc))
    return _answer_invitations(
        request,
        ok=f"Invitation sent to {invitation.email}: the link works once and expires in "
        f"{settings.INVITATION_TTL_HOURS} hours.",
    )


def _invitation_or_404(request: PanelRequest, invitation_id: int) -> Invitation:
    return get_object_or_404(Invitation, organization=request.org, pk=invitation_id)


@require_POST
@org_admin_required
def invitation_resend(request: PanelRequest, invitation_id: int) -> HttpResponse:
    invitation = _invitation_or_404(request, invitation_id)
    try:
        invitation_services.invitation_resend(
            admin=request.user, org=request.org, invitation_id=invitation.pk, ip=client_ip(request)
        )
    except DomainError as exc:
        return _answer_invitations(request, error=refusal_text(exc))
    return _answer_invitations(
        request, ok=f"Sent a new link to {invitation.email}; the previous one no longer works."
    )


@require_POST
@org_admin_required
def invitation_revoke(request: PanelRequest, invitation_id: int) -> HttpResponse:
    invitation = _invitation_or_404(request, invitation_id)
    try:
        invitation_services.invitation_revoke(
            admin=request.user, org=request.org, invitation_id=invitation.pk, ip=client_ip(request)
        )
    except DomainError as exc:
        return _answer_invitations(request, error=refusal_text(exc))
    return _answer_invitations(request, ok=f"Revoked the invitation to {invitation.email}.")


def _answer_table(request: PanelRequest, *, ok: str = "", error: str = "") -> HttpResponse:
    """The user table (and the pool summary, out of band) after a role change or a removal."""
    return respond(
        request,
        template=user_page.PAGE,
        fragment=("user-table", "workspace-oob"),
        context=lambda: user_page.after_post(request, table_error=error, table_notice=ok),
        redirect_to=user_page.table_url(request),
        ok=ok,
        error=error,
    )


@require_POST
@org_admin_required
def member_role(request: PanelRequest, user_id: int) -> HttpResponse:
    membership = membership_or_404(request, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _answer_table(request, error=refusal_text(form))
    try:
        membership = member_services.member_role_set(
            admin=request.user,
            org=request.org,
            membership=membership,
            role=form.cleaned_data["role"],
            ip=client_ip(request),
        )
    except DomainError as exc:
        return _answer_table(request, error=refusal_text(exc))
    who = membership.user.get_full_name()
    return _answer_table(request, ok=f"{who} is now {membership.get_role_display().lower()}.")


@require_POST
@org_admin_required
def member_remove(request: PanelRequest, user_id: int) -> HttpResponse:
    """Remove a member (soft: see `member_services.member_remove`); without JavaScript a
    confirmation page comes first, as for a ban."""
    membership = membership_or_404(request, user_id)
    form = ConfirmForm(request.POST)
    confirmed = form.is_valid() and form.cleaned_data["confirmed"]
    if not request.htmx and not confirmed:
        return render(
            request,
            "tokens/confirm_remove.html",
            {"u": membership.user, "active": "users", "next": user_page.table_url(request)},
        )
    who = f"{membership.user.get_full_name()} ({membership.user.email})"
    try:
        member_services.member_remove(
            admin=request.user, org=request.org, membership=membership, ip=client_ip(request)
        )
    except DomainError as exc:
        return _answer_table(request, error=refusal_text(exc))
    return _answer_table(
        request,
        ok=f"Removed {who}: their allocation is back in the pool, their account is disabled "
        "and their history is kept.",
    )
