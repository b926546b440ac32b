"""What the panel pages share: the member lookup and turning refusals into words."""

from django import forms
from django.shortcuts import get_object_or_404

from accounts.http import PanelRequest
from accounts.models import Membership
from asksage_admin.lib.errors import DomainError


def membership_or_404(request: PanelRequest, user_id: int) -> Membership:
    """The org's member with this user id, or 404: another organization's ids never resolve."""
    return get_object_or_404(
        Membership.objects.select_related("user", "organization"),
        organization=request.org,
        user_id=user_id,
    )


def refusal_text(source: DomainError | forms.Form) -> str:
    """Every message of a refusal (a service's `DomainError` or an invalid form), one line."""
    if isinstance(source, DomainError):
        return " ".join(source.messages)
    return " ".join(str(m) for errors in source.errors.values() for m in errors)
