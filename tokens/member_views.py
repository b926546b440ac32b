"""The member's home page: their own limits and usage, their token requests, and the form to
ask for more. In tokens, not accounts: it shows the pools' numbers and writes token requests."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.decorators import member_required
from accounts.http import AuthedRequest
from accounts.models import AUDITOR_READ_ONLY
from asksage_admin.lib import charts
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.htmx import respond
from asksage_admin.lib.http import client_ip
from asksage_admin.lib.wording import counted
from tokens import selectors
from tokens.forms import MemberPeriodForm, TokenRequestForm, add_domain_errors
from tokens.models import TokenKind, TokenRequest
from tokens.services import requests as request_services
from tokens.views._common import refusal_text

HOME = "tokens/member_home.html"


def _day_chart(usage: selectors.MemberUsage) -> charts.Chart:
    days = list(usage.by_day)
    return charts.columns(
        f"Your tokens per day, {usage.start:%Y-%m-%d} to {usage.end:%Y-%m-%d}",
        [f"{d:%b} {d.day}" for d in days],
        [(k.value, k.label, [usage.by_day[d][k.value] for d in days]) for k in TokenKind],
        label_every=-(-len(days) // 10) or 1,
    )


def _model_chart(usage: selectors.MemberUsage) -> charts.Chart:
    """The statistics page's "Usage by model" bars, for the member's own models."""
    return charts.bars(
        "Your usage by model",
        [(f"{m['model']} ({m['kind_label']})", m["tokens"], m["kind"]) for m in usage.by_model],
        width=960,  # the card's full width: 520 (Statistics' half column) scales up too large
    )


def _usage_context(request: AuthedRequest) -> dict:
    """ "Your usage" for the period in the query string (this month by default)."""
    choice, start, end, error = MemberPeriodForm(request.GET or None).period()
    usage = selectors.member_usage(request.user, request.membership, start, end)
    return {
        "usage": usage,
        "usage_chart": _day_chart(usage),
        "usage_model_chart": _model_chart(usage),
        "usage_kinds": [(k.label, usage.by_kind[k.value]) for k in TokenKind],
        "usage_range": choice,
        "usage_ranges": MemberPeriodForm.base_fields["range"].choices,
        "usage_error": error,
    }


def _home_context(request: AuthedRequest, form: TokenRequestForm | None = None) -> dict:
    context = selectors.member_home(request.user, request.membership)
    context["request_form"] = form or TokenRequestForm()
    context["my_requests"] = selectors.member_requests(request.user)
    context["allowed_models"] = selectors.allowed_models_for(request.membership)
    context.update(_usage_context(request))
    return context


@member_required
def home(request: AuthedRequest) -> HttpResponse:
    """A member's own limits and usage, their token requests and the form to ask for more."""
    return render(request, HOME, _home_context(request))


@require_POST
@member_required
def token_request_create(request: AuthedRequest) -> HttpResponse:
    """A member asks for more tokens; errors show on the form (under htmx, or re-rendered)."""
    if request.membership is None:
        messages.error(request, "You are not part of an organization, so there is no one to ask.")
        return redirect("member:home")
    if request.membership.is_read_only:
        return render(request, "403.html", {"reason": AUDITOR_READ_ONLY}, status=403)
    form = TokenRequestForm(request.POST)
    ok = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            created = request_services.token_request_create(
                user=request.user,
                kind=data["kind"],
                amount=data["amount"],
                reason=data["reason"],
                ip=client_ip(request),
            )
        except DomainError as exc:
            add_domain_errors(form, exc)
        else:
            if created.status == created.Status.APPROVED:
                n = created.granted
                ok = (
                    f"Approved at once: {counted(n, created.kind + ' token')} "
                    f"{'was' if n == 1 else 'were'} added."
                )
            else:
                ok = (
                    f"Request sent: {counted(created.amount, created.kind + ' token')}. "
                    "Your admins will decide."
                )
    return respond(
        request,
        template=HOME,
        fragment="my-requests",
        context=lambda: (
            {**_home_context(request), "request_sent": ok} if ok else _home_context(request, form)
        ),
        redirect_to=reverse("member:home"),
        ok=ok,
        error="" if ok else refusal_text(form),
        page_on_error=True,
    )


@require_POST
@member_required
def token_request_cancel(request: AuthedRequest, request_id: int) -> HttpResponse:
    """A member withdraws their own pending request; another person's id answers 404."""
    if request.membership is None or request.membership.is_read_only:
        return render(request, "403.html", {"reason": AUDITOR_READ_ONLY}, status=403)
    get_object_or_404(TokenRequest, pk=request_id, user=request.user)
    error, ok = "", ""
    try:
        cancelled = request_services.token_request_cancel(
            user=request.user, request_id=request_id, ip=client_ip(request)
        )
        ok = f"Cancelled your request for {counted(cancelled.amount, cancelled.kind + ' token')}."
    except DomainError as exc:
        error = refusal_text(exc)
    return respond(
        request,
        template=HOME,
        fragment="my-requests",
        context=lambda: {
            **_home_context(request),
            "request_refused" if error else "request_sent": error or ok,
        },
        redirect_to=reverse("member:home"),
        ok=ok,
        error=error,
    )
