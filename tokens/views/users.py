"""User Management: the user table, its inline Max cells, batches, bulk edits and flags."""

import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.http import HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import services as account_services
from accounts.decorators import org_admin_required
from accounts.http import PanelRequest
from accounts.models import Membership
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.htmx import page_or_partial, respond
from asksage_admin.lib.http import client_ip
from tokens import selectors
from tokens.filters import UserTableFilter
from tokens.forms import BulkEditForm, CellEditForm, InviteForm, UserFlagForm
from tokens.models import COLUMN_LABELS, MAX_COLUMNS, AllocationBatch
from tokens.services import allocations as allocation_services
from tokens.tables import UserTable, max_cell_context
from tokens.views._common import membership_or_404, refusal_text

PAGE = "tokens/users.html"
# A redirect target longer than this is not one of our pages: it must not become a header.
MAX_NEXT_URL = 2000


def _workspace(request: PanelRequest, **extra) -> dict:
    """Pool summary and save bar: what every allocation response refreshes."""
    pending_columns, delta = selectors.pending_summary(request.user, request.org)
    context = {
        "pools": selectors.pool_statuses(request.org, pending_delta=delta),
        "pending_columns": pending_columns,
        "column_labels": COLUMN_LABELS,
    }
    context.update(extra)
    return context


def _table_context(request: PanelRequest, params: QueryDict) -> dict:
    """The table for a query string: from the GET itself, or after a POST from the page's URL.

    Every sort, filter, search and page lives in `params`, so a view can be bookmarked.
    """
    filterset = UserTableFilter(params, queryset=selectors.user_table_rows(request.org))
    rows = filterset.qs if filterset.is_valid() else filterset.queryset.none()
    table = UserTable(
        rows,
        request=request,
        order_by=params.get("sort") or ("name",),
        exclude=() if request.can_edit else ("actions",),
    )
    table.query = params  # django-tables2 renders the table with a context of its own
    query = params.urlencode()
    table.url = reverse("tokens:users") + (f"?{query}" if query else "")
    try:
        table.paginate(page=params.get("page", 1), per_page=50)
    except PageNotAnInteger:
        table.paginate(page=1, per_page=50)
    except EmptyPage:
        table.paginate(page=table.paginator.num_pages, per_page=50)
    page_rows = list(table.page.object_list.data)
    table.pending = selectors.pending_edits_for(
        request.user, request.org, [row.pk for row in page_rows]
    )
    return {
        "table": table,
        "filter": filterset,
        "total": table.paginator.count,
        "table_query": params,
        "table_url": table.url,
    }


def invitations_context(
    request: PanelRequest, *, form: InviteForm | None = None, notice: str = "", ok: bool = True
) -> dict:
    """The Invitations section: who was invited and has not joined, and the invite form."""
    return {
        "invitations": selectors.open_invitations(request.org),
        "invite_form": form or InviteForm(),
        "role_choices": Membership.Role.choices,
        "invitation_ttl_hours": settings.INVITATION_TTL_HOURS,
        "invite_notice": notice,
        "invite_ok": ok,
    }


def _page_params(request: PanelRequest) -> QueryDict:
    """The query string of the page an htmx POST came from (HX-Current-URL)."""
    current = (request.htmx.current_url_abs_path if request.htmx else None) or ""
    return QueryDict(urlsplit(current).query)


def _table_url(request: PanelRequest) -> str:
    """The table view the form came from (`next`); only ever the user table."""
    target = request.POST.get("next", "")
    if (
        not target.startswith(reverse("tokens:users"))
        or "//" in target
        or "\\" in target
        or len(target) > MAX_NEXT_URL
    ):
        target = reverse("tokens:users")
    return target


@require_GET
@org_admin_required
def user_table(request: PanelRequest) -> HttpResponse:
    """The user table; sorting, filtering and paging swap only `#user-table` under htmx."""
    context = _workspace(
        request,
        active="users",
        **_table_context(request, request.GET),
        **invitations_context(request),
    )
    if not request.htmx or request.htmx.history_restore_request:
        last = request.session.pop("last_batch", None)
        if last:
            context["last_batch"] = AllocationBatch.objects.filter(
                organization=request.org, pk=last
            ).first()
    return page_or_partial(request, PAGE, "user-table", context)


