"""Token records in the sales admin: lists to look at. Purchases are added from an
organization's page (through `accounts.services.purchase_record`); usage comes from the API."""

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from tokens.models import MonthlyUsage, Purchase, UsageEvent


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
