"""Token records in the sales admin, and the organization's page that provisions an account
and records its purchases (`tokens.organizations`). The token lists are there to look at;
usage comes from the API. The users' pages are in `accounts.admin`.

Every write goes through a service, validated and audited there; these classes only collect
input and show refusals. Nothing is deleted from here: records are retained.
"""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import BigIntegerField, Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts import services as account_services
from accounts.admin_forms import OrganizationChangeForm
from accounts.models import Membership, Organization
from asksage_admin.lib.admin import ReadOnlyAdmin, ServiceErrorsAsMessages, StaffPermissions
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.forms import add_domain_errors
from asksage_admin.lib.months import current_month
from tokens import (
    admin_background,  # noqa: F401 - registers the outbox and periodic runs
    admin_catalogue,  # noqa: F401 - registers the model catalogue
    organizations,
)
from tokens.admin_forms import (
    MembershipInlineForm,
    MembershipInlineFormSet,
    ProvisionForm,
    PurchaseInlineForm,
)
from tokens.models import (
    AllocationPolicy,
    MonthlyUsage,
    Purchase,
    PurchaseRequest,
    TokenKind,
    TokenRequest,
    UsageEvent,
)
from tokens.selectors import pool_statuses
from tokens.services import purchases as purchase_services


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = [
        "organization",
        "kind",
        "tokens",
        "start_month",
        "end_month",
        "payment_reference",
        "created_at",
        "created_by",
    ]
    list_filter = ["kind", "organization"]
    search_fields = ["organization__name", "payment_reference"]
    list_select_related = ["organization", "created_by"]
    date_hierarchy = "start_month"

    @admin.display(description="tokens per month", ordering="tokens_per_month")
    def tokens(self, purchase: Purchase) -> str:
        return f"{purchase.tokens_per_month:,}"


@admin.register(MonthlyUsage)
class MonthlyUsageAdmin(ReadOnlyAdmin):
    list_display = ["month", "organization", "user", "kind", "tokens_used"]
    list_filter = ["kind", "month", "organization"]
    search_fields = ["user__email", "organization__name"]
    list_select_related = ["organization", "user"]

    @admin.display(description="used", ordering="used")
    def tokens_used(self, usage: MonthlyUsage) -> str:
        return f"{usage.used:,}"


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "organization", "user", "kind", "token_count", "model"]
    list_filter = ["kind", "organization"]
    search_fields = ["user__email", "organization__name", "model", "idempotency_key"]
    list_select_related = ["organization", "user"]
    date_hierarchy = "created_at"

    @admin.display(description="tokens", ordering="tokens")
    def token_count(self, event: UsageEvent) -> str:
        return f"{event.tokens:,}"


@admin.register(PurchaseRequest)
class PurchaseRequestAdmin(ReadOnlyAdmin):
    """Org admins' requests for more tokens. Fulfilling one records the purchase."""

    list_display = [
        "created_at",
        "organization",
        "kind",
        "tokens_per_month",
        "note",
        "requested_by",
        "status",
        "fulfilled_at",
        "fulfilled_by",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["organization__name", "requested_by__email", "note"]
    list_select_related = ["organization", "requested_by", "fulfilled_by"]
    actions = ["mark_fulfilled"]
    date_hierarchy = "created_at"

    @admin.display(description="tokens per month")
    def tokens_per_month(self, request: PurchaseRequest) -> str:
        return f"{request.tokens:,}"

    def has_fulfil_permission(self, request) -> bool:
        # The list is read-only; fulfilling records a purchase through the audited service.
        return request.user.has_perm("tokens.change_purchaserequest") and request.user.has_perm(
            "tokens.add_purchase"
        )

    @admin.action(
        description="Mark fulfilled (records the purchase from this month)",
        permissions=["fulfil"],
    )
    def mark_fulfilled(self, http_request, queryset):
        done = 0
        for purchase_request in queryset.select_related("organization", "requested_by"):
            try:
                purchase_services.purchase_request_fulfil(
                    actor=http_request.user, purchase_request=purchase_request
                )
            except DomainError as exc:
                self.message_user(
                    http_request,
                    f"{purchase_request.organization}: {' '.join(exc.messages)}",
                    messages.WARNING,
                )
            else:
                done += 1
        if done:
            self.message_user(
                http_request,
                f"{done} purchase request{'s' * (done != 1)} fulfilled and recorded.",
                messages.SUCCESS,
            )


@admin.register(TokenRequest)
class TokenRequestAdmin(ReadOnlyAdmin):
    """Members' requests and their decisions (made by org admins in the panel)."""

    list_display = ["created_at", "organization", "user", "kind", "amount", "status", "granted"]
    list_filter = ["status", "kind"]
    search_fields = ["organization__name", "user__email", "reason"]
    list_select_related = ["organization", "user"]
    date_hierarchy = "created_at"


@admin.register(AllocationPolicy)
class AllocationPolicyAdmin(ReadOnlyAdmin):
    """Each organization's preset and settings (chosen by its admins in the panel)."""

    list_display = ["organization", "preset", "ceiling", "trigger_percent", "updated_at"]
    list_filter = ["preset"]
    search_fields = ["organization__name"]
    list_select_related = ["organization"]


# --- Organizations ------------------------------------------------------------------------


def _pool_this_month(kind: str) -> Coalesce:
    month = current_month()
    totals = (
        Purchase.objects.filter(organization=OuterRef("pk"), kind=kind, start_month__lte=month)
        .filter(Q(end_month__isnull=True) | Q(end_month__gte=month))
        .order_by()
        .values("organization")
        .annotate(total=Sum("tokens_per_month"))
        .values("total")
    )
    return Coalesce(Subquery(totals), 0, output_field=BigIntegerField())


def _member_count() -> Coalesce:
    counts = (
        Membership.objects.filter(organization=OuterRef("pk"))
        .order_by()
        .values("organization")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts), 0)


