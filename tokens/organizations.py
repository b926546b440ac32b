"""Writes that tie an organization to its token pools: provisioning and activating an
account, recording purchases, and the membership rules whose floors come out of the pools.

They live in tokens, not accounts, because they need the pools (`Purchase`, the allocated
totals); accounts (identity) stays below tokens. Each one audits in its transaction and locks
the organization row (`accounts.services.organization_lock`) where two people could race.
"""

import datetime as dt
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Membership, Organization, User
from accounts.services import (
    membership_user_errors,
    organization_lock,
    parse_email_list,
)
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.months import current_month, month_start
from asksage_admin.lib.wording import counted
from audit.services import audit_record
from tokens.alerts import pool_alert_after_commit
from tokens.models import MonthlyUsage, PendingEdit, Purchase, TokenKind
from tokens.provisioning import amount_errors, provisioning_errors
from tokens.selectors import allocated, pools

# --- Organizations ------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:180] or "org"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def organization_provision(
    *,
    actor: User,
    name: str,
    billing_address: str,
    user_emails: list[str],
    admin_emails: list[str],
    inference_tokens: int,
    embedding_tokens: int = 0,
    start_month: dt.date | None = None,
    payment_reference: str = "",
    activate: bool = False,
) -> Organization:
    """Create an enterprise account with its members, admins and initial purchase.

    Every member starts at the organization's floors; the purchased pools must cover them.
    Raises DomainError keyed by field: name, billing_address, user_emails, admin_emails,
    inference_tokens, embedding_tokens.
    """
    name, billing_address = name.strip(), billing_address.strip()
    user_emails = parse_email_list(",".join(user_emails))
    admin_emails = parse_email_list(",".join(admin_emails))
    defaults = Organization()
    floors = {
        TokenKind.INFERENCE: defaults.min_inference_tokens,
        TokenKind.EMBEDDING: defaults.min_embedding_tokens,
    }
    users, errors = provisioning_errors(
        name=name,
        billing_address=billing_address,
        user_emails=user_emails,
        admin_emails=admin_emails,
        inference_tokens=inference_tokens,
        embedding_tokens=embedding_tokens,
        floors=floors,
    )
    if errors:
        raise DomainError(errors=errors)
    org = _organization_create(name=name, billing_address=billing_address)
    audit_record(action="org.created", organization=org, actor=actor, name=org.name)
    start = month_start(start_month or current_month())
    for kind, amount in (
        (TokenKind.INFERENCE, inference_tokens),
        (TokenKind.EMBEDDING, embedding_tokens),
    ):
        if amount:
            purchase_record(
                actor=actor,
                org=org,
                kind=kind,
                tokens_per_month=amount,
                start_month=start,
                payment_reference=payment_reference,
            )
    _founding_members_add(actor=actor, org=org, users=users, admin_emails=admin_emails)
    if activate:
        org = organization_activate(actor=actor, org=org)
    return org


def _organization_create(*, name: str, billing_address: str) -> Organization:
    try:
        with transaction.atomic():
            return Organization.objects.create(
                name=name, slug=_unique_slug(name), billing_address=billing_address
            )
    except IntegrityError as exc:  # the same name provisioned concurrently
        raise DomainError(
            errors={"name": [f"An organization named “{name}” already exists."]}
        ) from exc


def _founding_members_add(
    *, actor: User, org: Organization, users: list[User], admin_emails: list[str]
) -> None:
    """A new account's members, each at the organization's floors, and their audit rows."""
    now = timezone.now()
    Membership.objects.bulk_create(
        Membership(
            user=u,
            organization=org,
            role=Membership.Role.ADMIN if u.email in admin_emails else Membership.Role.MEMBER,
            max_inference_tokens=org.min_inference_tokens,
            max_embedding_tokens=org.min_embedding_tokens,
            joined_at=now,
        )
        for u in users
    )
    for u in users:
        audit_record(
            action="membership.added",
            organization=org,
            actor=actor,
            target_user=u,
            role="admin" if u.email in admin_emails else "member",
        )


@transaction.atomic
def organization_activate(*, actor: User, org: Organization) -> Organization:
    org = organization_lock(org)
    if org.status == Organization.Status.ACTIVE:
        return org
    if not Purchase.objects.filter(organization=org).exists():
        raise DomainError(
            f"{org.name} cannot be activated before a payment (purchase) is recorded."
        )
    old = org.status
    org.status = Organization.Status.ACTIVE
    org.activated_at = org.activated_at or timezone.now()
    org.save(update_fields=["status", "activated_at"])
    audit_record(
        action="org.status", organization=org, actor=actor, column="status", old=old, new=org.status
    )
    return org


