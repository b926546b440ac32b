"""User Management: the user table, its inline Max cells, batches, bulk edits and flags."""

import uuid

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
from tokens.forms import BulkEditForm, CellEditForm, UserFlagForm
from tokens.models import COLUMN_LABELS, MAX_COLUMNS, AllocationBatch
from tokens.services import allocations as allocation_services
from tokens.services import members as member_services
from tokens.tables import max_cell_context
from tokens.views import user_page
from tokens.views._common import membership_or_404, refusal_text


@require_GET
@org_admin_required
def user_table(request: PanelRequest) -> HttpResponse:
    """The user table; sorting, filtering and paging swap only `#user-table` under htmx."""
    context = user_page.workspace(
        request,
        active="users",
        **user_page.table_context(request, request.GET),
        **user_page.invitations_context(request),
    )
    if not request.htmx or request.htmx.history_restore_request:
        last = request.session.pop("last_batch", None)
        if last:
            context["last_batch"] = AllocationBatch.objects.filter(
                organization=request.org, pk=last
            ).first()
    return page_or_partial(request, user_page.PAGE, "user-table", context)


def _cell_context(request: PanelRequest, membership: Membership, column: str, **extra) -> dict:
    """One Max cell (with its pending edit), plus the workspace its answer refreshes."""
    edit = selectors.pending_edits_for(request.user, request.org, [membership.user_id]).get(
        (membership.user_id, column)
    )
    context = user_page.workspace(request, **max_cell_context(membership.user, column, edit))
    context.update(request=request, **extra)
    return context


def _ban_context(request: PanelRequest, user_id: int) -> dict:
    """The Banned cell, and what a ban moved (the organization's policy): the member's Max
    cells and the pool summary, swapped out of band as Save Changes refreshes the pool."""
    membership = membership_or_404(request, user_id)  # read again: the maxima just changed
    edits = selectors.pending_edits_for(request.user, request.org, [user_id])
    cells = [max_cell_context(membership.user, c, edits.get((user_id, c))) for c in MAX_COLUMNS]
    return user_page.workspace(request, u=membership.user, max_cells=cells)


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
        return render(
            request, f"{user_page.PAGE}#max-cell", _cell_context(request, membership, column)
        )
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
            template=user_page.PAGE,
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
        template=user_page.PAGE,
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
    return render(request, f"{user_page.PAGE}#max-editor", context)


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
        template=user_page.PAGE,
        fragment="batch-response",
        context=lambda: user_page.after_post(
            request,
            last_batch=batch,
            changes=changes,
            batch_error=error,
            batch_info=info,
            saved_text=saved,
        ),
        redirect_to=user_page.table_url(request),
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
            template=user_page.PAGE,
            fragment=f"{flag}-cell",
            context=lambda: {"u": membership.user},
            redirect_to=user_page.table_url(request),
            error=refusal_text(form),
        )
    value, confirmed = form.cleaned_data["value"], form.cleaned_data["confirmed"]
    if flag == "banned" and value and not request.htmx and not confirmed:
        return render(request, "tokens/confirm_ban.html", {"u": membership.user, "active": "users"})
    user, error = membership.user, ""
    try:
        if flag == "banned":
            user = member_services.member_banned_set(
                admin=request.user,
                org=request.org,
                membership=membership,
                value=value,
                ip=client_ip(request),
            )
        else:
            user = account_services.user_set_flag(
                actor=request.user,
                org=request.org,
                user=membership.user,
                flag="is_paid",
                value=value,
                ip=client_ip(request),
            )
    except DomainError as exc:
        error = refusal_text(exc)
    state = {
        "paid": "paid" if user.is_paid else "not paid",
        "banned": "banned" if user.is_banned else "not banned",
    }[flag]
    banned = flag == "banned"
    return respond(
        request,
        template=user_page.PAGE,
        fragment=("banned-cell", "workspace-oob", "max-cells-oob") if banned else "paid-cell",
        context=lambda: _ban_context(request, user.pk) if banned else {"u": user},
        redirect_to=user_page.table_url(request),
        ok=f"{user.get_full_name()} is now {state}.",
        error=error,
    )
