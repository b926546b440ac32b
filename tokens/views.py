"""Management pages of the Admin Panel: User Management, Token Distribution, Token Requests."""

import uuid
from urllib.parse import urlsplit

from django.contrib import messages
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from accounts import services as account_services
from accounts.decorators import org_admin_required
from accounts.http import PanelRequest
from accounts.models import Membership
from asksage_admin.lib.amounts import MAX_TOKENS
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.http import client_ip
from asksage_admin.lib.inputs import (
    InputError,
    header_text,
    parse_id,
    parse_whole,
    text_problem,
)
from tokens import selectors
from tokens.filters import UserTableFilter
from tokens.models import (
    COLUMN_LABELS,
    MAX_COLUMNS,
    AllocationBatch,
    ApiKey,
    TokenKind,
    TokenRequest,
)
from tokens.services import allocations as allocation_services
from tokens.services import api_keys as api_key_services
from tokens.services import distribution as distribution_services
from tokens.services import policy as policy_services
from tokens.services import purchases as purchase_services
from tokens.services import requests as request_services
from tokens.services._core import parse_int
from tokens.tables import UserTable, max_cell_context

PAGE = "tokens/users.html"
# A redirect target longer than this is not one of our pages: it must not become a header.
MAX_NEXT_URL = 2000


def _announce(response: HttpResponse, text: str) -> HttpResponse:
    """Say `text` to screen readers (the `announce` event, an HX-Trigger header). Bounded:
    the text can quote what was typed (emails, names), and a header line over a proxy's
    limit (8 KiB in nginx) loses the whole answer."""
    return trigger_client_event(response, "announce", {"text": header_text(text)})


def _check_text(form: dict[str, str]) -> None:
    """Refuse, field by field, posted text that cannot be stored or looked up the same way on
    both databases (NUL, unpaired surrogates): PostgreSQL raised on it (a 500)."""
    errors = {
        name: [f"The “{name.replace('_', ' ')}” field {problem}."]
        for name, value in form.items()
        if (problem := text_problem(value))
    }
    if errors:
        raise DomainError(errors=errors)


def _membership(request: PanelRequest, user_id: int) -> Membership:
    """The org's member with this user id, or 404: another organization's ids never resolve."""
    return get_object_or_404(
        Membership.objects.select_related("user", "organization"),
        organization=request.org,
        user_id=user_id,
    )


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
    table = UserTable(rows, request=request, order_by=params.get("sort") or ("name",))
    table.query = params  # django-tables2 renders the table with a context of its own
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
    query = params.urlencode()
    return {
        "table": table,
        "filter": filterset,
        "total": table.paginator.count,
        "table_query": params,
        "table_url": reverse("tokens:users") + (f"?{query}" if query else ""),
    }


def _page_params(request: PanelRequest) -> QueryDict:
    """The query string of the page an htmx POST came from (HX-Current-URL)."""
    current = (request.htmx.current_url_abs_path if request.htmx else None) or ""
    return QueryDict(urlsplit(current).query)


def _back_to_table(request: PanelRequest) -> HttpResponse:
    """Redirect to the table view the form came from; only ever to the user table."""
    target = request.POST.get("next", "")
    if (
        not target.startswith(reverse("tokens:users"))
        or "//" in target
        or "\\" in target
        or len(target) > MAX_NEXT_URL
    ):
        target = reverse("tokens:users")
    return redirect(target)


@require_GET
@org_admin_required
def user_table(request: PanelRequest) -> HttpResponse:
    """The user table; sorting, filtering and paging swap only `#user-table` under htmx."""
    context = _workspace(request, active="users", **_table_context(request, request.GET))
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, f"{PAGE}#user-table", context)
    last = request.session.pop("last_batch", None)
    if last:
        context["last_batch"] = AllocationBatch.objects.filter(
            organization=request.org, pk=last
        ).first()
    return render(request, PAGE, context)