# --- Purchases ----------------------------------------------------------------------------


def purchase_errors(
    *, kind: str, tokens_per_month: int, start_month: dt.date, end_month: dt.date | None = None
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if kind not in TokenKind.values:
        errors["kind"] = [f"Unknown token kind “{kind}”."]
    if problems := amount_errors(tokens_per_month, optional=False):
        errors["tokens_per_month"] = problems
    if end_month and month_start(end_month) < month_start(start_month):
        errors["end_month"] = [
            f"The end month {end_month:%Y-%m} is before the start month {start_month:%Y-%m}."
        ]
    return errors


@transaction.atomic
def purchase_record(
    *,
    actor: User | None,
    org: Organization,
    kind: str,
    tokens_per_month: int,
    start_month: dt.date,
    end_month: dt.date | None = None,
    payment_reference: str = "",
    note: str = "",
) -> Purchase:
    """Record a confirmed payment for a monthly pool. Purchases are never edited afterwards."""
    errors = purchase_errors(
        kind=kind, tokens_per_month=tokens_per_month, start_month=start_month, end_month=end_month
    )
    if errors:
        raise DomainError(errors=errors)
    start = month_start(start_month)
    end = month_start(end_month) if end_month else None
    purchase = Purchase.objects.create(
        organization=org,
        kind=kind,
        tokens_per_month=tokens_per_month,
        start_month=start,
        end_month=end,
        payment_reference=payment_reference.strip(),
        note=note.strip(),
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    audit_record(
        action="purchase.recorded",
        organization=org,
        actor=actor,
        new=tokens_per_month,
        kind=kind,
        start_month=start.isoformat(),
        end_month=end.isoformat() if end else None,
        payment_reference=purchase.payment_reference,
    )
    return purchase


# --- Memberships --------------------------------------------------------------------------


def new_member_pool_errors(org: Organization, emails: list[str]) -> list[str]:
    """New members start at the organization's floors, taken from the unallocated pool."""
    if not emails:
        return []
    pool, alloc = pools(org), allocated(org)
    who = ", ".join(emails)
    errors = []
    for kind in TokenKind.values:
        need, free = org.floor(kind) * len(emails), max(pool[kind] - alloc[kind], 0)
        if need > free:
            errors.append(
                f"Adding {who} needs {counted(need, kind + ' token')} "
                f"({org.floor(kind):,} each) "
                f"but only {free:,} are unallocated."
            )
    return errors


def _added_user_errors(add: list[tuple[User, str]]) -> list[str]:
    """Unknown roles, users listed twice, and users not free to join."""
    errors = []
    seen: set[int] = set()
    for user, role in add:
        if role not in Membership.Role.values:
            errors.append(f"Unknown role “{role}” for {user.email}.")
        if user.pk in seen:
            errors.append(f"{user.email} is listed twice.")
        seen.add(user.pk)
        errors += membership_user_errors(user)
    return errors


def membership_batch_errors(
    *,
    org: Organization,
    add: Iterable[tuple[User, str]] = (),
    set_roles: Iterable[tuple[Membership, str]] = (),
    remove: Iterable[Membership] = (),
) -> list[str]:
    """Check a set of membership changes against the account's rules, as a whole.

    The account keeps at least 2 users and at least 1 admin after the changes; added users are
    free to join and fit in the unallocated pool (removals do not free tokens for them: they
    are applied last).
    """
    add, set_roles, remove = list(add), list(set_roles), list(remove)
    errors = _added_user_errors(add)
    current = {
        m.pk: m
        for m in Membership.objects.filter(organization=org).select_related("user").order_by("pk")
    }
    roles = {pk: m.role for pk, m in current.items()}
    for membership, role in set_roles:
        if membership.pk not in current:
            errors.append(f"{membership.user.email} is not a member of {org.name}.")
        elif role not in Membership.Role.values:
            errors.append(f"Unknown role “{role}” for {membership.user.email}.")
        else:
            roles[membership.pk] = role
    removed = []
    for membership in remove:
        if membership.pk not in current:
            errors.append(f"{membership.user.email} is not a member of {org.name}.")
        elif roles.pop(membership.pk, None) is not None:
            removed.append(current[membership.pk].user.email)
    members = len(roles) + len(add)
    if members < 2 and removed:
        errors.append(
            f"Removing {', '.join(removed)} would leave {members} user"
            f"{'' if members == 1 else 's'}: an enterprise account needs at least 2 users."
        )
    admins = list(roles.values()).count(Membership.Role.ADMIN) + sum(
        role == Membership.Role.ADMIN for _, role in add
    )
    lost = [
        m.user.email
        for pk, m in current.items()
        if m.role == Membership.Role.ADMIN and roles.get(pk) != Membership.Role.ADMIN
    ]
    if admins < 1 and lost:
        errors.append(
            f"{', '.join(lost)} cannot stop being an admin: an organization needs at least 1 admin."
        )
    errors += new_member_pool_errors(org, [u.email for u, _ in add])
    return errors


@transaction.atomic
def membership_add(
    *, actor: User, org: Organization, user: User, role: str = "member"
) -> Membership:
    """Add a registered user with the org's default allocation, if the unallocated pool allows."""
    org = organization_lock(org)
    errors = membership_batch_errors(org=org, add=[(user, role)])
    if errors:
        raise DomainError(errors={"user": errors})
    # A member who left and comes back finds their lifetime total here as it was: "Total
    # usage" is everything they used in this organization (their MonthlyUsage rows stay).
    used_here = MonthlyUsage.objects.filter(user=user, organization=org).aggregate(t=Sum("used"))
    membership = Membership.objects.create(
        user=user,
        organization=org,
        role=role,
        max_inference_tokens=org.min_inference_tokens,
        max_embedding_tokens=org.min_embedding_tokens,
        total_used=used_here["t"] or 0,
    )
    audit_record(
        action="membership.added", organization=org, actor=actor, target_user=user, role=role
    )
    # The new member's floors come out of the unallocated pool.
    for kind in TokenKind.values:
        if org.floor(kind):
            pool_alert_after_commit(org=org, kind=kind)
    return membership


def _membership_lock(membership: Membership) -> Membership:
    """Lock the membership row only: FOR UPDATE with the joined user would lock the user's row
    too (PostgreSQL locks every joined row), and a write holding that user row while it waits
    for this membership (a cell edit, a ban) would deadlock with it."""
    return (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .get(pk=membership.pk)
    )


@transaction.atomic
def membership_set_role(
    *, actor: User, membership: Membership, role: str, ip: str | None = None
) -> Membership:
    org = organization_lock(membership.organization)
    membership = _membership_lock(membership)
    if membership.role == role:
        return membership
    errors = membership_batch_errors(org=org, set_roles=[(membership, role)])
    if errors:
        raise DomainError(errors={"role": errors})
    old, membership.role = membership.role, role
    membership.save(update_fields=["role"])
    audit_record(
        action="membership.role",
        organization=org,
        actor=actor,
        target_user=membership.user,
        column="role",
        old=old,
        new=role,
        ip=ip,
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: User, membership: Membership) -> None:
    """The user leaves the organization; their user record and history stay."""
    org = organization_lock(membership.organization)
    membership = _membership_lock(membership)
    errors = membership_batch_errors(org=org, remove=[membership])
    if errors:
        raise DomainError(errors={"__all__": errors})
    user = membership.user
    # Unsaved allocation edits by or about the leaver would otherwise linger in the panel.
    PendingEdit.objects.filter(organization=org).filter(Q(target=user) | Q(admin=user)).delete()
    membership.delete()
    # The allocation goes back to the pool with the row; the audit row keeps what it was.
    audit_record(
        action="membership.removed",
        organization=org,
        actor=actor,
        target_user=user,
        role=membership.role,
        max_inference_tokens=membership.max_inference_tokens,
        max_embedding_tokens=membership.max_embedding_tokens,
    )


@transaction.atomic
def membership_batch_save(
    *,
    actor: User,
    org: Organization,
    add: Iterable[tuple[User, str]] = (),
    set_roles: Iterable[tuple[Membership, str]] = (),
    remove: Iterable[Membership] = (),
) -> list[Membership]:
    """Apply several membership changes at once (the staff admin's inline); all or nothing.

    Returns the new memberships.
    """
    add, set_roles, remove = list(add), list(set_roles), list(remove)
    org = organization_lock(org)
    errors = membership_batch_errors(org=org, add=add, set_roles=set_roles, remove=remove)
    if errors:
        raise DomainError(errors={"__all__": errors})
    created = [membership_add(actor=actor, org=org, user=u, role=role) for u, role in add]
    # Additions first, promotions before demotions, removals last: every step then keeps the
    # account valid on its own, as each service call re-checks.
    for membership, role in sorted(set_roles, key=lambda pair: pair[1] != Membership.Role.ADMIN):
        membership_set_role(actor=actor, membership=membership, role=role)
    for membership in remove:
        membership_remove(actor=actor, membership=membership)
    return created
