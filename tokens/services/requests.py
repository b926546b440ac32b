"""Token requests: a member asks for more tokens; an admin (or the auto-approval rule)
approves all or part of it, or denies it with a note.
"""

from django.db import transaction
from django.utils import timezone

from accounts.models import AUDITOR_READ_ONLY, Membership, Organization, User
from accounts.services import organization_lock
from asksage_admin.lib.amounts import MAX_TOKENS
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.wording import counted
from audit.services import audit_record
from tokens.models import TokenRequest, column_for_kind
from tokens.selectors import policy_for, pools, unallocated, used_this_month
from tokens.services import emails
from tokens.services._core import check_amount, check_kind
from tokens.services.allocations import apply_changes

REASON_MAX = 500


def _request_input(kind: str, amount: int | None, reason: str) -> tuple[dict, int, str]:
    """The typed request checked field by field: (errors, amount, stripped reason)."""
    errors: dict[str, list[str]] = {}
    try:
        check_kind(kind)
    except DomainError as exc:
        errors.update(exc.errors)
    try:
        amount = check_amount(amount)
    except DomainError as exc:
        errors.update(exc.errors)
        amount = 0
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Say why you need the tokens."]
    elif len(reason) > REASON_MAX:
        errors["reason"] = [f"Keep the reason to {REASON_MAX} characters ({len(reason)} given)."]
    return errors, amount, reason


@transaction.atomic
def token_request_create(
    *, user: User, kind: str, amount: int | None, reason: str, ip=None
) -> TokenRequest:
    """A member asks for more tokens of a kind. The auto-approval rule may grant it at once."""
    errors, amount, reason = _request_input(kind, amount, reason)
    membership = Membership.objects.filter(user=user).select_related("organization").first()
    if membership is None:
        raise DomainError("You are not part of an organization, so there is no one to ask.")
    if membership.is_read_only:
        raise DomainError(AUDITOR_READ_ONLY)
    if errors:
        raise DomainError(errors=errors)
    org = organization_lock(membership.organization)
    if not org.is_active:
        raise DomainError(f"{org.name} is {org.get_status_display().lower()}: requests are paused.")
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if TokenRequest.objects.filter(user=user, kind=kind, status="pending").exists():
        raise DomainError(
            errors={
                "kind": [
                    f"You already have a pending {kind} request: wait for the decision "
                    "before asking again."
                ]
            }
        )
    token_request = TokenRequest.objects.create(
        organization=org,
        user=user,
        kind=kind,
        amount=amount,
        reason=reason,
        current_max=getattr(membership, column_for_kind(kind)),
    )
    audit_record(
        action="token_request.created",
        organization=org,
        actor=user,
        target_user=user,
        column=column_for_kind(kind),
        new=amount,
        request=token_request.pk,
        kind=kind,
        ip=ip,
    )
    policy = policy_for(org)
    if _auto_approvable(org, policy, token_request):
        _approve_locked(
            org=org,
            token_request=token_request,
            membership=membership,
            amount=amount,
            actor=None,
            actor_label="policy",
            note="Approved automatically by the organization's auto-approval rule.",
            ip=ip,
        )
    else:
        emails.request_to_admins(org=org, token_request=token_request)
    return token_request


def _auto_approvable(org: Organization, policy, token_request: TokenRequest) -> bool:
    if not policy.auto_approve_enabled or token_request.amount > policy.auto_approve_max:
        return False
    pool = pools(org)[token_request.kind]
    if not pool:
        return False
    used = used_this_month(org)[token_request.kind]
    if used * 100 >= policy.auto_approve_below_percent * pool:
        return False
    return token_request.amount <= unallocated(org, token_request.kind)


def _check_grantable(*, org: Organization, kind: str, amount: int, current: int) -> None:
    """Refuse a grant the unallocated pool cannot cover or that takes the max past the limit."""
    free = unallocated(org, kind)
    if amount > free:
        raise DomainError(
            errors={
                "amount": [
                    f"Only {counted(free, kind + ' token')} "
                    f"{'is' if free == 1 else 'are'} unallocated, so {amount:,} cannot be "
                    "granted. Approve a smaller amount, free tokens elsewhere or buy more."
                ]
            }
        )
    if current + amount > MAX_TOKENS:
        raise DomainError(errors={"amount": [f"The max cannot exceed {MAX_TOKENS:,} tokens."]})


def _approve_locked(
    *,
    org: Organization,
    token_request: TokenRequest,
    membership: Membership,
    amount: int,
    actor: User | None,
    actor_label: str,
    note: str,
    ip=None,
) -> TokenRequest:
    """Grant `amount`: raise the user's max through a validated, audited allocation batch."""
    column = column_for_kind(token_request.kind)
    current = getattr(membership, column)
    _check_grantable(org=org, kind=token_request.kind, amount=amount, current=current)
    result = apply_changes(
        actor=actor,
        actor_label=actor_label,
        org=org,
        column=column,
        targets=[(token_request.user, membership, current, current + amount)],
        source="request",
        ip=ip,
    )
    if not result.ok:
        raise DomainError(errors={"amount": list(result.errors.values())})
    token_request.status = TokenRequest.Status.APPROVED
    token_request.granted = amount
    token_request.note = note
    token_request.decided_by = actor if actor is not None and actor.is_authenticated else None
    token_request.decided_by_label = actor_label
    token_request.decided_at = timezone.now()
    token_request.save()
    audit_record(
        action="token_request.approved",
        organization=org,
        actor=actor,
        actor_label=actor_label,
        target_user=token_request.user,
        column=column,
        old=current,
        new=current + amount,
        batch_id=result.batch.id if result.batch else None,
        request=token_request.pk,
        requested=token_request.amount,
        granted=amount,
        note=note,
        ip=ip,
    )
    emails.request_approved(
        token_request=token_request, amount=amount, new_max=current + amount, actor=actor, note=note
    )
    return token_request


