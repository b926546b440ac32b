"""tokens' receivers of the layer below's events (connected in `TokensConfig.ready`)."""

from django.dispatch import receiver

from accounts.models import Membership
from accounts.services import user_banned_changed
from tokens.services.deactivation import allocation_after_ban, allocation_after_unban


@receiver(user_banned_changed, dispatch_uid="allocation_follows_ban")
def allocation_follows_ban(sender, *, actor, org, user, banned: bool, ip=None, **kwargs) -> None:
    """Whoever bans through `accounts.services.user_set_flag` (the panel's toggle, the Banned
    box in /staff/) moves the allocation by the organization's policy, in their transaction,
    with them as the actor. A removed member (no membership left) has nothing to move."""
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .filter(user=user, organization=org)
        .first()
    )
    if membership is None:
        return
    after = allocation_after_ban if banned else allocation_after_unban
    after(actor=actor, org=org, membership=membership, user=user, ip=ip)
