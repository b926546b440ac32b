"""An org admin re-roles or removes a member from the Admin Panel.

Provisioning's rules apply (`tokens.organizations`: at least 2 users and 1 admin stay), plus
the panel's own: an admin changes neither their own role nor their own membership (another
admin does), so no one locks themselves out by a slip.
"""

from django.db import transaction

from accounts.models import Membership, Organization, User
from accounts.services import organization_lock, user_set_flag
from asksage_admin.lib.errors import DomainError
from tokens.organizations import membership_remove, membership_set_role


def _not_yourself(admin: User, membership: Membership, what: str) -> None:
    if membership.user_id == admin.pk:
        raise DomainError(f"You cannot {what} yourself: ask another admin of your organization.")


@transaction.atomic
def member_role_set(
    *, admin: User, org: Organization, membership: Membership, role: str, ip: str | None = None
) -> Membership:
    if membership.organization_id != org.pk:
        raise DomainError("That user is not a member of your organization.")
    _not_yourself(admin, membership, "change the role of")
    if role not in Membership.Role.values:
        raise DomainError(f"Unknown role “{role}”: choose admin, auditor or member.")
    return membership_set_role(actor=admin, membership=membership, role=role, ip=ip)


@transaction.atomic
def member_remove(
    *, admin: User, org: Organization, membership: Membership, ip: str | None = None
) -> User:
    """Remove a member: soft, nothing is deleted but the membership.

    The allocation goes back to the pool (the membership row that held it goes), the person's
    account is disabled with the existing Banned flag (they cannot log in; their sessions end;
    the usage API refuses them), and their usage, requests and audit trail stay.
    """
    if membership.organization_id != org.pk:
        raise DomainError("That user is not a member of your organization.")
    _not_yourself(admin, membership, "remove")
    user = membership.user
    membership_remove(actor=admin, membership=membership)
    return user_set_flag(actor=admin, org=org, user=user, flag="is_banned", value=True, ip=ip)


@transaction.atomic
def member_banned_set(
    *, admin: User, org: Organization, membership: Membership, value: bool, ip: str | None = None
) -> User:
    """The panel's Banned toggle: the flag, and with it (`tokens.signals`) the allocation the
    organization's policy gives (returned to the pool, or raised back to the floors on un-ban
    — refused, nothing changed, when the pool cannot cover them). The organization row is
    locked as for any allocation write."""
    org = organization_lock(org)
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .filter(pk=membership.pk, organization=org)
        .first()
    )
    if membership is None:
        raise DomainError("That user is not a member of your organization.")
    return user_set_flag(
        actor=admin, org=org, user=membership.user, flag="is_banned", value=value, ip=ip
    )
