"""Writes about users, organizations and memberships. Each one audits in its transaction."""

import datetime as dt
import re

from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Membership, Organization, User
from analytics.services import audit_record
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.months import current_month, month_start
from tokens.models import BLOCK, Purchase, TokenKind
from tokens.selectors import allocated, pools

_EMAIL_SPLIT = re.compile(r"[\s,;]+")


def parse_email_list(text: str) -> list[str]:
    """Emails separated by new lines, commas, semicolons or spaces; lower-cased, de-duplicated."""
    seen: dict[str, None] = {}
    for item in _EMAIL_SPLIT.split(text or ""):
        if item.strip():
            seen.setdefault(item.strip().lower(), None)
    return list(seen)


def user_register(*, email: str, name: str, password: str, accepted_terms: bool) -> User:
    if not accepted_terms:
        raise DomainError(errors={"accept_terms": ["You must accept the terms and conditions."]})
    with transaction.atomic():
        if User.objects.filter(email__iexact=email.strip()).exists():
            raise DomainError(errors={"email": ["An account with this email already exists."]})
        user = User.objects.create_user(
            email=email, password=password, name=name.strip(), terms_accepted_at=timezone.now()
        )
        audit_record(action="user.registered", actor=user, target_user=user)
    return user


def _validate_provisioning(
    *,
    name: str,
    user_emails: list[str],
    admin_emails: list[str],
    inference_tokens: int,
    embedding_tokens: int,
    floor: int,
) -> tuple[list[User], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}

    def err(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if Organization.objects.filter(name__iexact=name.strip()).exists():
        err("name", f"An organization named “{name.strip()}” already exists.")
    everyone = list(dict.fromkeys(user_emails + admin_emails))
    if len(everyone) < 2:
        err("user_emails", "An enterprise account needs at least 2 users.")
    if not admin_emails:
        err("admin_emails", "Name at least 1 admin.")
    found = {u.email: u for u in User.objects.filter(email__in=everyone)}
    member_of = dict(
        Membership.objects.filter(user__email__in=everyone).values_list(
            "user__email", "organization__name"
        )
    )
    for email in everyone:
        field = (
            "admin_emails" if email in admin_emails and email not in user_emails else "user_emails"
        )
        user = found.get(email)
        if user is None:
            err(field, f"{email} has not registered yet: every user must register first.")
        elif user.terms_accepted_at is None:
            err(field, f"{email} has not accepted the terms and conditions.")
        elif email in member_of:
            err(field, f"{email} already belongs to the organization “{member_of[email]}”.")
    for field, amount in (
        ("inference_tokens", inference_tokens),
        ("embedding_tokens", embedding_tokens),
    ):
        if amount < 0 or amount % BLOCK:
            err(field, f"{amount:,} is not a multiple of 2,000,000 tokens.")
    if inference_tokens <= 0:
        err("inference_tokens", "The initial purchase needs inference tokens.")
    needed = floor * len(everyone)
    if inference_tokens >= 0 and inference_tokens < needed and len(everyone) >= 2:
        err(
            "inference_tokens",
            f"{len(everyone)} users need at least {needed:,} inference tokens "
            f"({floor:,} each); {inference_tokens:,} purchased.",
        )
    return [found[e] for e in everyone if e in found], errors


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

    Every member starts at the organization's floor; the inference pool must cover it.
    """
    org_defaults = Organization()
    users, errors = _validate_provisioning(
        name=name,
        user_emails=user_emails,
        admin_emails=admin_emails,
        inference_tokens=inference_tokens,
        embedding_tokens=embedding_tokens,
        floor=org_defaults.min_inference_tokens,
    )
    if not billing_address.strip():
        errors.setdefault("billing_address", []).append("Enter the billing address.")
    if errors:
        raise DomainError(errors=errors)
    now = timezone.now()
    org = Organization.objects.create(
        name=name.strip(), slug=_unique_slug(name), billing_address=billing_address.strip()
    )
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
    emb_floor = (
        org.min_embedding_tokens if embedding_tokens >= org.min_embedding_tokens * len(users) else 0
    )
    Membership.objects.bulk_create(
        Membership(
            user=u,
            organization=org,
            role=Membership.Role.ADMIN if u.email in admin_emails else Membership.Role.MEMBER,
            max_inference_tokens=org.min_inference_tokens,
            max_embedding_tokens=emb_floor,
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
    if activate:
        organization_activate(actor=actor, org=org)
    return org


def _locked_org(org: Organization) -> Organization:
    return Organization.objects.select_for_update().get(pk=org.pk)


@transaction.atomic
def organization_activate(*, actor: User, org: Organization) -> Organization:
    org = _locked_org(org)
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


@transaction.atomic
def organization_suspend(*, actor: User, org: Organization, reason: str = "") -> Organization:
    org = _locked_org(org)
    if org.status == Organization.Status.SUSPENDED:
        return org
    old = org.status
    org.status = Organization.Status.SUSPENDED
    org.suspended_at = timezone.now()
    org.save(update_fields=["status", "suspended_at"])
    audit_record(
        action="org.status",
        organization=org,
        actor=actor,
        column="status",
        old=old,
        new=org.status,
        reason=reason,
    )
    return org


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
    errors: dict[str, list[str]] = {}
    if kind not in TokenKind.values:
        errors["kind"] = [f"Unknown token kind “{kind}”."]
    if tokens_per_month <= 0 or tokens_per_month % BLOCK:
        errors["tokens_per_month"] = [
            f"{tokens_per_month:,} is not a positive multiple of 2,000,000 tokens."
        ]
    start = month_start(start_month)
    end = month_start(end_month) if end_month else None
    if end and end < start:
        errors["end_month"] = ["The end month cannot be before the start month."]
    if errors:
        raise DomainError(errors=errors)
    purchase = Purchase.objects.create(
        organization=org,
        kind=kind,
        tokens_per_month=tokens_per_month,
        start_month=start,
        end_month=end,
        payment_reference=payment_reference,
        note=note,
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
    )
    return purchase


@transaction.atomic
def membership_add(
    *, actor: User, org: Organization, user: User, role: str = "member"
) -> Membership:
    """Add a registered user with the org's default allocation, if the unallocated pool allows."""
    org = _locked_org(org)
    if user.terms_accepted_at is None:
        raise DomainError(
            errors={"user": [f"{user.email} has not accepted the terms and conditions."]}
        )
    existing = Membership.objects.filter(user=user).select_related("organization").first()
    if existing:
        raise DomainError(
            errors={"user": [f"{user.email} already belongs to “{existing.organization.name}”."]}
        )
    pool, alloc = pools(org), allocated(org)
    errors = {}
    for kind in TokenKind.values:
        need, free = org.floor(kind), max(pool[kind] - alloc[kind], 0)
        if need > free:
            errors.setdefault("user", []).append(
                f"Adding {user.email} needs {need:,} {kind} tokens "
                f"but only {free:,} are unallocated."
            )
    if errors:
        raise DomainError(errors=errors)
    membership = Membership.objects.create(
        user=user,
        organization=org,
        role=role,
        max_inference_tokens=org.min_inference_tokens,
        max_embedding_tokens=org.min_embedding_tokens,
    )
    audit_record(
        action="membership.added", organization=org, actor=actor, target_user=user, role=role
    )
    return membership


@transaction.atomic
def membership_set_role(*, actor: User, membership: Membership, role: str) -> Membership:
    org = _locked_org(membership.organization)
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if role not in Membership.Role.values:
        raise DomainError(errors={"role": [f"Unknown role “{role}”."]})
    if membership.role == role:
        return membership
    if membership.role == Membership.Role.ADMIN and not (
        Membership.objects.filter(organization=org, role=Membership.Role.ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    ):
        raise DomainError(errors={"role": ["An organization needs at least 1 admin."]})
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
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: User, membership: Membership) -> None:
    """The user leaves the organization; their user record and history stay."""
    org = _locked_org(membership.organization)
    members = Membership.objects.filter(organization=org)
    if members.count() <= 2:
        raise DomainError("An enterprise account needs at least 2 users.")
    if membership.is_admin and members.filter(role=Membership.Role.ADMIN).count() <= 1:
        raise DomainError("An organization needs at least 1 admin.")
    user = membership.user
    membership.delete()
    audit_record(action="membership.removed", organization=org, actor=actor, target_user=user)


def _end_sessions(user: User) -> None:
    """Delete the user's sessions (the middleware would also refuse them on their next request)."""
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()


@transaction.atomic
def user_set_flag(
    *, actor: User, org: Organization | None, user: User, flag: str, value: bool, ip=None
) -> User:
    """Set `is_paid` or `is_banned`. The caller has already scoped `user` to `org`."""
    if flag not in {"is_paid", "is_banned"}:
        raise DomainError(f"“{flag}” cannot be changed here.")
    user = User.objects.select_for_update().get(pk=user.pk)
    old = getattr(user, flag)
    if old == value:
        return user
    if flag == "is_banned" and value and actor is not None and user.pk == actor.pk:
        raise DomainError("You cannot ban yourself.")
    setattr(user, flag, value)
    user.save(update_fields=[flag])
    audit_record(
        action="user.paid" if flag == "is_paid" else "user.banned",
        organization=org,
        actor=actor,
        target_user=user,
        column=flag.removeprefix("is_"),
        old=old,
        new=value,
        ip=ip,
    )
    if flag == "is_banned" and value:
        _end_sessions(user)
    return user
