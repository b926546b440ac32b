"""The User Management page's shared context: the pool summary and save bar, the user table
for a query string, the Invitations section, and where a POST returns to. Both halves of the
page use it: the table and its cells (`users`), the people (`members`)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.http import QueryDict
from django.urls import reverse

from accounts.http import PanelRequest
from accounts.models import Membership
from tokens import selectors
from tokens.filters import UserTableFilter
from tokens.forms import InviteForm
from tokens.models import COLUMN_LABELS
from tokens.tables import PER_PAGE, CountedPaginator, UserTable

PAGE = "tokens/users.html"
MAX_PAGE = 10**7  # past any organization's last page
# A redirect target longer than this is not one of our pages: it must not become a header.
MAX_NEXT_URL = 2000


def workspace(request: PanelRequest, **extra) -> dict:
    """Pool summary and save bar: what every allocation response refreshes."""
    pending_columns, delta = selectors.pending_summary(request.user, request.org)
    context = {
        "pools": selectors.pool_statuses(request.org, pending_delta=delta),
        "pending_columns": pending_columns,
        "column_labels": COLUMN_LABELS,
    }
    context.update(extra)
    return context


def table_context(request: PanelRequest, params: QueryDict) -> dict:
    """The table for a query string: from the GET itself, or after a POST from the page's URL.

    Every sort, filter, search and page lives in `params`, so a view can be bookmarked.
    """
    filterset = UserTableFilter(params, queryset=selectors.user_table_rows(request.org))
    rows = filterset.qs if filterset.is_valid() else filterset.queryset.none()
    # Unfiltered, the rows are the members: counted from the membership index alone.
    filtered = any(params.get(name) for name in filterset.filters)
    sort = params.get("sort") or "name"
    through = _rows_through(params)
    if not filtered and sort.lstrip("-") == "total_used" and through is not None:
        rows = rows.filter(
            pk__in=selectors.members_first_by_total_used(
                request.org, descending=sort.startswith("-"), first=through
            )
        )
    table = UserTable(
        rows,
        request=request,
        order_by=sort,
        exclude=() if request.can_edit else ("actions",),
    )
    table.query = params  # django-tables2 renders the table with a context of its own
    query = params.urlencode()
    table.url = reverse("tokens:users") + (f"?{query}" if query else "")
    paging = {
        "paginator_class": CountedPaginator,
        "per_page": PER_PAGE,
        "count": None if filtered else selectors.member_count(request.org),
    }
    try:
        table.paginate(page=params.get("page", 1), **paging)
    except PageNotAnInteger:
        table.paginate(page=1, **paging)
    except EmptyPage:
        table.paginate(page=table.paginator.num_pages, **paging)
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


def _rows_through(params: QueryDict) -> int | None:
    """How many rows the requested page reaches to, as django-tables2 will resolve it: the
    first page's for a number that is not one; None (every row) for one below 1 or absurdly
    high, which it shows as the last page (a number past the end but sane is clamped lower,
    so it is covered)."""
    try:
        page = int(params.get("page", 1))
    except ValueError:
        return PER_PAGE
    return page * PER_PAGE if 1 <= page <= MAX_PAGE else None


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


def after_post(request: PanelRequest, **extra) -> dict:
    """The workspace and the table as the page an htmx POST came from shows them, and `extra`."""
    return workspace(request, **extra, **table_context(request, page_params(request)))


def page_params(request: PanelRequest) -> QueryDict:
    """The query string of the page an htmx POST came from (HX-Current-URL)."""
    current = (request.htmx.current_url_abs_path if request.htmx else None) or ""
    return QueryDict(urlsplit(current).query)


def table_url(request: PanelRequest) -> str:
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
