"""SCIM's writes: each in one transaction, checked by the account's rules, audited with the
token as the actor.

Deactivation (`active: false`, DELETE) keeps the membership and bans the user: the account
cannot log in, its sessions end, the usage API refuses it, and its data stays. Keeping the
membership (rather than `member_remove`, which deletes it) is what lets re-activation be a
plain unban that finds the person with their role and allocation as they were; a deleted
membership would have to pass the pool check again and could fail where the IdP expects a
simple toggle.
"""

from django.db import transaction
from django.db.models import Q

from accounts.models import Membership, Organization, User
from accounts.services import organization_lock, user_email_errors, user_sessions_end
from audit.services import audit_record
from tokens.models import ApiKey
from tokens.organizations import membership_batch_errors, new_member_pool_errors
from tokens.scim.auth import actor_label
from tokens.scim.errors import ScimError


def _audit(key: ApiKey, action: str, user: User, **details) -> None:
    audit_record(
        action=action,
        organization=key.organization,
        actor_label=actor_label(key),
        target_user=user,
        ip=details.pop("ip", None),
        via="scim",
        **details,
    )


@transaction.atomic
def scim_user_create(
    *, key: ApiKey, email: str, name: str, active: bool = True, ip: str | None = None
) -> Membership:
    """A new user and their membership at the organization's floors, from the unallocated
    pool. An address that already has an account is a 409 whichever organization holds it
    (naming that organization would tell one IdP about another's users)."""
    org = organization_lock(key.organization)
    if errors := user_email_errors(email):
        status, kind = (
            (409, "uniqueness") if "already exists" in errors[0] else (400, "invalidValue")
        )
        raise ScimError(status, errors[0].replace("A user with the email", "The userName"), kind)
    if errors := new_member_pool_errors(org, [email.strip().lower()]):
        raise ScimError(409, " ".join(errors))
    user = User.objects.create_user(
        email=email.strip(), password=None, name=(name.strip() or email.strip())[:150]
    )
    _audit(key, "user.created", user, ip=ip)
    membership = Membership.objects.create(
        user=user,
        organization=org,
        role=Membership.Role.MEMBER,
        max_inference_tokens=org.min_inference_tokens,
        max_embedding_tokens=org.min_embedding_tokens,
    )
    _audit(key, "membership.added", user, role=membership.role, ip=ip)
    if not active:
        _set_banned(key, membership, True, ip)
    return membership


def _set_banned(key: ApiKey, membership: Membership, banned: bool, ip: str | None) -> None:
    user = User.objects.select_for_update().get(pk=membership.user_id)
    if user.is_banned == banned:
        return
    if banned and membership.role == Membership.Role.ADMIN and not _other_active_admin(membership):
        raise ScimError(
            409, f"{user.email} is the organization's only active admin: it needs at least 1."
        )
    user.is_banned = banned
    user.save(update_fields=["is_banned"])
    _audit(key, "user.banned", user, column="banned", old=not banned, new=banned, ip=ip)
    if banned:
        user_sessions_end(user=user)
    membership.user = user


def _other_active_admin(membership: Membership) -> bool:
    return (
        Membership.objects.filter(organization_id=membership.organization_id, role="admin")
        .filter(~Q(pk=membership.pk), user__is_banned=False)
        .exists()
    )


@transaction.atomic
def scim_user_update(
    *, key: ApiKey, membership: Membership, changes: dict, ip: str | None = None
) -> Membership:
    """Apply `userName`, `name` (display) and `active` changes to one of the org's users."""
    organization_lock(key.organization)
    membership = Membership.objects.select_for_update(of=("self",)).get(pk=membership.pk)
    user = User.objects.select_for_update().get(pk=membership.user_id)
    fields = []
    if "email" in changes and changes["email"].strip().lower() != user.email:
        if errors := user_email_errors(changes["email"], exclude=user):
            raise ScimError(409 if "already exists" in errors[0] else 400, errors[0])
        _audit(
            key, "user.updated", user, column="email", old=user.email, new=changes["email"], ip=ip
        )
        user.email = changes["email"]
        fields.append("email")
    if "name" in changes and changes["name"].strip() and changes["name"].strip() != user.name:
        new = changes["name"].strip()[:150]
        _audit(key, "user.updated", user, column="name", old=user.name, new=new, ip=ip)
        user.name = new
        fields.append("name")
    if fields:
        user.save(update_fields=fields)
    membership.user = user
    if "active" in changes:
        _set_banned(key, membership, not changes["active"], ip)
    return membership


@transaction.atomic
def scim_role_set(
    *, key: ApiKey, membership: Membership, role: str, ip: str | None = None
) -> Membership:
    """A group change: the member's role, within the account's rules (≥ 1 admin stays)."""
    org: Organization = organization_lock(key.organization)
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .get(pk=membership.pk)
    )
    if membership.role == role:
        return membership
    if errors := membership_batch_errors(org=org, set_roles=[(membership, role)]):
        raise ScimError(409, " ".join(errors))
    old, membership.role = membership.role, role
    membership.save(update_fields=["role"])
    _audit(key, "membership.role", membership.user, column="role", old=old, new=role, ip=ip)
    return membership
