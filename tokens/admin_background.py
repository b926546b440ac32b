"""Background work in the sales admin (/staff/), to look at: the email outbox, where sales see
which emails failed for good and why, and the periodic jobs' runs (the nightly audit
verification's verdict among them). Rows are written by tasks, never here."""

from django.contrib import admin

from asksage_admin.lib.admin import ReadOnlyAdmin
from tokens.models import EmailDelivery, PeriodicRun


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "recipients", "subject", "status", "attempts"]
    list_filter = ["status", "kind"]
    search_fields = ["subject", "to", "organization__name"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"
    fields = [
        "kind",
        "organization",
        "to",
        "subject",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "next_attempt_at",
        "sent_at",
        "body_text",
    ]

    @admin.display(description="to")
    def recipients(self, delivery: EmailDelivery) -> str:
        return ", ".join(delivery.to)


@admin.register(PeriodicRun)
class PeriodicRunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "job", "period", "status", "summary", "finished_at"]
    list_filter = ["job", "status"]
    date_hierarchy = "started_at"
