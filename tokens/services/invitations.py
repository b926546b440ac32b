"""Invitations: an org admin invites someone by email; the link lets them register (or log
in), accept the terms and join with the organization's floors.

The rules are provisioning's (`tokens.organizations`): the invitee is free to join (not in
another organization, not disabled), and the unallocated pool covers one more member's floors.
The pool and the admin's own organization are checked when inviting, so the admin hears at
once; everything is checked again when accepting, under the organization's lock, because the
pool or the person may have changed in between.

An address held by another organization, or by a disabled account, is invited exactly like a
new address: telling the admin would let any admin probe who uses the platform elsewhere. The
invitee alone hears it, on the link's page (`invitee_refusal`).

The link's secret is never stored: the row keeps its SHA-256, as API keys do. The rendered
email in the outbox (`EmailDelivery`) does hold the link until it is sent; that row is
visible to sales in /staff/, who may provision anyone anyway.
"""

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization, User
from accounts.services import organization_lock, user_register
from asksage_admin.lib.errors import DomainError
from audit.services import audit_record
from tokens.models import Invitation
from tokens.organizations import membership_add, new_member_pool_errors
from tokens.services import emails


def invitation_token_hash(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def _new_token() -> tuple[str, str]:
    raw = secrets.token_urlsafe(32)
    return raw, invitation_token_hash(raw)


def _expiry(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(hours=settings.INVITATION_TTL_HOURS)


def _invitee_errors(org: Organization, email: str) -> list[str]:
    """Why `email` cannot be invited to `org` now, in words (empty: it can)."""
    try:
        validate_email(email)
    except ValidationError:
        return [f"“{email}” is not a valid email address."]
    # Only the admin's own members are named: another organization's, or a disabled account,
    # must read as a stranger (see the module's docstring).
    if Membership.objects.filter(organization=org, user__email__iexact=email).exists():
        return [f"{email} already belongs to {org.name}."]
    waiting = Invitation.objects.filter(
        organization=org, email=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).first()
    if waiting is not None:
        state = "an expired" if waiting.status == Invitation.Status.EXPIRED else "a pending"
        return [f"{email} already has {state} invitation: resend it or revoke it instead."]
    return new_member_pool_errors(org, [email])


@transaction.atomic
def invitation_create(
    *, admin: User, org: Organization, email: str, role: str, ip: str | None = None
) -> Invitation:
    """Invite `email` to join `org` as `role`; emails the link after commit.

    The organization row is locked: two admins inviting the same address at once send one.
    """
    email = email.strip().lower()
    org = organization_lock(org)
    errors: dict[str, list[str]] = {}
    if role not in Membership.Role.values:
        errors["role"] = [f"Unknown role “{role}”: choose admin, auditor or member."]
    if problems := _invitee_errors(org, email):
        errors["email"] = problems
    if errors:
        raise DomainError(errors=errors)
    raw, hashed = _new_token()
    now = timezone.now()
    invitation = Invitation.objects.create(
        organization=org,
        email=email,
        role=role,
        token_hash=hashed,
        invited_by=admin,
        created_at=now,
        sent_at=now,
        expires_at=_expiry(now),
    )
    audit_record(
        action="invitation.sent",
        organization=org,
        actor=admin,
        column="role",
        new=role,
        ip=ip,
        email=email,
        expires_at=invitation.expires_at.isoformat(timespec="minutes"),
    )
    emails.invitation(invitation=invitation, raw_token=raw)
    return invitation


def _open_invitation_lock(org: Organization, invitation_id: int) -> Invitation:
    """The org's invitation, locked (its row only), still open to resend or revoke."""
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .filter(organization=org, pk=invitation_id)
        .first()
    )
    if invitation is None:
        raise DomainError("That invitation does not exist.")
    if invitation.accepted_at is not None:
        raise DomainError(f"{invitation.email} already accepted this invitation.")
    if invitation.revoked_at is not None:
        raise DomainError(f"The invitation to {invitation.email} was already revoked.")
    return invitation


@transaction.atomic
def invitation_resend(
    *, admin: User, org: Organization, invitation_id: int, ip: str | None = None
) -> Invitation:
    """Send a new link (the old one stops working) valid for a full lifetime from now."""
    invitation = _open_invitation_lock(org, invitation_id)
    raw, invitation.token_hash = _new_token()
    invitation.sent_at = timezone.now()
    invitation.expires_at = _expiry(invitation.sent_at)
    invitation.save(update_fields=["token_hash", "sent_at", "expires_at"])
    audit_record(
        action="invitation.resent",
        organization=org,
        actor=admin,
        ip=ip,
        email=invitation.email,
        expires_at=invitation.expires_at.isoformat(timespec="minutes"),
    )
    emails.invitation(invitation=invitation, raw_token=raw)
    return invitation


@transaction.atomic
def invitation_revoke(
    *, admin: User, org: Organization, invitation_id: int, ip: str | None = None
) -> Invitation:
    invitation = _open_invitation_lock(org, invitation_id)
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        action="invitation.revoked", organization=org, actor=admin, ip=ip, email=invitation.email
    )
    return invitation


