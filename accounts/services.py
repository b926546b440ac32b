"""Writes about users, organizations and memberships. Each one audits in its transaction.

Rules are checked by `*_errors` helpers that forms call in `clean()` (so refusals show on the
form) and that the write functions call again inside their transaction (so a concurrent change
cannot slip past them).

What needs the token pools (provisioning, activation, purchases, membership changes whose
floors come out of the pools) is in `tokens.organizations`: identity sits below tokens.
"""

from collections.abc import Iterable

from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from accounts.models import Membership, Organization, User
from asksage_admin.lib.audit_actions import AuditAction
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.inputs import parse_email_list  # noqa: F401 (re-exported: organizations, tests)
from audit.services import audit_record

_AUDIT_VALUE_MAX = 100  # AuditLog.old_value / new_value


# Sent by `user_set_flag` inside its transaction when a member's Banned flag changes, the
# organization row already locked (kwargs: actor, org, user, banned, ip). The allocation follows
# the organization's deactivation policy, which needs the pools, a layer above: tokens connects
# the receiver (`tokens.signals`). A receiver's DomainError rolls the whole change back.
user_banned_changed = Signal()


def _clip(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= _AUDIT_VALUE_MAX else text[: _AUDIT_VALUE_MAX - 1] + "…"


def _org_of(user: User) -> Organization | None:
    membership = Membership.objects.filter(user=user).select_related("organization").first()
    return membership.organization if membership else None


# --- Users -------------------------------------------------------------------------------


def user_register(*, email: str, name: str, password: str, accepted_terms: bool) -> User:
    if not accepted_terms:
        raise DomainError(errors={"accept_terms": ["You must accept the terms and conditions."]})
    with transaction.atomic():
        taken = DomainError(errors={"email": ["An account with this email already exists."]})
        if User.objects.filter(email__iexact=email.strip()).exists():
            raise taken
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    email=email,
                    password=password,
                    name=name.strip(),
                    terms_accepted_at=timezone.now(),
                )
        except IntegrityError:
            # The same address registered at the same moment: the unique index let one win.
            if User.objects.filter(email__iexact=email.strip()).exists():
                raise taken from None
            raise
        audit_record(action="user.registered", actor=user, target_user=user)
    return user