def _cell_response(
    request, membership, column, *, editing=False, error=None, value=None, status=200
):
    context = max_cell_context(
        membership.user,
        column,
        selectors.pending_edits_for(request.user, request.org, [membership.user_id]).get(
            (membership.user_id, column)
        ),
    )
    context.update(editing=editing, error=error, typed=value, request=request)
    if editing:
        return render(request, f"{PAGE}#max-editor", context, status=status)
    html = render_to_string(f"{PAGE}#max-cell", context, request=request)
    html += render_to_string(f"{PAGE}#workspace-oob", _workspace(request), request=request)
    return HttpResponse(html, status=status)


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
    membership = _membership(request, user_id)
    if request.method == "GET":
        return _cell_response(request, membership, column)
    raw = request.POST.get("value", "")
    seen = request.POST.get("seen", "").strip()
    try:
        edit = allocation_services.pending_edit_set(
            admin=request.user,
            org=request.org,
            membership=membership,
            column=column,
            raw_value=raw,
            seen_value=_seen_value(seen),
        )
    except DomainError as exc:
        # 422 is swapped by our htmx config: the error shows at the cell, still editing.
        return _cell_response(
            request,
            membership,
            column,
            editing=True,
            error=" ".join(exc.messages),
            value=raw,
            status=422,
        )
    response = _cell_response(request, membership, column)
    label = COLUMN_LABELS[column]
    who = membership.user.get_full_name()
    if edit:
        text = f"{label} for {who}: {edit.new_value:,} pending (was {edit.old_value:,})."
    else:
        text = f"{label} for {who} is unchanged."
    return _announce(response, text)


def _seen_value(seen: str) -> int | None:
    """The max the editor showed (a hidden field): a whole amount, or nothing."""
    if not seen:
        return None
    try:
        return parse_whole(seen, label="The value shown", low=0, high=MAX_TOKENS)
    except InputError as exc:
        raise DomainError(f"{exc} Reload the page and edit the cell again.") from None


@require_GET
@org_admin_required
def max_cell_edit(request: PanelRequest, user_id: int, column: str) -> HttpResponse:
    if bad := _column_or_400(column):
        return bad
    return _cell_response(request, _membership(request, user_id), column, editing=True)


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
        return _after_batch(request, error=" ".join(exc.messages))
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
        return _after_batch(request, error=" ".join(exc.messages))
    n = len(result.changes)
    return _after_batch(
        request,
        info=f"Undone: {n} cell{'s' * (n != 1)} of {COLUMN_LABELS[result.batch.column]} restored.",
    )


@require_POST
@org_admin_required
def bulk_edit(request: PanelRequest) -> HttpResponse:
    """Selected rows (or every row matching the current filters) → pending edits."""
    column = request.POST.get("column", "")
    if request.POST.get("all_matching"):
        filterset = UserTableFilter(
            QueryDict(request.POST.get("query", "")),
            queryset=selectors.user_table_rows(request.org),
        )
        if not filterset.is_valid():
            return _after_batch(request, error="The filters of that selection are not valid.")
        user_ids = filterset.qs.values("pk")
    else:
        ids = request.POST.getlist("users")
        if not ids:
            return _after_batch(request, error="Select at least one user first.")
        try:
            user_ids = [parse_id(i, label="A selected user") for i in ids]
        except InputError:
            return _after_batch(
                request, error="The selection is not valid: reload the page and select again."
            )
    memberships = Membership.objects.filter(organization=request.org, user_id__in=user_ids)
    try:
        count = allocation_services.pending_bulk_create(
            admin=request.user,
            org=request.org,
            memberships=memberships,
            column=column,
            mode=request.POST.get("mode", ""),
            raw_amount=request.POST.get("amount", ""),
        )
    except DomainError as exc:
        return _after_batch(request, error=" ".join(exc.messages))
    label = COLUMN_LABELS[column]
    return _after_batch(
        request, info=f"{count} pending change{'s' * (count != 1)} to {label}: review and save."
    )