def _locked_request(org: Organization, request_id: int) -> TokenRequest:
    """The request's row locked, and only it: locking the joined user row too (PostgreSQL
    locks every joined row by default) deadlocked with a cell edit of the same member, whose
    new PendingEdit checks its foreign key to that user at commit."""
    token_request = (
        TokenRequest.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(organization=org, pk=request_id)
        .first()
    )
    if token_request is None:
        raise DomainError("That token request does not exist.")
    if token_request.status == TokenRequest.Status.CANCELLED:
        raise DomainError("The requester cancelled this request: nothing was changed.")
    if token_request.status != TokenRequest.Status.PENDING:
        who = (
            token_request.decided_by.get_full_name()
            if token_request.decided_by
            else token_request.decided_by_label or "someone"
        )
        raise DomainError(
            f"This request was already {token_request.status} by {who}: nothing was changed."
        )
    return token_request


@transaction.atomic
def token_request_approve(
    *,
    admin: User | None,
    org: Organization,
    request_id: int,
    amount: int | None = None,
    note: str = "",
    ip=None,
    actor_label: str = "",
) -> TokenRequest:
    """Approve the requested amount or a smaller one. Exactly one of two racing admins wins:
    the organization row is locked before the request's status is read. `admin` None and
    `actor_label`: an API key decides."""
    org = organization_lock(org)
    token_request = _locked_request(org, request_id)
    if amount is None:
        amount = token_request.amount  # approved as asked
    else:
        check_amount(amount)
        if amount > token_request.amount:
            raise DomainError(
                errors={
                    "amount": [
                        f"Approve at most the {token_request.amount:,} tokens requested "
                        f"({amount:,} given)."
                    ]
                }
            )
    note = (note or "").strip()
    if len(note) > REASON_MAX:
        raise DomainError(errors={"note": [f"Keep the note to {REASON_MAX} characters."]})
    membership = (
        Membership.objects.select_for_update()
        .filter(organization=org, user=token_request.user)
        .first()
    )
    if membership is None:
        raise DomainError(f"{token_request.user.email} is no longer in {org.name}.")
    return _approve_locked(
        org=org,
        token_request=token_request,
        membership=membership,
        amount=amount,
        actor=admin,
        actor_label=actor_label,
        note=note,
        ip=ip,
    )


@transaction.atomic
def token_request_deny(
    *,
    admin: User | None,
    org: Organization,
    request_id: int,
    note: str,
    ip=None,
    actor_label: str = "",
) -> TokenRequest:
    note = (note or "").strip()
    if not note:
        raise DomainError(errors={"note": ["Say why the request is denied: the member sees it."]})
    if len(note) > REASON_MAX:
        raise DomainError(errors={"note": [f"Keep the note to {REASON_MAX} characters."]})
    org = organization_lock(org)
    token_request = _locked_request(org, request_id)
    token_request.status = TokenRequest.Status.DENIED
    token_request.note = note
    token_request.decided_by = admin
    token_request.decided_by_label = actor_label
    token_request.decided_at = timezone.now()
    token_request.save()
    audit_record(
        action="token_request.denied",
        organization=org,
        actor=admin,
        actor_label=actor_label,
        target_user=token_request.user,
        column=column_for_kind(token_request.kind),
        request=token_request.pk,
        requested=token_request.amount,
        note=note,
        ip=ip,
    )
    emails.request_denied(
        token_request=token_request, admin=admin, note=note, actor_label=actor_label
    )
    return token_request


@transaction.atomic
def token_request_cancel(*, user: User, request_id: int, ip=None) -> TokenRequest:
    """A member withdraws their own pending request (before an admin decides)."""
    token_request = (
        TokenRequest.objects.select_for_update().filter(user=user, pk=request_id).first()
    )
    if token_request is None:
        raise DomainError("That request does not exist.")
    if token_request.status != TokenRequest.Status.PENDING:
        raise DomainError(
            f"This request was already {token_request.status}: it can no longer be cancelled."
        )
    token_request.status = TokenRequest.Status.CANCELLED
    token_request.decided_at = timezone.now()
    token_request.decided_by = user
    token_request.save(update_fields=["status", "decided_at", "decided_by"])
    audit_record(
        action="token_request.cancelled",
        organization=token_request.organization,
        actor=user,
        target_user=user,
        new=token_request.amount,
        kind=token_request.kind,
        request=token_request.pk,
        ip=ip,
    )
    return token_request