@transaction.atomic
def user_accept_terms(*, user: User, ip: str | None = None) -> User:
    """A user created without registering (SCIM, sales) accepts the terms at first sign-in.
    Accepting twice changes nothing: the first time stands."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.terms_accepted_at is None:
        user.terms_accepted_at = timezone.now()
        user.save(update_fields=["terms_accepted_at"])
        audit_record(action="user.terms_accepted", actor=user, target_user=user, ip=ip)
    return user


def user_email_errors(email: str, *, exclude: User | None = None) -> list[str]:
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        return [f"“{email}” is not a valid email address."]
    others = User.objects.filter(email__iexact=email)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    if others.exists():
        return [f"A user with the email {email} already exists."]
    return []


@transaction.atomic
def user_create(*, actor: User, email: str, name: str, password: str | None) -> User:
    """A user created by sales staff. They have not accepted the terms yet (registration does)."""
    errors: dict[str, list[str]] = {}
    if email_errors := user_email_errors(email):
        errors["email"] = email_errors
    if not name.strip():
        errors["name"] = ["Enter the user's name."]
    if errors:
        raise DomainError(errors=errors)
    user = User.objects.create_user(email=email.strip(), password=password, name=name.strip())
    audit_record(action="user.created", actor=actor, target_user=user)
    return user


# What a non-superuser may not do to a user, by what they attempted (`staff_refusal`).
STAFF_CHANGE = "change"
STAFF_PASSWORD = "password"
STAFF_MFA_RESET = "mfa.reset"
STAFF_ESCALATION = "escalation"
STAFF_DENIED = AuditAction.STAFF_DENIED


def staff_refusal(*, actor: User, user: User | None, attempt: str) -> str:
    """Why `actor` may not make `attempt` on `user` in the sales admin, or "" if they may.

    Only the rules about whose account it is live here; which group may do what is Django's
    model permissions (accounts/staff_roles.py), checked by the admin.
    """
    if actor.is_superuser:
        return ""
    if attempt == STAFF_ESCALATION:
        return "Only a superuser can change staff access, superuser status, groups or permissions."
    if user is None:
        return ""
    if user.is_superuser:
        return "Only a superuser can change a superuser's account."
    if user.is_staff:
        return {
            STAFF_PASSWORD: "Only a superuser can set the password of a staff member.",
            STAFF_MFA_RESET: "Only a superuser can reset the second factor of a staff member.",
        }.get(attempt, "Only a superuser can change a staff member's account.")
    return ""


@transaction.atomic
def staff_denied_record(
    *,
    actor: User,
    users: Iterable[User | None],
    attempt: str,
    reason: str,
    path: str = "",
    fields: Iterable[str] = (),
    ip: str | None = None,
) -> None:
    """Audit a refused attempt in the sales admin, one row per account it aimed at.

    Its own transaction, and callers answer 403 with a response rather than an exception, so
    the row is committed even when the request runs inside a transaction (ATOMIC_REQUESTS).
    """
    for user in users:
        audit_record(
            action=STAFF_DENIED,
            organization=_org_of(user) if user is not None else None,
            actor=actor,
            target_user=user,
            column=attempt,
            new=_clip(", ".join(sorted(fields))),
            ip=ip,
            reason=reason,
            path=path[:200],
        )


# Fields of a user that sales staff edit directly; `is_paid` / `is_banned` go through
# `user_set_flag`, the password through `user_set_password`.
USER_STAFF_FIELDS = ("email", "name", "is_staff", "is_superuser", "groups")
_PRIVILEGE_FIELDS = {"is_staff", "is_superuser", "groups"}


def _group_names(groups: Iterable) -> str:
    return ", ".join(sorted(g.name for g in groups))


@transaction.atomic
def user_update(*, actor: User, user: User, changes: dict[str, object]) -> User:
    """Change a user's email, name, or (superusers only) staff flags and groups."""
    unknown = set(changes) - set(USER_STAFF_FIELDS)
    if unknown:
        raise DomainError(f"{', '.join(sorted(unknown))} cannot be changed here.")
    user = User.objects.select_for_update().get(pk=user.pk)
    if refusal := staff_refusal(actor=actor, user=user, attempt=STAFF_CHANGE):
        raise DomainError(refusal)
    groups = None
    if "groups" in changes:
        groups = list(changes.pop("groups"))
        if _group_names(groups) == _group_names(user.groups.all()):
            groups = None
    changes = {f: v for f, v in changes.items() if getattr(user, f) != v}
    errors: dict[str, list[str]] = {}
    if "email" in changes:
        changes["email"] = str(changes["email"]).strip().lower()
        if email_errors := user_email_errors(changes["email"], exclude=user):
            errors["email"] = email_errors
    if "name" in changes:
        changes["name"] = str(changes["name"]).strip()
        if not changes["name"]:
            errors["name"] = ["Enter the user's name."]
    if (_PRIVILEGE_FIELDS & set(changes) or groups is not None) and not actor.is_superuser:
        errors["__all__"] = ["Only a superuser can grant or remove staff access."]
    if errors:
        raise DomainError(errors=errors)
    org = _org_of(user)
    if groups is not None:
        audit_record(
            action="user.updated",
            organization=org,
            actor=actor,
            target_user=user,
            column="groups",
            old=_clip(_group_names(user.groups.all())),
            new=_clip(_group_names(groups)),
        )
        user.groups.set(groups)
    for field, value in changes.items():
        audit_record(
            action="user.updated",
            organization=org,
            actor=actor,
            target_user=user,
            column=field,
            old=_clip(getattr(user, field)),
            new=_clip(value),
        )
        setattr(user, field, value)
    if changes:
        user.save(update_fields=list(changes))
    return user


