"""The User Management table."""

import django_tables2 as tables
from django.core.paginator import Paginator
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.functional import cached_property
from django.utils.html import format_html

from accounts.models import Membership
from accounts.sign_in import SECOND_FACTOR_LABELS, SIGN_IN_LABELS
from accounts.templatetags.local_time import local_time
from asksage_admin.lib.amounts import format_tokens
from tokens.models import COLUMN_LABELS, KIND_HELP, MAX_COLUMNS

CELLS = "tokens/users.html#{}"
PER_PAGE = 50  # rows a page of the user table shows


def render_cell(partial: str, context: dict, request, csrf_token: str | None = None) -> str:
    """Render a cell partial without running the context processors for every cell.

    Cells only need the request and the CSRF token; context processors (sidebar badges…)
    would cost queries per cell and break the page's constant query count. A table passes
    the token it got once: each `get_token` masks it anew (32 random characters), which
    for the 300 cells of a page cost more than the page's queries.
    """
    token = csrf_token or get_token(request)
    return render_to_string(
        CELLS.format(partial), {**context, "request": request, "csrf_token": token}
    )


class PartialColumn(tables.Column):
    """Renders one of the page's partials with the row; the htmx endpoints render the same."""

    def __init__(self, partial: str, **kwargs):
        self.partial = partial
        super().__init__(**kwargs)

    def render(self, record, table):
        return render_cell(
            self.partial, table.cell_context(record, self), table.request, table.csrf_token
        )


class LocalTimeColumn(tables.Column):
    """A time shown in the viewer's time zone by static/js/local-time.js, UTC on hover."""

    def render(self, value):
        return local_time(value)


class MaxColumn(tables.Column):
    """An editable allocation: display, pending or error state (`#max-cell`)."""

    def __init__(self, column: str, **kwargs):
        self.max_column = column
        kind = MAX_COLUMNS[column]
        super().__init__(
            accessor=f"membership__{column}",
            order_by=(f"membership__{column}", "id"),
            verbose_name=COLUMN_LABELS[column],
            attrs={
                "th": {"title": KIND_HELP[kind], "class": "num col-max"},
                "td": {"class": "num col-max", "data-column": column},
            },
            **kwargs,
        )

    def render(self, record, table):
        edit = table.pending.get((record.pk, self.max_column))
        return render_cell(
            "max-cell",
            max_cell_context(record, self.max_column, edit),
            table.request,
            table.csrf_token,
        )


def max_cell_context(user, column: str, edit) -> dict:
    return {
        "u": user,
        "column": column,
        "label": COLUMN_LABELS[column],
        "stored": getattr(user.membership, column),
        "edit": edit,
    }


class LabelColumn(tables.Column):
    """A stored code shown as its words ("totp" → "TOTP")."""

    def __init__(self, labels: dict[str, str], **kwargs):
        self.labels = labels
        super().__init__(**kwargs)

    def render(self, value):
        return self.labels.get(value, value)


class UsageColumn(tables.Column):
    """Tokens used, with a small bar against the max when `of` names the max column."""

    def __init__(self, of: str | None = None, **kwargs):
        self.of = of
        kwargs.setdefault("attrs", {"th": {"class": "num"}, "td": {"class": "num"}})
        super().__init__(**kwargs)

    def render(self, value, record):
        if not self.of:
            return format_tokens(value)
        limit = getattr(record.membership, self.of) or 0
        percent = min(round(100 * value / limit), 100) if limit else (100 if value else 0)
        level = "high" if percent >= 95 else "warn" if percent >= 80 else "ok"
        return format_html(
            '<span class="usage">{}<span class="bar bar-{}" role="img" aria-label="{}% of max">'
            '<span class="bar-fill w{}"></span></span></span>',
            format_tokens(value),
            level,
            percent,
            percent // 5 * 5,
        )


class UserTable(tables.Table):
    select = PartialColumn(
        "select-cell",
        verbose_name="",
        empty_values=(),
        orderable=False,
        attrs={"th": {"class": "col-select"}, "td": {"class": "col-select"}},
    )
    name = PartialColumn("name-cell", verbose_name="User", order_by=("name", "email", "id"))
    role = PartialColumn(
        "role-cell",
        accessor="membership__role",
        verbose_name="Role",
        order_by=("membership__role", "id"),
    )
    sign_in = LabelColumn(SIGN_IN_LABELS, verbose_name="Sign-in", order_by=("sign_in", "id"))
    second_factor = LabelColumn(
        SECOND_FACTOR_LABELS, verbose_name="Second factor", order_by=("second_factor", "id")
    )
    is_paid = PartialColumn("paid-cell", verbose_name="Paid", order_by=("is_paid", "id"))
    is_banned = PartialColumn("banned-cell", verbose_name="Banned", order_by=("is_banned", "id"))
    max_inference_tokens = MaxColumn("max_inference_tokens")
    inf_used = UsageColumn(
        of="max_inference_tokens", verbose_name="Inference used", order_by=("inf_used", "id")
    )
    inf_prev = UsageColumn(verbose_name="Inference last month", order_by=("inf_prev", "id"))
    max_embedding_tokens = MaxColumn("max_embedding_tokens")
    emb_used = UsageColumn(
        of="max_embedding_tokens", verbose_name="Embedding used", order_by=("emb_used", "id")
    )
    total_used = UsageColumn(verbose_name="Total usage", order_by=("total_used", "id"))
    last_login = LocalTimeColumn(verbose_name="Last login", order_by=("last_login", "id"))
    actions = PartialColumn(
        "actions-cell",
        verbose_name="Actions",
        empty_values=(),
        orderable=False,
        attrs={"th": {"class": "col-actions"}, "td": {"class": "col-actions"}},
    )

    class Meta:
        template_name = "tokens/users.html#table"
        attrs = {"class": "data-table user-table", "id": "users-grid"}
        row_attrs = {"data-user": lambda record: record.pk}
        order_by_field = "sort"
        per_page = PER_PAGE
        empty_text = "No users match these filters."

    def __init__(self, *args, pending=None, request=None, selected=(), **kwargs):
        self.pending = pending or {}
        self.request = request
        self.selected = set(selected)
        self.url = ""  # the view's own URL with its query string: where a row's form returns
        super().__init__(*args, **kwargs)

    @cached_property
    def csrf_token(self) -> str:
        return get_token(self.request)

    def cell_context(self, record, column) -> dict:
        return {
            "u": record,
            "request": self.request,
            "selected": record.pk in self.selected,
            "role_choices": Membership.Role.choices,
            "table_url": self.url,
        }


class CountedPaginator(Paginator):
    """A paginator told its count (`count=`, when known cheaper than by counting the rows)."""

    def __init__(self, *args, count: int | None = None, **kwargs):
        self.known_count = count
        super().__init__(*args, **kwargs)

    @cached_property
    def count(self) -> int:
        return super().count if self.known_count is None else self.known_count
