"""The member a usage report or a balance is for, in the key's organization."""

from django.db import connection

from accounts.models import Membership, Organization, User
from tokens.models import EVERYONE, MAX_COLUMNS, ModelGrant
from tokens.usage_api.errors import user_not_found
from tokens.usage_api.tables import table


def membership_for(org: Organization, email: str, *, lock: bool = False) -> Membership:
    """The organization's member with this (lowercased) email, with the user; else 404.

    With `lock`, the membership row is locked FOR NO KEY UPDATE until the transaction ends:
    an admin's UPDATE of the max waits for us, and we wait for theirs (SQLite has no row
    locks; its IMMEDIATE transactions serialize writers anyway). Hand-written SQL: it runs
    on every usage report.
    """
    locking = lock and connection.features.has_select_for_update
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.id, m.role, m.max_inference_tokens, m.max_embedding_tokens, "
            "u.id, u.email, u.name, u.is_paid, u.is_banned, u.is_active "
            f"FROM {table(Membership)} m JOIN {table(User)} u ON u.id = m.user_id "
            # lower(email) is the users' unique functional index.
            "WHERE lower(u.email) = %s AND m.organization_id = %s"
            + (" FOR NO KEY UPDATE OF m" if locking else ""),
            [email, org.pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise user_not_found()
    user = User.from_db(
        "default", ["id", "email", "name", "is_paid", "is_banned", "is_active"], row[4:]
    )
    membership = Membership.from_db(
        "default",
        ["id", "user_id", "organization_id", "role", *MAX_COLUMNS],
        [row[0], user.pk, org.pk, row[1], row[2], row[3]],
    )
    membership.user = user
    membership.organization = org
    return membership


def model_allowed(membership: Membership, model: str) -> bool:
    """Whether the member may use the model: always while the organization does not restrict
    its models (no row read), else when a grant names it for everyone, the member's role or
    the member (the PostgreSQL statement's `ok`, the same rule)."""
    if not membership.organization.models_restricted:
        return True
    return ModelGrant.objects.filter(
        organization_id=membership.organization_id,
        model_id=model,
        audience__in=[EVERYONE, membership.role, str(membership.user_id)],
    ).exists()
