"""Token records in the sales admin: lists to look at. Purchases are added from an
organization's page (through `accounts.services.purchase_record`); usage comes from the API."""

from django.contrib import admin, messages

from accounts.admin import ReadOnlyAdmin
from asksage_admin.lib.errors import DomainError
from tokens.models import (
    AllocationPolicy,
    MonthlyUsage,
    Purchase,
    PurchaseRequest,
    TokenRequest,
    UsageEvent,
)
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