def _cell_context(request: PanelRequest, membership: Membership, column: str, **extra) -> dict:
    """One Max cell (with its pending edit), plus the workspace its answer refreshes."""
    edit = selectors.pending_edits_for(request.user, request.org, [membership.user_id]).get(
        (membership.user_id, column)
    )
    context = _workspace(request, **max_cell_context(membership.user, column, edit))
    context.update(request=request, **extra)
    return context


def _column_or_400(column: str) -> HttpResponse | None:
    if column not in MAX_COLUMNS:
        return HttpResponseBadRequest(f"“{column[:40]}” is not an editable column.")
    return None


@require_http_methods(["GET", "POST"])
@org_admin_required
def max_cell(request: PanelRequest, user_id: int, column: str) -> HttpResponse:
    """GET: the cell as it stands (Escape). POST: confirm a typed value into a pending edit."""
    if bad := _column_or_400(column):
        return bad
    membership = membership_or_404(request, user_id)
    if request.method == "GET":
        return render(request, f"{PAGE}#max-cell", _cell_context(request, membership, column))
    form = CellEditForm(request.POST)
    edit, error = None, ""
    if form.is_valid():
        try:
            edit = allocation_services.pending_edit_set(
                admin=request.user,
                org=request.org,
                membership=membership,
                column=column,
                value=form.cleaned_data["value"],
                seen_value=form.cleaned_data["seen"],
            )
        except DomainError as exc:
            error = refusal_text(exc)
    else:
        error = refusal_text(form)
    if error:
        # 422 swaps (base.html's htmx config): the error shows at the cell, still editing.
        return respond(
            request,
            template=PAGE,
            fragment="max-editor",
            context=lambda: _cell_context(
                request,
                membership,
                column,
                editing=True,
                error=error,
                typed=form.data.get("value", ""),
            ),
            redirect_to=reverse("tokens:users"),
            error=error,
            fragment_only=True,
        )
    label, who = COLUMN_LABELS[column], membership.user.get_full_name()
    if edit:
        text = f"{label} for {who}: {edit.new_value:,} pending (was {edit.old_value:,})."
    else:
        text = f"{label} for {who} is unchanged."
    return respond(
        request,
        template=PAGE,
        fragment=("max-cell", "workspace-oob"),
        context=lambda: _cell_context(request, membership, column),
        redirect_to=reverse("tokens:users"),
        ok=text,
        fragment_only=True,
    )


@require_GET
@org_admin_required
def max_cell_edit(request: PanelRequest, user_id: int, column: str) -> HttpResponse:
    if bad := _column_or_400(column):
        return bad
    context = _cell_context(request, membership_or_404(request, user_id), column, editing=True)
    return render(request, f"{PAGE}#max-editor", context)


def _after_batch(
    request: PanelRequest, *, batch=None, changes=(), error: str = "", info: str = ""
) -> HttpResponse:
    """Answer a batch action: one fragment refreshes the save bar, the pool summary and the
    table (out of band), so the cells never lag behind the batch just saved or undone."""
    saved = _saved_text(batch, changes) if batch else ""
    if batch and not request.htmx:
        request.session["last_batch"] = str(batch.id)  # the Undo button after the redirect
    return respond(
        request,
        template=PAGE,
        fragment="batch-response",
        context=lambda: _workspace(
            request,
            last_batch=batch,
            changes=changes,
            batch_error=error,
            batch_info=info,
            saved_text=saved,
            **_table_context(request, _page_params(request)),
        ),
        redirect_to=_table_url(request),
        ok=info or saved,
        error=error,
    )


def _saved_text(batch, changes) -> str:
    n = len(changes)
    label = COLUMN_LABELS[batch.column]
    listed = ", ".join(f"{c.user.get_full_name()} {c.old:,} → {c.new:,}" for c in changes[:3])
    more = f" and {n - 3} more" if n > 3 else ""
    return f"Saved {n} change{'s' * (n != 1)} to {label}: {listed}{more}."


@require_POST
@org_admin_required
def batch_save(request: PanelRequest, column: str) -> HttpResponse:
    if bad := _column_or_400(column):
        return bad
    try:
        result = allocation_services.allocation_batch_save(
            admin=request.user,
            org=request.org,
            column=column,
            signature=request.POST.get("signature"),
            ip=client_ip(request),
        )
    except allocation_services.BatchRejected as exc:
        return _after_batch(request, error=exc.messages[0])
    except DomainError as exc:
        return _after_batch(request, error=refusal_text(exc))
    return _after_batch(request, batch=result.batch, changes=result.changes)


