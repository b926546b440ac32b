"""The audit log in the sales admin: append-only, so it can be read and filtered, never edited."""

from django.contrib import admin

from audit.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Seen by those holding `audit.view_auditlog` (the "Sales lead" group); changed by no one."""

    list_display = [
        "created_at",
        "action",
        "organization",
        "actor_name",
        "target_user",
        "column",
        "old_value",
        "new_value",
    ]
    list_filter = ["action", "organization"]
    search_fields = ["action", "actor__email", "actor_label", "target_user__email"]
    list_select_related = ["organization", "actor", "target_user"]
    date_hierarchy = "created_at"
    readonly_fields = ["chain", "seq", "prev_hash", "hash"]

    def has_add_permission(self, request, obj=None):
        return False  # rows are written by services elsewhere, never here

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # append-only, whoever asks

    @admin.display(description="actor", ordering="actor__email")
    def actor_name(self, entry: AuditLog) -> str:
        return entry.actor_label or (entry.actor.email if entry.actor else "system")