def _after_batch(
    request: PanelRequest, *, batch=None, changes=(), error=None, info=None
) -> HttpResponse:
    """Answer a batch action: the save bar (and pool summary) under htmx, else redirect."""
    if not request.htmx:
        if error:
            messages.error(request, error)
        elif info:
            messages.success(request, info)
        elif batch:
            messages.success(request, _saved_text(batch, changes))
            request.session["last_batch"] = str(batch.id)
        return _back_to_table(request)
    context = _workspace(
        request,
        last_batch=batch,
        changes=changes,
        batch_error=error,
        batch_info=info,
        saved_text=_saved_text(batch, changes) if batch else "",
        **_table_context(request, _page_params(request)),
    )
    # One answer refreshes the save bar, the pool summary and the table (out of band), so
    # the cells can never lag behind the batch that was just saved or undone.
    response = render(request, f"{PAGE}#batch-response", context)
    text = error or info or context["saved_text"]
    return _announce(response, text)


def _saved_text(batch, changes) -> str:
    n = len(changes)
    label = COLUMN_LABELS[batch.column]
    listed = ", ".join(f"{c.user.get_full_name()} {c.old:,} → {c.new:,}" for c in changes[:3])
    more = f" and {n - 3} more" if n > 3 else ""
    return f"Saved {n} change{'s' * (n != 1)} to {label}: {listed}{more}."


@require_POST
@org_admin_required
def user_flag(request: PanelRequest, user_id: int, flag: str) -> HttpResponse:
    """Toggle Paid or Banned; banning asks to confirm (hx-confirm, or a page without JS)."""
    if flag not in {"paid", "banned"}:
        return HttpResponseBadRequest(f"“{flag[:40]}” cannot be toggled.")
    membership = _membership(request, user_id)
    value = request.POST.get("value") in {"on", "true", "1", "yes"}
    if flag == "banned" and value and not request.htmx and not request.POST.get("confirmed"):
        return render(request, "tokens/confirm_ban.html", {"u": membership.user, "active": "users"})
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
        if not request.htmx:
            messages.error(request, " ".join(exc.messages))
            return redirect("tokens:users")
        response = render(request, f"{PAGE}#{flag}-cell", {"u": membership.user})
        return _announce(response, " ".join(exc.messages))
    state = {
        "paid": "paid" if user.is_paid else "not paid",
        "banned": "banned" if user.is_banned else "not banned",
    }[flag]
    text = f"{user.get_full_name()} is now {state}."
    if not request.htmx:
        messages.success(request, text)
        return _back_to_table(request)
    response = render(request, f"{PAGE}#{flag}-cell", {"u": user})
    return _announce(response, text)


# --- Token Distribution ------------------------------------------------------------------

DISTRIBUTION_PAGE = "tokens/distribution.html"


def _distribution_context(request: PanelRequest, **extra) -> dict:
    policy = selectors.policy_for(request.org)
    context = {
        "active": "distribution",
        "pools": selectors.pool_statuses(request.org, with_used=True),
        "policy": policy,
        "presets": selectors.preset_rows(),
        "actions": distribution_services.DISTRIBUTION_ACTIONS,
        "overrides": list(selectors.member_overrides(request.org)),
        "purchase_requests": list(selectors.open_purchase_requests(request.org)),
        "kinds": TokenKind.choices,
        "preset_form": {},
        "action_form": {"kind": "inference", "action": "split"},
        "reclaim_form": {"kind": "inference", "idle_days": policy.reclaim_idle_days},
    }
    context.update(extra)
    return context


def _distribution_response(request: PanelRequest, *, status: int = 200, **extra) -> HttpResponse:
    context = _distribution_context(request, **extra)
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, f"{DISTRIBUTION_PAGE}#distribution-body", context)
        text = extra.get("notice_error") or extra.get("notice_ok") or ""
        return _announce(response, text) if text else response
    return render(request, DISTRIBUTION_PAGE, context, status=status)


def _done(request: PanelRequest, text: str) -> HttpResponse:
    """Success: PRG for plain forms; the refreshed page body under htmx."""
    if request.htmx:
        return _distribution_response(request, notice_ok=text)
    messages.success(request, text)
    return redirect("tokens:distribution")


def _refused(request: PanelRequest, exc: DomainError, **extra) -> HttpResponse:
    return _distribution_response(
        request, status=422, notice_error=" ".join(exc.messages), errors=exc.errors, **extra
    )