class PurchaseHistoryInline(StaffPermissions, admin.TabularInline):
    """Recorded purchases are payment records: shown, never edited or deleted."""

    model = Purchase
    fields = [
        "kind",
        "tokens",
        "start",
        "end",
        "payment_reference",
        "note",
        "created_at",
        "created_by",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    # Each row links to its record: on a phone the table scrolls sideways, and a scrolling
    # region needs something a keyboard can reach (axe: scrollable-region-focusable).
    show_change_link = True
    verbose_name = "purchase"
    verbose_name_plural = "purchases (confirmed payments)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by").order_by("-start_month")

    @admin.display(description="tokens per month")
    def tokens(self, purchase: Purchase) -> str:
        return f"{purchase.tokens_per_month:,}"

    @admin.display(description="start month")
    def start(self, purchase: Purchase) -> str:
        return f"{purchase.start_month:%Y-%m}"

    @admin.display(description="end month")
    def end(self, purchase: Purchase) -> str:
        return f"{purchase.end_month:%Y-%m}" if purchase.end_month else "ongoing"


class PurchaseInline(StaffPermissions, admin.TabularInline):
    """Adds purchases (rows only, no existing ones: those are in the history above)."""

    model = Purchase
    form = PurchaseInlineForm
    extra = 0
    can_delete = False
    verbose_name = "purchase"
    verbose_name_plural = "record a purchase (in blocks of 2,000,000 tokens per month)"

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).none()


class MembershipInline(StaffPermissions, admin.TabularInline):
    """The members, one page of them at a time (`?members_page=`): an account of 130 inline
    made a 1.8 s page of 11,000 px. New rows are added on any page; the rules (2 users,
    1 admin, the pool) are checked against all the members in the database, not the page."""

    model = Membership
    form = MembershipInlineForm
    formset = MembershipInlineFormSet
    template = "admin/accounts/organization/members_inline.html"
    fields = ["email", "role", "max_inference", "max_embedding", "joined_at"]
    readonly_fields = ["max_inference", "max_embedding", "joined_at"]
    extra = 0
    verbose_name = "member"
    verbose_name_plural = "members"
    per_page = 25
    page_param = "members_page"

    class Media:
        css = {"all": ["css/staff_members.css"]}

    def member_page(self, request, org: Organization) -> Page:
        """This page's members (admins first, then by email), in two queries at any size."""
        pks = self.get_queryset(request).filter(organization=org).values_list("pk", flat=True)
        return Paginator(pks, self.per_page).get_page(request.GET.get(self.page_param))

    @admin.display(description="max inference tokens")
    def max_inference(self, membership: Membership) -> str:
        return f"{membership.max_inference_tokens:,}" if membership.pk else "—"

    @admin.display(description="max embedding tokens")
    def max_embedding(self, membership: Membership) -> str:
        return f"{membership.max_embedding_tokens:,}" if membership.pk else "—"

    def has_delete_permission(self, request, obj=None):
        # Removing a member only ends the membership; the user and their history stay.
        return request.user.has_perm("accounts.delete_membership")

    def get_queryset(self, request):
        # The organization too: each row's label (`Membership.__str__`) names it.
        return (
            super()
            .get_queryset(request)
            .select_related("user", "organization")
            .order_by("role", "user__email")
        )


