"""Base classes of the sales admin's pages, shared by the apps that register models there."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from asksage_admin.lib.errors import DomainError


class StaffPermissions:
    """Django's model permissions decide (`user.has_perm`, granted by the staff groups); being
    staff alone shows nothing. Nothing can be deleted (users are disabled, purchases are
    payment records)."""

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(StaffPermissions, admin.ModelAdmin):
    """A list to look at: rows are written by services elsewhere, never here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ServiceErrorsAsMessages:
    """Shows a service's late refusal as a message instead of an error page."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            # The forms passed but a service, re-checking inside its transaction, refused
            # (someone changed the account meanwhile). The whole save was rolled back.
            for message in exc.messages:
                self.message_user(request, message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