@require_GET
@org_admin_required
def distribution(request: PanelRequest) -> HttpResponse:
    return _distribution_response(request)


def _post_dict(request: PanelRequest, *names: str) -> dict:
    return {name: request.POST.get(name, "") for name in names}


@require_POST
@org_admin_required
def distribution_preset(request: PanelRequest) -> HttpResponse:
    """Preview a preset's changes (op=preview), then apply them (op=apply)."""
    preset = request.POST.get("preset", "")
    raw = _post_dict(request, *policy_services.POLICY_FIELDS)
    form = {"preset": preset, **raw}
    try:
        _check_text(form)
        if request.POST.get("op") == "apply":
            policy = policy_services.policy_apply(
                admin=request.user, org=request.org, preset=preset, raw=raw, ip=client_ip(request)
            )
            return _done(request, f"The {policy.get_preset_display()} preset is now active.")
        preview = policy_services.policy_preview(org=request.org, preset=preset, raw=raw)
    except DomainError as exc:
        return _refused(request, exc, preset_form=form)
    return _distribution_response(request, preset_form=form, preset_preview=preview)


def _user_ids_from_emails(request: PanelRequest, text: str) -> list[int] | None:
    emails = account_services.parse_email_list(text)
    if not emails:
        return None
    found = dict(
        Membership.objects.filter(organization=request.org, user__email__in=emails).values_list(
            "user__email", "user_id"
        )
    )
    missing = [e for e in emails if e not in found]
    if missing:
        # Quote a few, shortened: the field can hold anything (100,000 characters of it).
        listed = ", ".join(header_text(e, 80) for e in missing[:10])
        more = f" and {len(missing) - 10:,} more" if len(missing) > 10 else ""
        raise DomainError(errors={"users": [f"Not in {request.org.name}: {listed}{more}."]})
    return list(found.values())


@require_POST
@org_admin_required
def distribution_action(request: PanelRequest) -> HttpResponse:
    """A distribution action: a dry-run preview first, then apply exactly what was previewed."""
    form = _post_dict(request, "kind", "action", "amount", "users", "signature")
    try:
        _check_text(form)
        user_ids = _user_ids_from_emails(request, form["users"])
        args = {
            "org": request.org,
            "kind": form["kind"],
            "action": form["action"],
            "raw_amount": form["amount"],
            "user_ids": user_ids,
        }
        if request.POST.get("op") == "pending":
            count = distribution_services.distribution_to_pending(admin=request.user, **args)
            text = f"{count} pending change{'s' * (count != 1)}: review and save them here."
            messages.success(request, text)
            if request.htmx:
                return HttpResponseClientRedirect(reverse("tokens:users"))
            return redirect("tokens:users")
        if request.POST.get("op") == "apply":
            result = distribution_services.distribution_apply(
                admin=request.user, signature=form["signature"], ip=client_ip(request), **args
            )
            n = len(result.changes)
            added = sum(c.new - c.old for c in result.changes)
            return _done(
                request,
                f"Applied to {n} user{'s' * (n != 1)}: {added:+,} {form['kind']} tokens allocated.",
            )
        plan = distribution_services.distribution_plan(**args)
    except DomainError as exc:
        return _refused(request, exc, action_form=form)
    return _distribution_response(request, action_form=form, plan=plan)


@require_POST
@org_admin_required
def distribution_reclaim(request: PanelRequest) -> HttpResponse:
    form = _post_dict(request, "kind", "idle_days", "signature")
    try:
        _check_text(form)
        days = parse_int(form["idle_days"], "idle_days", "Idle days", 1, 366)
        if request.POST.get("op") == "apply":
            result = distribution_services.reclaim_apply(
                admin=request.user,
                org=request.org,
                kind=form["kind"],
                idle_days=days,
                signature=form["signature"],
                ip=client_ip(request),
            )
            freed = sum(c.old - c.new for c in result.changes)
            return _done(request, f"Reclaimed {freed:,} {form['kind']} tokens to the pool.")
        plan = distribution_services.reclaim_plan(
            org=request.org, kind=form["kind"], idle_days=days
        )
    except DomainError as exc:
        return _refused(request, exc, reclaim_form=form)
    return _distribution_response(request, reclaim_form=form, reclaim_plan=plan)