def invitation_by_token(raw_token: str) -> Invitation | None:
    """The invitation a link points at, whatever its state (None: no such link)."""
    return (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=invitation_token_hash(raw_token or ""))
        .first()
    )


def invitation_refusal(invitation: Invitation) -> str:
    """Why this link can no longer be used, in words; "" while it can."""
    org = invitation.organization
    status = invitation.status
    if status == Invitation.Status.ACCEPTED:
        return "This invitation has already been used: each link works once."
    if status == Invitation.Status.REVOKED:
        return f"This invitation was revoked by an administrator of {org.name}."
    if status == Invitation.Status.EXPIRED:
        return (
            f"This invitation expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC: "
            f"ask an administrator of {org.name} to send it again."
        )
    if not org.is_active:
        return f"{org.name} is not active at the moment, so it cannot take new members."
    if not _inviter_still_admin(invitation):
        # An admin removed or demoted since must not keep a way back in through their links.
        return (
            f"The administrator who sent this invitation no longer administers {org.name}: "
            "ask a current administrator to invite you again."
        )
    return ""


def invitee_refusal(invitation: Invitation) -> str:
    """Why the invited address cannot join, said to the invitee only (the link's holder);
    "" while it can. The inviting admin was not told (see the module's docstring)."""
    org = invitation.organization
    user = User.objects.filter(email__iexact=invitation.email).first()
    if user is None:
        return ""
    if user.is_banned or not user.is_active:
        return (
            f"The account of {invitation.email} is disabled, so it cannot join {org.name}: "
            "ask the platform's sales team to restore it, then open this link again."
        )
    membership = Membership.objects.filter(user=user).first()
    if membership is not None and membership.organization_id != org.pk:
        return (
            "This address already belongs to another organization, and an account can belong "
            "to only one: ask that organization's administrators to remove you, "
            f"or ask {org.name}'s administrator to invite another address."
        )
    if membership is not None:
        return f"You are already a member of {org.name}."
    return ""


def _inviter_still_admin(invitation: Invitation) -> bool:
    return Membership.objects.filter(
        user_id=invitation.invited_by_id,
        organization_id=invitation.organization_id,
        role=Membership.Role.ADMIN,
        user__is_banned=False,
    ).exists()


def _locked_usable(raw_token: str) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organization")
        .filter(token_hash=invitation_token_hash(raw_token or ""))
        .first()
    )
    if invitation is None:
        raise DomainError("This invitation link is not valid.")
    if refusal := invitation_refusal(invitation) or invitee_refusal(invitation):
        raise DomainError(refusal)
    return invitation


def _join(invitation: Invitation, user: User) -> Membership:
    """The invitee becomes a member at the floors (refused if the pool cannot cover them)."""
    membership = membership_add(
        actor=user, org=invitation.organization, user=user, role=invitation.role
    )
    invitation.accepted_at, invitation.accepted_by = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        action="invitation.accepted",
        organization=invitation.organization,
        actor=user,
        target_user=user,
        column="role",
        new=invitation.role,
        invited_by=invitation.invited_by_id,
    )
    return membership


@transaction.atomic
def invitation_accept(*, raw_token: str, user: User, accepted_terms: bool) -> Membership:
    """A registered, signed-in user accepts the invitation sent to their address.

    The invitation row is locked first: the same link opened twice joins once.
    """
    invitation = _locked_usable(raw_token)
    if user.email.lower() != invitation.email.lower():
        raise DomainError(
            f"This invitation is for {invitation.email}, but you are signed in as "
            f"{user.email}: log out and open the link again."
        )
    if user.terms_accepted_at is None:
        if not accepted_terms:
            raise DomainError(
                errors={"accept_terms": ["You must accept the terms and conditions."]}
            )
        user.terms_accepted_at = timezone.now()
        user.save(update_fields=["terms_accepted_at"])
    return _join(invitation, user)


@transaction.atomic
def invitation_accept_registering(
    *, raw_token: str, name: str, password: str, accepted_terms: bool
) -> User:
    """Someone without an account registers with the invited address and joins, at once.

    One transaction: if joining is refused (the pool), no account is left behind.
    """
    invitation = _locked_usable(raw_token)
    user = user_register(
        email=invitation.email, name=name, password=password, accepted_terms=accepted_terms
    )
    _join(invitation, user)
    return user
