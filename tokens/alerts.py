"""Alert emails: the month's "once" ledger, and the unallocated-pool alert.

Below `tokens.services` and `accounts.services`, so every write that lowers an organization's
unallocated pool can ask for the check (`pool_alert_after_commit`): an allocation batch of
any source (table, undo, request, policy, distribution: all go through
`tokens.services.allocations.apply_changes`) and a member added by sales
(`tokens.organizations.membership_add`: new members start at the organization's floors).
"""

import logging

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Membership, Organization
from asksage_admin.lib.months import current_month
from audit.services import audit_record
from tokens.mail import absolute_url, email_queue
from tokens.models import AlertSent
from tokens.selectors import policy_for, unallocated


def admin_emails(org: Organization) -> list[str]:
    return list(
        Membership.objects.filter(organization=org, role=Membership.Role.ADMIN)
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )


def alerts_once(org: Organization, keys: list[str]) -> list[str]:
    """Record alerts as sent this month; returns the keys that were not already, in order.

    One INSERT … ON CONFLICT DO NOTHING RETURNING (PostgreSQL and SQLite alike): the unique
    constraint decides which alerts are new, race-free, where a get_or_create per key cost
    four queries each (read, savepoint, insert, release) on the path usage alerts take.
    """
    if not keys:
        return []
    ops = connection.ops
    month = ops.adapt_datefield_value(current_month())
    now = ops.adapt_datetimefield_value(timezone.now())
    table = AlertSent._meta.db_table
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(keys))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (organization_id, month, key, created_at) VALUES {rows} "
            "ON CONFLICT (organization_id, month, key) DO NOTHING RETURNING key",
            [value for key in keys for value in (org.pk, month, key, now)],
        )
        fresh = {key for (key,) in cursor.fetchall()}
    return [key for key in keys if key in fresh]


logger = logging.getLogger(__name__)


class _PoolCheck:
    """An on-commit callback checking one organization's pool of one kind; equal callbacks
    are one check, so a transaction checks each pool once whatever it wrote."""

    def __init__(self, org_id: int, kind: str):
        self.key = (org_id, kind)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _PoolCheck) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __call__(self) -> None:
        org_id, kind = self.key
        with transaction.atomic():
            org = Organization.objects.filter(pk=org_id).first()
            if org is not None:
                pool_alert_check(org=org, kind=kind)


def pool_alert_after_commit(*, org: Organization, kind: str) -> None:
    """Check the unallocated pool once the transaction that lowered it commits.

    After the commit: the check reads what was committed, costs the write (and its lock on
    the organization row) nothing, and a rolled-back write checks nothing. Once per
    transaction and pool; a failing check is logged, never undoes the write.
    """
    check = _PoolCheck(org.pk, kind)
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        func == check for _sids, func, _robust in connection.run_on_commit
    ):
        return
    transaction.on_commit(check, robust=True)


def pool_alert_check(*, org: Organization, kind: str) -> bool:
    """Email the admins once a month when the unallocated part drops below the set amount:
    one AlertSent row (the unique constraint makes it once, race-free), one audit row, one
    email after the commit."""
    limit = policy_for(org).low_unallocated_alert
    if limit is None:
        return False
    free = unallocated(org, kind)
    if free >= limit or not alerts_once(org, [f"pool:{kind}"]):
        return False
    email_queue(
        kind="pool_alert",
        to=admin_emails(org),
        organization=org,
        context={
            "org": org,
            "kind": kind,
            "free": free,
            "limit": limit,
            "distribution_url": absolute_url("tokens:distribution"),
        },
    )
    audit_record(action="alert.pool", organization=org, actor_label="policy", new=free, kind=kind)
    return True