@require_POST
@org_admin_required
def distribution_override(request: PanelRequest) -> HttpResponse:
    form = _post_dict(
        request,
        "email",
        "floor_inference",
        "ceiling_inference",
        "floor_embedding",
        "ceiling_embedding",
    )
    try:
        _check_text(form)
        membership = (
            Membership.objects.filter(
                organization=request.org, user__email__iexact=form["email"].strip()
            )
            .select_related("user")
            .first()
        )
        if membership is None:
            raise DomainError(
                errors={"email": [f"No member of {request.org.name} has that email."]}
            )
        policy_services.member_override_set(
            admin=request.user,
            org=request.org,
            membership=membership,
            pinned=bool(request.POST.get("pinned")),
            raw=form,
            ip=client_ip(request),
        )
    except DomainError as exc:
        return _refused(request, exc, override_form=form)
    return _done(request, f"Saved the override for {membership.user.email}.")


@require_POST
@org_admin_required
def distribution_override_remove(request: PanelRequest, user_id: int) -> HttpResponse:
    membership = _membership(request, user_id)  # another organization's user: 404
    try:
        user = policy_services.member_override_remove(
            admin=request.user, org=request.org, user_id=membership.user_id, ip=client_ip(request)
        )
    except DomainError as exc:
        return _refused(request, exc)
    return _done(request, f"Removed the override for {user.email}: the policy applies again.")


@require_POST
@org_admin_required
def distribution_options(request: PanelRequest) -> HttpResponse:
    form = _post_dict(
        request,
        "thresholds",
        "low_unallocated",
        "auto_approve_max",
        "auto_approve_below_percent",
        "reclaim_idle_days",
    )
    try:
        _check_text(form)
        policy_services.policy_options_update(
            admin=request.user,
            org=request.org,
            thresholds=form["thresholds"],
            low_unallocated=form["low_unallocated"],
            auto_approve_enabled=bool(request.POST.get("auto_approve_enabled")),
            auto_approve_max=form["auto_approve_max"],
            auto_approve_below_percent=form["auto_approve_below_percent"],
            reclaim_idle_days=form["reclaim_idle_days"],
            ip=client_ip(request),
        )
    except DomainError as exc:
        return _refused(request, exc, options_form=form)
    return _done(request, "Alerts, auto-approval and reclamation settings saved.")


@require_POST
@org_admin_required
def distribution_purchase_request(request: PanelRequest) -> HttpResponse:
    form = _post_dict(request, "kind", "blocks", "note")
    try:
        _check_text(form)
        created = purchase_services.purchase_request_create(
            admin=request.user,
            org=request.org,
            kind=form["kind"],
            raw_blocks=form["blocks"],
            note=form["note"],
            ip=client_ip(request),
        )
    except DomainError as exc:
        return _refused(request, exc, purchase_form=form)
    return _done(request, f"Sent to sales: {created.tokens:,} more {created.kind} tokens a month.")


# --- Token Requests ----------------------------------------------------------------------

REQUESTS_PAGE = "tokens/requests.html"


def _requests_tab(request: PanelRequest) -> str:
    tab = request.GET.get("tab") or request.POST.get("tab") or "pending"
    return tab if tab in selectors.REQUEST_TABS else "pending"


def _requests_context(request: PanelRequest, tab: str, **extra) -> dict:
    context = {
        "active": "requests",
        "tab": tab,
        "tabs": selectors.REQUEST_TABS,
        "tab_label": selectors.REQUEST_TABS[tab],
        "page": _requests_page(request, tab),
        "pools": selectors.pool_statuses(request.org),
        "pending_count": selectors.pending_request_count(request.org),
    }
    context.update(extra)
    return context


def _requests_page(request: PanelRequest, tab: str):
    """50 requests a page; a page number out of range shows the last page."""
    paginator = Paginator(selectors.token_requests(request.org, tab), 50)
    return paginator.get_page(request.GET.get("page"))