@require_POST
@org_admin_required
def batch_discard(request: PanelRequest, column: str) -> HttpResponse:
    if bad := _column_or_400(column):
        return bad
    count = allocation_services.pending_batch_discard(
        admin=request.user, org=request.org, column=column
    )
    return _after_batch(
        request,
        info=f"Discarded {count} pending change{'s' * (count != 1)} to {COLUMN_LABELS[column]}.",
    )


@require_POST
@org_admin_required
def batch_undo(request: PanelRequest, batch_id: uuid.UUID) -> HttpResponse:
    get_object_or_404(AllocationBatch, organization=request.org, pk=batch_id)
    try:
        result = allocation_services.allocation_batch_undo(
            admin=request.user, org=request.org, batch_id=batch_id, ip=client_ip(request)
        )
    except DomainError as exc:
        return _after_batch(request, error=refusal_text(exc))
    n = len(result.changes)
    return _after_batch(
        request,
        info=f"Undone: {n} cell{'s' * (n != 1)} of {COLUMN_LABELS[result.batch.column]} restored.",
    )


@require_POST
@org_admin_required
def bulk_edit(request: PanelRequest) -> HttpResponse:
    """Selected rows (or every row matching the current filters) → pending edits."""
    form = BulkEditForm(request.POST)
    if not form.is_valid():
        return _after_batch(request, error=refusal_text(form))
    data = form.cleaned_data
    if data["all_matching"]:
        filterset = UserTableFilter(
            QueryDict(data["query"]), queryset=selectors.user_table_rows(request.org)
        )
        if not filterset.is_valid():
            return _after_batch(request, error="The filters of that selection are not valid.")
        user_ids = filterset.qs.values("pk")
    elif not data["users"]:
        return _after_batch(request, error="Select at least one user first.")
    else:
        user_ids = data["users"]
    memberships = Membership.objects.filter(organization=request.org, user_id__in=user_ids)
    try:
        count = allocation_services.pending_bulk_create(
            admin=request.user,
            org=request.org,
            memberships=memberships,
            column=data["column"],
            mode=data["mode"],
            amount=data["amount"],
        )
    except DomainError as exc:
        return _after_batch(request, error=refusal_text(exc))
    label = COLUMN_LABELS[data["column"]]
    return _after_batch(
        request, info=f"{count} pending change{'s' * (count != 1)} to {label}: review and save."
    )


@require_POST
@org_admin_required
def user_flag(request: PanelRequest, user_id: int, flag: str) -> HttpResponse:
    """Toggle Paid or Banned; banning asks to confirm (hx-confirm, or a page without JS)."""
    if flag not in {"paid", "banned"}:
        return HttpResponseBadRequest(f"“{flag[:40]}” cannot be toggled.")
    membership = membership_or_404(request, user_id)
    form = UserFlagForm(request.POST)
    if not form.is_valid():  # only text the databases cannot store
        return respond(
            request,
            template=PAGE,
            fragment=f"{flag}-cell",
            context=lambda: {"u": membership.user},
            redirect_to=_table_url(request),
            error=refusal_text(form),
        )
    value, confirmed = form.cleaned_data["value"], form.cleaned_data["confirmed"]
    if flag == "banned" and value and not request.htmx and not confirmed:
        return render(request, "tokens/confirm_ban.html", {"u": membership.user, "active": "users"})
    user, error = membership.user, ""
    try:
        user = account_services.user_set_flag(
            actor=request.user,
            org=request.org,
            user=membership.user,
            flag=f"is_{flag}",
            value=value,
            ip=client_ip(request),
        )
    except DomainError as exc:
        error = refusal_text(exc)
    state = {
        "paid": "paid" if user.is_paid else "not paid",
        "banned": "banned" if user.is_banned else "not banned",
    }[flag]
    return respond(
        request,
        template=PAGE,
        fragment=f"{flag}-cell",
        context=lambda: {"u": user},
        redirect_to=_table_url(request),
        ok=f"{user.get_full_name()} is now {state}.",
        error=error,
    )
