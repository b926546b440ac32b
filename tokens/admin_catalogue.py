"""The model catalogue in the sales admin (/staff/): sales add models and retire them (never
delete: grants and usage refer to them by name). Saves go through the audited service, which
withdraws a retired model from the organizations that enabled it."""

from django.contrib import admin

from asksage_admin.lib.admin import ServiceErrorsAsMessages, StaffPermissions
from tokens.models import PlatformModel
from tokens.services.model_access import platform_model_save


@admin.register(PlatformModel)
class PlatformModelAdmin(ServiceErrorsAsMessages, StaffPermissions, admin.ModelAdmin):
    list_display = ["display_name", "name", "kind", "active", "created_at"]
    list_filter = ["kind", "active"]
    search_fields = ["name", "display_name"]
    fields = ["name", "display_name", "kind", "active"]

    def get_readonly_fields(self, request, obj=None):
        # The gateway's name is the model's identity: grants and usage rows refer to it.
        return ["name"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        platform_model_save(actor=request.user, model=obj, created=not change)