@require_GET
@org_admin_required
def requests(request: PanelRequest) -> HttpResponse:
    tab = _requests_tab(request)
    context = _requests_context(request, tab)
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, f"{REQUESTS_PAGE}#requests-region", context)
    return render(request, REQUESTS_PAGE, context)


def _after_decision(request: PanelRequest, *, ok: str = "", error: str = "", row_id=None):
    tab = _requests_tab(request)
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, ok)
        return redirect(f"{reverse('tokens:requests')}?tab={tab}")
    context = _requests_context(
        request, tab, decision_ok=ok, decision_error=error, error_row=row_id
    )
    response = render(request, f"{REQUESTS_PAGE}#requests-region", context)
    return _announce(response, error or ok)


@require_POST
@org_admin_required
def request_approve(request: PanelRequest, request_id: int) -> HttpResponse:
    get_object_or_404(TokenRequest, organization=request.org, pk=request_id)
    try:
        _check_text(_post_dict(request, "amount", "note"))
        decided = request_services.token_request_approve(
            admin=request.user,
            org=request.org,
            request_id=request_id,
            raw_amount=request.POST.get("amount", "").strip() or None,
            note=request.POST.get("note", ""),
            ip=client_ip(request),
        )
    except DomainError as exc:
        return _after_decision(request, error=" ".join(exc.messages), row_id=request_id)
    return _after_decision(
        request,
        ok=f"Approved {decided.granted:,} {decided.kind} tokens for {decided.user.email}.",
    )


@require_POST
@org_admin_required
def request_deny(request: PanelRequest, request_id: int) -> HttpResponse:
    get_object_or_404(TokenRequest, organization=request.org, pk=request_id)
    try:
        _check_text(_post_dict(request, "note"))
        decided = request_services.token_request_deny(
            admin=request.user,
            org=request.org,
            request_id=request_id,
            note=request.POST.get("note", ""),
            ip=client_ip(request),
        )
    except DomainError as exc:
        return _after_decision(request, error=" ".join(exc.messages), row_id=request_id)
    return _after_decision(
        request, ok=f"Denied {decided.user.email}'s request for {decided.amount:,} tokens."
    )


# --- API Keys ----------------------------------------------------------------------------

API_KEYS_PAGE = "tokens/api_keys.html"


def _api_keys_response(request: PanelRequest, status: int = 200, **extra) -> HttpResponse:
    context = {"active": "api_keys", "keys": selectors.api_keys_for(request.org), **extra}
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(
        request, f"{API_KEYS_PAGE}#api-keys" if partial else API_KEYS_PAGE, context, status=status
    )
    response["Cache-Control"] = "no-store"  # a new key's secret is on this page, once
    return response


@require_http_methods(["GET", "POST"])
@org_admin_required
def api_keys(request: PanelRequest) -> HttpResponse:
    """The organization's usage API keys; a created key's secret is shown in this answer only."""
    if request.method == "GET":
        return _api_keys_response(request)
    name = request.POST.get("name", "")
    try:
        _check_text({"name": name})
        key, secret = api_key_services.api_key_create(
            actor=request.user, org=request.org, name=name, ip=client_ip(request)
        )
    except DomainError as exc:
        # htmx 2 does not swap 4xx answers: the form shows its error with a 200 there.
        status = 200 if request.htmx else 400
        return _api_keys_response(request, status, errors=exc.messages, name=name[:100])
    return _api_keys_response(request, created=key, secret=secret)


@require_POST
@org_admin_required
def api_key_revoke(request: PanelRequest, key_id: int) -> HttpResponse:
    try:
        key = api_key_services.api_key_revoke(
            actor=request.user, org=request.org, key_id=key_id, ip=client_ip(request)
        )
        ok, text = True, f"Revoked “{key.name}” ({key.prefix}…): it is refused from now on."
    except ApiKey.DoesNotExist as exc:
        raise Http404("No such API key.") from exc
    except DomainError as exc:
        ok, text = False, " ".join(exc.messages)
    if request.htmx:
        return _api_keys_response(request, notice=text, notice_ok=ok)
    (messages.success if ok else messages.error)(request, text)
    return redirect("tokens:api_keys")
