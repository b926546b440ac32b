"""Purchase requests: an admin asks sales for more tokens a month; sales record the
purchase and fulfil the request.
"""

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from accounts.services import organization_lock
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.months import current_month
from audit.services import audit_record
from tokens.models import PurchaseRequest
from tokens.organizations import purchase_record
from tokens.services import emails
from tokens.services._core import check_kind


@transaction.atomic
def purchase_request_create(
    *, admin: User, org: Organization, kind: str, blocks: int, note: str, ip=None
) -> PurchaseRequest:
    check_kind(kind)
    if isinstance(blocks, bool) or not isinstance(blocks, int) or not 1 <= blocks <= 1000:
        raise DomainError(
            errors={"blocks": ["Enter how many blocks of 2,000,000 tokens, from 1 to 1000."]}
        ) from None
    note = (note or "").strip()
    if len(note) > 1000:
        raise DomainError(errors={"note": ["Keep the note to 1000 characters."]})
    org = organization_lock(org)
    request = PurchaseRequest.objects.create(
        organization=org, requested_by=admin, kind=kind, blocks=blocks, note=note
    )
    audit_record(
        action="purchase_request.created",
        organization=org,
        actor=admin,
        new=request.tokens,
        kind=kind,
        note=note,
        ip=ip,
    )
    emails.purchase_request_to_sales(org=org, admin=admin, request=request)
    return request


@transaction.atomic
def purchase_request_fulfil(
    *, actor: User, purchase_request: PurchaseRequest, start_month=None, payment_reference=""
) -> PurchaseRequest:
    """Sales staff record the purchase a request asked for, and mark the request fulfilled."""
    request = PurchaseRequest.objects.select_for_update().get(pk=purchase_request.pk)
    if request.status == PurchaseRequest.Status.FULFILLED:
        raise DomainError(f"That request was already fulfilled on {request.fulfilled_at:%Y-%m-%d}.")
    purchase = purchase_record(
        actor=actor,
        org=request.organization,
        kind=request.kind,
        tokens_per_month=request.tokens,
        start_month=start_month or current_month(),
        payment_reference=payment_reference,
        note=f"Purchase request #{request.pk}: {request.note}"[:1000],
    )
    request.status = PurchaseRequest.Status.FULFILLED
    request.fulfilled_at = timezone.now()
    request.fulfilled_by = actor
    request.purchase = purchase
    request.save()
    audit_record(
        action="purchase_request.fulfilled",
        organization=request.organization,
        actor=actor,
        new=request.tokens,
        kind=request.kind,
        request=request.pk,
    )
    emails.purchase_recorded(request=request, purchase=purchase)
    return request
