"""Analytics pages of the Admin Panel: Token Statistics, Activity Logs, exports."""

from urllib.parse import urlencode

from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.decorators import org_admin_required
from accounts.http import PanelRequest
from analytics import charts, exports, snapshots
from analytics.filters import ACTIONS, ActivityFilter, DateRangeForm, today
from analytics.selectors import activity as activity_selectors
from analytics.selectors import exports as export_selectors
from analytics.selectors import forecast as forecast_selectors
from analytics.selectors import statistics as statistics_selectors
from asksage_admin.lib.htmx import page_or_partial
from asksage_admin.lib.http import client_ip
from audit import chain
from audit.checkpoints import BADGE_BUDGET, checkpoint_verify_incremental
from audit.services import audit_export
from tokens.model_selectors import display_names


def _period(request: PanelRequest, default: str = "30"):
    """The page's period from the query string; a bad one falls back to the default, and says so."""
    form = DateRangeForm(request.GET, default=default)
    if form.is_valid():
        return form, *form.period(), ""
    fallback = DateRangeForm({}, default=default)
    fallback.is_valid()
    return form, *fallback.period(), form.error_text()


@require_GET
@org_admin_required
def statistics(request: PanelRequest) -> HttpResponse:
    """Charts of the rollups for a period from the query string, each with its numbers."""
    org = request.org
    form, start, end, period_error = _period(request)
    by_month = statistics_selectors.usage_by_month(org)
    period = statistics_selectors.period_usage(org, start, end)
    statuses = statistics_selectors.pools_this_month(org, by_month)
    expected = statistics_selectors.period_totals(period)
    top = statistics_selectors.top_users(org, start, end, expected=expected)
    pools = forecast_selectors.pool_forecasts(org, today(), statuses)
    at_risk = snapshots.users_at_risk(org)
    names = display_names()  # the catalogue's display names, one query
    context = {
        "active": "statistics",
        "form": form,
        "start": start,
        "end": end,
        "span": (end - start).days + 1,
        "period_error": period_error,
        "range_value": "30" if period_error else form.cleaned_data["range"],
        "month_chart": charts.month_chart(by_month),
        "years": statistics_selectors.by_year(by_month),
        "day_chart": charts.day_chart(period.by_day, start, end),
        "days": [{"day": d, **k, "total": sum(k.values())} for d, k in period.by_day.items()],
        "day_rows": charts.day_rows(period.by_day),
        "pool_chart": charts.pool_chart(statuses),
        "statuses": statuses,
        "top_chart": charts.top_users_chart(top),
        "top": top,
        "model_chart": charts.model_chart(period.by_model, names),
        "models": [{**m, "label": names.get(m["model"], m["model"])} for m in period.by_model],
        "pools": pools,
        "at_risk": at_risk.users,
        "at_risk_as_of": at_risk.as_of,
        "window": forecast_selectors.FORECAST_WINDOW_DAYS,
        "exports": _export_links(request),
    }
    return render(request, "analytics/statistics.html", context)


def _period_query(request: PanelRequest) -> str:
    keep = request.GET.copy()
    for key in list(keep):
        if key not in {"range", "start", "end"}:
            del keep[key]
    return keep.urlencode()


def _export_links(request: PanelRequest) -> list[tuple[str, str, str]]:
    """(label, CSV url, XLSX url) of each export; the period ones keep the page's period."""
    query = _period_query(request)
    suffix = f"?{query}" if query else ""
    exports = [
        ("Users (all)", "users", ""),
        ("Usage events", "usage-events", suffix),
        ("Daily usage per user", "daily-usage", suffix),
        ("Token requests", "token-requests", suffix),
        ("Activity log", "activity", ""),
    ]
    return [
        (
            label,
            reverse("analytics:export", args=[what]) + tail,
            reverse("analytics:export_xlsx", args=[what]) + tail,
        )
        for label, what, tail in exports
    ]


@require_GET
@org_admin_required
def export(request: PanelRequest, what: str, format: str = "csv") -> HttpResponse:
    """One CSV or XLSX, streamed. A query string it cannot honour answers 400 and says why."""
    build = export_selectors.EXPORTS.get(what)
    if build is None:
        raise Http404("No such export.")
    try:
        data = build(request.org, request.GET)
    except export_selectors.BadQuery as error:
        return HttpResponseBadRequest(
            f"Cannot export {what}: {error}", content_type="text/plain; charset=utf-8"
        )
    audit_export(
        org=request.org,
        actor=request.user,
        what=what,
        ip=client_ip(request),
        query=request.GET.urlencode()[:500],
        **({"format": format} if format != "csv" else {}),  # CSV rows read as they always did
    )
    return exports.response(
        request.org.slug, data, asgi=isinstance(request, ASGIRequest), format=format
    )


def _filtering(filterset: ActivityFilter) -> bool:
    return any(value not in (None, "") for value in filterset.form.cleaned_data.values())


@require_GET
@org_admin_required
def activity(request: PanelRequest) -> HttpResponse:
    """The audit trail, filtered and paginated from the query string."""
    filterset = ActivityFilter(request.GET, queryset=activity_selectors.audit_rows(request.org))
    valid = filterset.is_valid()
    rows = filterset.qs if valid else filterset.queryset.none()
    # Unfiltered, the trail's size is its chain's length: no COUNT over the whole trail.
    size = (
        activity_selectors.trail_size(request.org) if valid and not _filtering(filterset) else None
    )
    if size is None:
        paginator = Paginator(rows, 50)
    else:
        paginator = activity_selectors.CountedPaginator(rows, 50, count=size)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "active": "activity",
        "filter": filterset,
        "filter_error": "" if valid else filterset.error_text(),
        "page": page,
        "items": activity_selectors.page_items(page.object_list, rows),
        "query": query,
        "actions": ACTIONS,
        "export_url": reverse("analytics:export", args=["activity"])
        + (f"?{query.urlencode()}" if query else ""),
        "export_xlsx_url": reverse("analytics:export_xlsx", args=["activity"])
        + (f"?{query.urlencode()}" if query else ""),
    }
    return page_or_partial(request, "analytics/activity.html", "audit-table", context)


@require_GET
@org_admin_required
def integrity(request: PanelRequest) -> HttpResponse:
    """The chain check behind the page's badge; loaded after the page so it never slows it.

    Checks only the rows after the chain's verified checkpoint (bounded per view), so its
    cost follows the rows written since the last check, not the chain's length.
    """
    badge = checkpoint_verify_incremental(key=chain.chain_key(request.org.pk), budget=BADGE_BUDGET)
    context = {
        "active": "activity",
        "badge": badge,
        "verdict": badge.verdict,
        "budget": BADGE_BUDGET,
    }
    if request.htmx:
        return render(request, "analytics/activity.html#integrity-badge", context)
    return render(request, "analytics/integrity.html", context)


@require_GET
@org_admin_required
def user_history(request: PanelRequest, user_id: int) -> HttpResponse:
    """One member's logins, usage per day by model and kind, requests and changes made to them."""
    membership = activity_selectors.org_member(request.org, user_id)
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
        "logins": activity_selectors.user_logins(request.org, user),
        "usage_days": activity_selectors.user_usage_by_day(request.org, user, start, end),
        "requests": activity_selectors.user_requests(request.org, user),
        "changes": activity_selectors.user_changes(request.org, user),
        "trail_url": reverse("analytics:activity") + "?" + urlencode({"target": user.email}),
    }
    return render(request, "analytics/user_history.html", context)