@admin.register(Organization)
class OrganizationAdmin(ServiceErrorsAsMessages, StaffPermissions, admin.ModelAdmin):
    form = OrganizationChangeForm
    list_display = [
        "name",
        "status",
        "member_count",
        "inference_pool",
        "created_at",
        "activated_at",
    ]
    list_filter = ["status"]
    search_fields = ["name", "slug", "memberships__user__email"]
    actions = ["activate_selected", "suspend_selected"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "billing_address", "admin_notes"]}),
        (
            "Status",
            {
                "fields": ["status", "created_at", "activated_at", "suspended_at"],
                "description": "Status changes only through the list's actions "
                "(Activate / Suspend selected), so that each one is audited.",
            },
        ),
        (
            "Tokens this month",
            {"fields": ["pools", "inference_floor", "embedding_floor", "on_deactivation"]},
        ),
    ]
    readonly_fields = [
        "slug",
        "status",
        "created_at",
        "activated_at",
        "suspended_at",
        "pools",
        "inference_floor",
        "embedding_floor",
    ]
    inlines = [MembershipInline, PurchaseHistoryInline, PurchaseInline]
    ordering = ["name"]

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, MembershipInline) and obj is not None and obj.pk:
            page = inline.member_page(request, obj)
            kwargs["queryset"] = kwargs["queryset"].filter(pk__in=list(page.object_list))
            kwargs["page"] = page
        return kwargs

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=_member_count(), inference_pool=_pool_this_month(TokenKind.INFERENCE)
            )
        )

    @admin.display(description="members", ordering="member_count")
    def member_count(self, org: Organization) -> int:
        return org.member_count

    @admin.display(description="inference pool this month", ordering="inference_pool")
    def inference_pool(self, org: Organization) -> str:
        return f"{org.inference_pool:,}"

    @admin.display(description="pools (purchased · allocated · unallocated)")
    def pools(self, org: Organization) -> str:
        return format_html(
            "{}",
            format_html_join(
                mark_safe("<br>"),
                "{}: {} purchased · {} allocated · {} unallocated",
                (
                    (p.label, f"{p.purchased:,}", f"{p.allocated:,}", f"{p.available:,}")
                    for p in pool_statuses(org)
                ),
            ),
        )

    @admin.display(description="minimum inference tokens per member")
    def inference_floor(self, org: Organization) -> str:
        return f"{org.min_inference_tokens:,}"

    @admin.display(description="minimum embedding tokens per member")
    def embedding_floor(self, org: Organization) -> str:
        return f"{org.min_embedding_tokens:,}"

    # Provisioning replaces the add form: one page creates the account, its people and its
    # first purchase through `organizations.organization_provision`.
    def add_view(self, request, form_url="", extra_context=None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ProvisionForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                org = organizations.organization_provision(actor=request.user, **form.cleaned_data)
            except DomainError as exc:
                add_domain_errors(form, exc)
            else:
                self.log_addition(request, org, [{"added": {}}])
                members = org.memberships.count()
                state = (
                    "It is active."
                    if org.is_active
                    else "It is pending: activate it once the payment is confirmed."
                )
                self.message_user(
                    request,
                    f"{org.name} was provisioned with {members} users. {state}",
                    messages.SUCCESS,
                )
                return redirect("admin:accounts_organization_change", org.pk)
        fieldsets = [(title, {"fields": fields}) for title, fields in form.fieldsets]
        context = {
            **self.admin_site.each_context(request),
            "title": "Provision an enterprise account",
            "opts": self.opts,
            "adminform": helpers.AdminForm(form, fieldsets, {}),
            "form": form,
            "media": self.media + form.media,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/accounts/organization/provision.html", context)

    def save_model(self, request, obj, form, change):
        account_services.organization_update(
            actor=request.user,
            org=obj,
            name=form.cleaned_data["name"],
            billing_address=form.cleaned_data["billing_address"],
            admin_notes=form.cleaned_data["admin_notes"],
            on_deactivation=form.cleaned_data.get("on_deactivation"),
        )

    def save_formset(self, request, form, formset, change):
        org = form.instance
        if issubclass(formset.form, PurchaseInlineForm):
            formset.new_objects = [
                organizations.purchase_record(
                    actor=request.user,
                    org=org,
                    **{name: f.cleaned_data[name] for name in PurchaseInlineForm.Meta.fields},
                )
                for f in formset.extra_forms
                if f.has_changed()
            ]
            formset.changed_objects, formset.deleted_objects = [], []
        elif formset.model is Membership:
            add, set_roles, remove = formset.changes()
            formset.new_objects = organizations.membership_batch_save(
                actor=request.user, org=org, add=add, set_roles=set_roles, remove=remove
            )
            formset.changed_objects = [(m, ["role"]) for m, _ in set_roles]
            formset.deleted_objects = remove
        else:  # the purchase history is view-only: nothing to save
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def _change_status(self, request, queryset, change, done_label: str) -> None:
        done = 0
        for org in queryset:
            try:
                change(actor=request.user, org=org)
            except DomainError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                done += 1
        if done:
            noun = "organization" if done == 1 else "organizations"
            self.message_user(request, f"{done} {noun} {done_label}.", messages.SUCCESS)

    @admin.action(
        description="Activate selected (requires a recorded purchase)",
        permissions=["change"],
    )
    def activate_selected(self, request, queryset):
        self._change_status(request, queryset, organizations.organization_activate, "active")

    @admin.action(description="Suspend selected", permissions=["change"])
    def suspend_selected(self, request, queryset):
        self._change_status(request, queryset, account_services.organization_suspend, "suspended")
