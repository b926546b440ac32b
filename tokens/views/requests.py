"""Token Requests: the tabs of members' requests, and an admin's approve/deny decisions."""

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_admin_required
from accounts.http import PanelRequest
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.htmx import page_or_partial, respond
from asksage_admin.lib.http import client_ip
from asksage_admin.lib.wording import counted
from tokens import selectors
from tokens.forms import ApproveForm, DenyForm
from tokens.models import TokenRequest
from tokens.services import requests as request_services
from tokens.views._common import refusal_text

PAGE = "tokens/requests.html"


def _tab(request: PanelRequest) -> str:
    tab = request.GET.get("tab") or request.POST.get("tab") or "pending"
    return tab if tab in selectors.REQUEST_TABS else "pending"


def _context(request: PanelRequest, tab: str, **extra) -> dict:
    # 50 requests a page; a page number out of range shows the last page.
    paginator = Paginator(selectors.token_requests(request.org, tab), 50)
    context = {
        "active": "requests",
        "tab": tab,
        "tabs": selectors.REQUEST_TABS,
        "tab_label": selectors.REQUEST_TABS[tab],
        "page": paginator.get_page(request.GET.get("page")),
        "pools": selectors.pool_statuses(request.org),
        "pending_count": selectors.pending_request_count(request.org),
    }
    context.update(extra)
    return context


@require_GET
@org_admin_required
def requests(request: PanelRequest) -> HttpResponse:
    return page_or_partial(request, PAGE, "requests-region", _context(request, _tab(request)))


def _after_decision(request: PanelRequest, *, ok: str = "", error: str = "", row_id=None):
    tab = _tab(request)
    return respond(
        request,
        template=PAGE,
        fragment="requests-region",
        context=lambda: _context(
            request, tab, decision_ok=ok, decision_error=error, error_row=row_id
        ),
        redirect_to=f"{reverse('tokens:requests')}?tab={tab}",
        ok=ok,
        error=error,
    )


def _decide(request: PanelRequest, request_id: int, form_class, decide, said) -> HttpResponse:
    """One decision on one of the organization's requests (another's id: 404): the form,
    then the service, each refusal shown on the row, the outcome in words."""
    get_object_or_404(TokenRequest, organization=request.org, pk=request_id)
    form = form_class(request.POST)
    if not form.is_valid():
        return _after_decision(request, error=refusal_text(form), row_id=request_id)
    try:
        decided = decide(
            admin=request.user,
            org=request.org,
            request_id=request_id,
            ip=client_ip(request),
            **form.cleaned_data,
        )
    except DomainError as exc:
        return _after_decision(request, error=refusal_text(exc), row_id=request_id)
    return _after_decision(request, ok=said(decided))


@require_POST
@org_admin_required
def request_approve(request: PanelRequest, request_id: int) -> HttpResponse:
    """Approve as asked, or a smaller amount typed beside the button."""
    return _decide(
        request,
        request_id,
        ApproveForm,
        request_services.token_request_approve,
        lambda decided: (
            f"Approved {counted(decided.granted, decided.kind + ' token')} "
            f"for {decided.user.email}."
        ),
    )


@require_POST
@org_admin_required
def request_deny(request: PanelRequest, request_id: int) -> HttpResponse:
    return _decide(
        request,
        request_id,
        DenyForm,
        request_services.token_request_deny,
        lambda decided: (
            f"Denied {decided.user.email}'s request for {counted(decided.amount, 'token')}."
        ),
    )
