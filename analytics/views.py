"""Analytics pages of the Admin Panel: Token Statistics, Activity Logs, exports."""

import datetime as dt
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.decorators import org_admin_required
from accounts.http import PanelRequest
from analytics import charts, exports, selectors, services
from analytics.filters import ACTIONS, ActivityFilter, DateRangeForm
from tokens.models import TokenKind

KIND_LABELS = dict(TokenKind.choices)


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _period(request: PanelRequest, default: str = "30"):
    """The page's period from the query string; a bad one falls back to the default, and says so."""
    form = DateRangeForm(request.GET, default=default)
    if form.is_valid():
        return form, *form.period(), ""
    fallback = DateRangeForm({}, default=default)
    fallback.is_valid()
    return form, *fallback.period(), form.error_text()


def _day_label(day: dt.date, span: int) -> str:
    return f"{day:%b %d}" if span > 1 else f"{day:%Y-%m-%d}"


@require_GET
@org_admin_required
def statistics(request: PanelRequest) -> HttpResponse:
    org = request.org
    form, start, end, period_error = _period(request)
    span = (end - start).days + 1

    by_month = selectors.usage_by_month(org)
    months = list(by_month)
    month_chart = charts.columns(
        "Tokens used per month",
        [f"{m:%b %Y}" for m in months],
        [(k, KIND_LABELS[k], [by_month[m][k] for m in months]) for k in selectors.KINDS],
        label_every=max(len(months) // 12, 1),
    )
    years: dict[int, dict] = {}
    for month, kinds in by_month.items():
        year = years.setdefault(month.year, {"year": month.year, "months": [], "total": 0})
        year["months"].append({"month": month, **kinds, "total": sum(kinds.values())})
        year["total"] += sum(kinds.values())

    period = selectors.period_usage(org, start, end)
    by_day = period.by_day
    days = list(by_day)
    day_chart = charts.columns(
        f"Tokens used per day, {start:%Y-%m-%d} to {end:%Y-%m-%d}",
        [_day_label(d, span) for d in days],
        [(k, KIND_LABELS[k], [by_day[d][k] for d in days]) for k in selectors.KINDS],
        label_every=max(span // 10, 1),
    )

    statuses = selectors.pool_statuses(org, with_used=True)
    pool_chart = charts.bars(
        "Purchased, allocated and used this month",
        [
            (f"{s.label} {what}", value, css)
            for s in statuses
            for what, value, css in (
                ("purchased", s.purchased, "s-purchased"),
                ("allocated", s.allocated, "s-allocated"),
                ("used", s.used, "s-used"),
            )
        ],
    )
    top = selectors.top_users(org, start, end)
    top_chart = charts.bars(
        "Top users", [(u["user__name"] or u["user__email"], u["total"], "s-user") for u in top]
    )
    models = period.by_model
    model_chart = charts.bars(
        "Usage by model",
        [
            (f"{m['model']} ({KIND_LABELS.get(m['kind'], m['kind'])})", m["total"], m["kind"])
            for m in models
        ],
    )
    pools, at_risk = selectors.forecast(org, statuses=statuses)
    context = {
        "active": "statistics",
        "form": form,
        "start": start,
        "end": end,
        "span": span,
        "period_error": period_error,
        "range_value": "30" if period_error else form.cleaned_data["range"],
        "month_chart": month_chart,
        "years": sorted(years.values(), key=lambda y: y["year"], reverse=True),
        "day_chart": day_chart,
        "days": [{"day": d, **by_day[d], "total": sum(by_day[d].values())} for d in days],
        "pool_chart": pool_chart,
        "statuses": statuses,
        "top_chart": top_chart,
        "top": top,
        "model_chart": model_chart,
        "models": models,
        "pools": pools,
        "at_risk": at_risk,
        "window": selectors.FORECAST_WINDOW_DAYS,
        "period_query": _period_query(request),
        "exports": _export_links(request),
    }
    return render(request, "analytics/statistics.html", context)


def _period_query(request: PanelRequest) -> str:
    keep = request.GET.copy()
    for key in list(keep):
        if key not in {"range", "start", "end"}:
            del keep[key]
    return keep.urlencode()


def _export_links(request: PanelRequest) -> list[tuple[str, str]]:
    query = _period_query(request)
    suffix = f"?{query}" if query else ""
    links = [
        ("Users (all)", reverse("analytics:export", args=["users"])),
        ("Usage events", reverse("analytics:export", args=["usage-events"]) + suffix),
        ("Daily usage per user", reverse("analytics:export", args=["daily-usage"]) + suffix),
        ("Activity log", reverse("analytics:export", args=["activity"])),
    ]
    if selectors.token_request_model() is not None:
        links.insert(
            3, ("Token requests", reverse("analytics:export", args=["token-requests"]) + suffix)
        )
    return links


@require_GET
@org_admin_required
def export(request: PanelRequest, what: str) -> HttpResponse:
    """One CSV, streamed. A query string it cannot honour answers 400 and says why."""
    build = selectors.EXPORTS.get(what)
    if build is None:
        raise Http404("No such export.")
    try:
        data = build(request.org, request.GET)
    except selectors.BadQuery as error:
        return HttpResponseBadRequest(
            f"Cannot export {what}: {error}", content_type="text/plain; charset=utf-8"
        )
    services.audit_export(
        org=request.org,
        actor=request.user,
        what=what,
        ip=client_ip(request),
        query=request.GET.urlencode()[:500],
    )
    return exports.response(request.org.slug, data)


@require_GET
@org_admin_required
def activity(request: PanelRequest) -> HttpResponse:
    """The audit trail, filtered and paginated from the query string."""
    filterset = ActivityFilter(request.GET, queryset=selectors.audit_rows(request.org))
    valid = filterset.is_valid()
    rows = filterset.qs if valid else filterset.queryset.none()
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "active": "activity",
        "filter": filterset,
        "filter_error": "" if valid else filterset.error_text(),
        "page": page,
        "query": query,
        "actions": ACTIONS,
        "export_url": reverse("analytics:export", args=["activity"])
        + (f"?{query.urlencode()}" if query else ""),
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "analytics/activity.html#audit-table", context)
    return render(request, "analytics/activity.html", context)


@require_GET
@org_admin_required
def integrity(request: PanelRequest) -> HttpResponse:
    """The chain check behind the page's badge; loaded after the page so it never slows it."""
    context = {"active": "activity", "verdict": selectors.integrity(request.org)}
    if request.htmx:
        return render(request, "analytics/activity.html#integrity-badge", context)
    return render(request, "analytics/integrity.html", context)


@require_GET
@org_admin_required
def user_history(request: PanelRequest, user_id: int) -> HttpResponse:
    """One member's logins, usage per day by model and kind, requests and changes made to them."""
    membership = selectors.org_member(request.org, user_id)
    if membership is None:
        raise Http404("No such user in your organization.")
    user = membership.user
    form, start, end, period_error = _period(request)
    context = {
        "active": "activity",
        "member": membership,
        "person": user,
        "form": form,
        "start": start,
        "end": end,
        "period_error": period_error,
        "logins": selectors.user_logins(request.org, user),
        "usage_days": selectors.user_usage_by_day(request.org, user, start, end),
        "requests": selectors.user_requests(request.org, user),
        "changes": selectors.user_changes(request.org, user),
        "trail_url": reverse("analytics:activity") + "?" + urlencode({"target": user.email}),
    }
    return render(request, "analytics/user_history.html", context)