@transaction.atomic
def user_set_password(*, actor: User, user: User, password: str | None) -> User:
    """Set a user's password, or disable password login when `password` is None."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if actor.pk != user.pk and (
        refusal := staff_refusal(actor=actor, user=user, attempt=STAFF_PASSWORD)
    ):
        raise DomainError(refusal)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(
        action="user.password",
        organization=_org_of(user),
        actor=actor,
        target_user=user,
        column="password",
        new="disabled" if password is None else "set",
    )
    return user


# --- Organizations ------------------------------------------------------------------------


def organization_lock(org: Organization) -> Organization:
    """Lock the organization row: two admins writing at once must not both pass the pool check.

    FOR NO KEY UPDATE, not FOR UPDATE: inserts that merely reference the organization (usage
    events, audit rows) take KEY SHARE and must not queue behind an admin's save.
    """
    return Organization.objects.select_for_update(no_key=True).get(pk=org.pk)


@transaction.atomic
def organization_suspend(*, actor: User, org: Organization, reason: str = "") -> Organization:
    org = organization_lock(org)
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


def organization_update_errors(*, org: Organization, name: str, billing_address: str) -> dict:
    errors: dict[str, list[str]] = {}
    name = name.strip()
    if not name:
        errors["name"] = ["Enter the organization's name."]
    elif Organization.objects.filter(name__iexact=name).exclude(pk=org.pk).exists():
        errors["name"] = [f"An organization named “{name}” already exists."]
    if not billing_address.strip():
        errors["billing_address"] = ["Enter the billing address."]
    return errors


@transaction.atomic
def organization_update(
    *,
    actor: User,
    org: Organization,
    name: str,
    billing_address: str,
    admin_notes: str,
    on_deactivation: str | None = None,
) -> Organization:
    """Change the organization's details. Status changes go through activate / suspend."""
    org = organization_lock(org)
    errors = organization_update_errors(org=org, name=name, billing_address=billing_address)
    if on_deactivation is not None and on_deactivation not in Organization.OnDeactivation.values:
        errors["on_deactivation"] = ["Choose return or keep."]
    if errors:
        raise DomainError(errors=errors)
    changed = []
    for field, value in (
        ("name", name.strip()),
        ("billing_address", billing_address.strip()),
        ("admin_notes", admin_notes.strip()),
        ("on_deactivation", on_deactivation or org.on_deactivation),
    ):
        old = getattr(org, field)
        if old != value:
            audit_record(
                action="org.updated",
                organization=org,
                actor=actor,
                column=field,
                old=_clip(old),
                new=_clip(value),
            )
            setattr(org, field, value)
            changed.append(field)
    if changed:
        org.save(update_fields=changed)
    return org


# --- Memberships --------------------------------------------------------------------------


def banned_join_error(email: str) -> str:
    """Why a banned user joins no organization: a ban is lifted on purpose, not by an add."""
    return f"{email} is banned: lift the ban before adding them to an organization."


def membership_user_errors(user: User) -> list[str]:
    """Why this registered user cannot join an organization, if they cannot."""
    if user.is_banned:
        return [banned_join_error(user.email)]
    if user.terms_accepted_at is None:
        return [f"{user.email} has not accepted the terms and conditions."]
    existing = Membership.objects.filter(user=user).select_related("organization").first()
    if existing:
        return [f"{user.email} already belongs to “{existing.organization.name}”."]
    return []


def user_sessions_end(*, user: User) -> None:
    """Delete the user's sessions (the middleware would also refuse them on their next request)."""
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()


@transaction.atomic
def user_set_flag(
    *, actor: User, org: Organization | None, user: User, flag: str, value: bool, ip=None
) -> User:
    """Set `is_paid` or `is_banned`. The caller has already scoped `user` to `org`; a ban or
    un-ban there moves the member's allocation by the organization's policy, in this
    transaction (`user_banned_changed`), or is refused with a DomainError."""
    if flag not in {"is_paid", "is_banned"}:
        raise DomainError(f"“{flag}” cannot be changed here.")
    if flag == "is_banned" and org is not None:
        # The organization row before the user's, the order of every allocation writer: a ban
        # moves tokens (`user_banned_changed`), and two orders would deadlock.
        org = organization_lock(org)
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
        user_sessions_end(user=user)
    if flag == "is_banned" and org is not None:
        user_banned_changed.send(sender=User, actor=actor, org=org, user=user, banned=value, ip=ip)
    return user
