"""The queries behind the CSV and XLSX exports, each with the filters its page shows."""

import datetime as dt

from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce

from accounts.models import Organization
from analytics.exports import Export
from analytics.filters import ActivityFilter, DateRangeForm, day_bounds
from analytics.selectors.activity import audit_rows
from tokens.filters import UserTableFilter
from tokens.models import DailyUsage, PlatformModel, TokenRequest, UsageEvent
from tokens.selectors import user_table_rows


def _display_name() -> Coalesce:
    """The catalogue's display name of a row's model, else the model as reported: part of
    the export's one query (a lookup on the catalogue's unique name), never a query a row."""
    catalogue = PlatformModel.objects.filter(name=OuterRef("model")).values("display_name")
    return Coalesce(Subquery(catalogue[:1]), F("model"))


class BadQuery(ValueError):
    """The query string of an export cannot be honoured; the message says why."""


def _period(params) -> tuple[dt.date, dt.date]:
    form = DateRangeForm(params)
    if not form.is_valid():
        raise BadQuery(form.error_text())
    return form.period()


def export_users(org: Organization, params) -> Export:
    """The User Management table with the filters it shows (search, role, paid, banned, near)."""
    filterset = UserTableFilter(params, queryset=user_table_rows(org))
    if not filterset.is_valid():
        raise BadQuery(
            "Some filters were not understood: "
            + "; ".join(f"{f} — {' '.join(e)}" for f, e in filterset.errors.items())
        )
    rows = filterset.qs.order_by("name", "id").values_list(
        "name",
        "email",
        "membership__role",
        "is_paid",
        "is_banned",
        "membership__max_inference_tokens",
        "inf_used",
        "inf_prev",
        "membership__max_embedding_tokens",
        "emb_used",
        "total_used",
        "last_login",
    )
    header = [
        "Name",
        "Email",
        "Role",
        "Paid",
        "Banned",
        "Max Inference Tokens",
        "Inference used this month",
        "Inference used last month",
        "Max Embedding Tokens",
        "Embedding used this month",
        "Total used",
        "Last login (UTC)",
    ]
    kinds = ["text", "text", "text", "bool", "bool", "int", "int", "int", "int", "int", "int"]
    return Export("users", header, rows, [*kinds, "time"])


def export_usage_events(org: Organization, params) -> Export:
    start, end = _period(params)
    low, high = day_bounds(start, end)
    rows = (
        UsageEvent.objects.filter(organization=org, created_at__gte=low, created_at__lt=high)
        .order_by("created_at", "id")
        .annotate(model_name=_display_name())
        .values_list("created_at", "user__email", "kind", "model", "model_name", "tokens")
    )
    header = ["Time (UTC)", "User email", "Kind", "Model", "Model name", "Tokens"]
    kinds = ["time", "text", "text", "text", "text", "int"]
    return Export("usage-events", header, rows, kinds)


def export_daily_usage(org: Organization, params) -> Export:
    start, end = _period(params)
    rows = (
        DailyUsage.objects.filter(organization=org, day__range=(start, end))
        .order_by("day", "user__email", "kind", "model")
        .annotate(model_name=_display_name())
        .values_list(
            "day", "user__email", "user__name", "kind", "model", "model_name", "tokens", "events"
        )
    )
    header = ["Day", "User email", "User name", "Kind", "Model", "Model name", "Tokens", "Events"]
    kinds = ["date", "text", "text", "text", "text", "text", "int", "int"]
    return Export("daily-usage", header, rows, kinds)


def export_token_requests(org: Organization, params) -> Export:
    start, end = _period(params)
    low, high = day_bounds(start, end)
    rows = (
        TokenRequest.objects.filter(organization=org, created_at__gte=low, created_at__lt=high)
        .order_by("created_at", "id")
        .values_list(
            "created_at",
            "user__email",
            "kind",
            "amount",
            "reason",
            "current_max",
            "status",
            "granted",
            "note",
            "decided_at",
        )
    )
    header = [
        "Requested (UTC)",
        "User email",
        "Kind",
        "Requested amount",
        "Reason",
        "Max when asked",
        "Status",
        "Granted",
        "Note",
        "Decided (UTC)",
    ]
    kinds = ["time", "text", "text", "int", "text", "int", "text", "int", "text", "time"]
    return Export("token-requests", header, rows, kinds)


def export_activity(org: Organization, params) -> Export:
    filterset = ActivityFilter(params, queryset=audit_rows(org))
    if not filterset.is_valid():
        raise BadQuery(filterset.error_text())
    rows = filterset.qs.values_list(
        "created_at",
        "actor__email",
        "actor_label",
        "action",
        "target_user__email",
        "column",
        "old_value",
        "new_value",
        "batch_id",
        "details",
        "ip",
        "seq",
        "hash",
    )
    header = [
        "Time (UTC)",
        "Actor email",
        "Actor label",
        "Action",
        "Target email",
        "Column",
        "Old",
        "New",
        "Batch",
        "Details",
        "IP",
        "Chain position",
        "Hash",
    ]
    kinds = ["time", "text", "text", "text", "text", "text", "text", "text", "uuid", "json"]
    return Export("activity", header, rows, [*kinds, "ip", "int", "text"])


EXPORTS = {
    "users": export_users,
    "usage-events": export_usage_events,
    "daily-usage": export_daily_usage,
    "token-requests": export_token_requests,
    "activity": export_activity,
}
