"""The sales admin at /staff/: the users' pages (the organization's page, with its pools and
purchases, is in `tokens.admin`; the audit log's in `audit.admin`).

Every write goes through `accounts.services`, validated and audited there; these classes only
collect input and show refusals. Nothing is deleted from here: records are retained.

What each staff member may see and do is Django's model permissions, granted by the groups
"Sales" and "Sales lead" (accounts/staff_roles.py); superusers hold them all. On top of those,
no non-superuser touches a staff or superuser account or anyone's privileges: such an attempt
answers 403 and is audited (`deny`).
"""

import copy
import functools

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services, staff_roles
from accounts.admin_forms import (
    StaffPasswordChangeForm,
    StaffUserChangeForm,
    StaffUserCreationForm,
)
from accounts.mfa import mfa_reset
from accounts.models import Membership, Organization, User
from asksage_admin.lib.admin import ServiceErrorsAsMessages, StaffPermissions
from asksage_admin.lib.http import client_ip

# The groups are defined in code (accounts/staff_roles.py, created by a migration), and who is
# in them is set on the user's page by a superuser (audited): no group editor here.
admin.site.unregister(Group)
# django-otp's device lists show every TOTP secret and recovery code (as a QR code, too) and
# change them unaudited; here a second factor is only ever reset, by the audited action below.
for _device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device_model):
        admin.site.unregister(_device_model)


def deny(
    request: HttpRequest,
    *,
    users: list[User | None],
    attempt: str,
    reason: str,
    fields: tuple[str, ...] | list[str] = (),
) -> HttpResponse:
    """Refuse a staff member's attempt: audit it, then answer 403 with the reason.

    A response rather than `raise PermissionDenied`: the audit row is committed in its own
    transaction, and a returned response never rolls back an enclosing request transaction.
    """
    services.staff_denied_record(
        actor=request.user,
        users=users or [None],
        attempt=attempt,
        reason=reason,
        path=request.path,
        fields=fields,
        ip=client_ip(request),
    )
    context = {**admin.site.each_context(request), "title": "Not allowed", "reason": reason}
    return TemplateResponse(request, "admin/denied.html", context, status=403)


# --- Users --------------------------------------------------------------------------------


class TermsAcceptedFilter(admin.SimpleListFilter):
    title = "terms accepted"
    parameter_name = "terms"

    def lookups(self, request, model_admin):
        return [("yes", "Accepted"), ("no", "Not accepted")]

    def queryset(self, request, queryset):
        if self.value() in {"yes", "no"}:
            return queryset.filter(terms_accepted_at__isnull=self.value() == "no")
        return queryset


class InOrganizationFilter(admin.SimpleListFilter):
    title = "organization membership"
    parameter_name = "member"

    def lookups(self, request, model_admin):
        return [("yes", "In an organization"), ("no", "In no organization")]

    def queryset(self, request, queryset):
        if self.value() in {"yes", "no"}:
            return queryset.filter(membership__isnull=self.value() == "no")
        return queryset


@admin.register(User)
class UserAdmin(ServiceErrorsAsMessages, StaffPermissions, auth_admin.UserAdmin):
    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    add_form_template = "admin/accounts/user/add_form.html"
    list_display = [
        "email",
        "name",
        "organization",
        "is_paid",
        "is_banned",
        "is_staff",
        "terms_accepted_at",
        "last_login",
    ]
    list_filter = [
        "is_paid",
        "is_banned",
        "is_staff",
        TermsAcceptedFilter,
        InOrganizationFilter,
        "membership__organization",
    ]
    list_select_related = ["membership__organization"]
    search_fields = ["email", "name"]
    actions = ["reset_second_factor"]

    def has_change_permission(self, request, obj=None):
        # Staff and superuser accounts are superusers' to change; to others they are read-only.
        if obj is not None and services.staff_refusal(
            actor=request.user, user=obj, attempt=services.STAFF_CHANGE
        ):
            return False
        return super().has_change_permission(request, obj)

    def has_reset_second_factor_permission(self, request) -> bool:
        return request.user.has_perm(staff_roles.RESET_SECOND_FACTOR)

    @admin.action(
        description="Reset second factor (they enrol again at next login)",
        permissions=["reset_second_factor"],
    )
    def reset_second_factor(self, request, queryset):
        users = list(queryset)
        refusals = {
            user: services.staff_refusal(
                actor=request.user, user=user, attempt=services.STAFF_MFA_RESET
            )
            for user in users
        }
        refused = [user for user, reason in refusals.items() if reason]
        if refused:
            # All or nothing: a selection that includes a staff account resets no one.
            return deny(
                request,
                users=refused,
                attempt=services.STAFF_MFA_RESET,
                reason=refusals[refused[0]],
            )
        for user in users:
            mfa_reset(actor=request.user, user=user)
        count = len(users)
        self.message_user(
            request, f"Second factor reset for {count} user{'s' * (count != 1)}.", messages.SUCCESS
        )

    ordering = ["email"]
    filter_horizontal = []
    fieldsets = [
        (None, {"fields": ["email", "name", "password"]}),
        (
            "Access",
            {
                "fields": ["is_paid", "is_banned", "is_staff", "is_superuser", "groups"],
                "description": "Paid and banned changes are audited. Users are never deleted: "
                "untick paid or tick banned to disable them. Staff access, superuser status "
                "and groups (Sales, Sales lead) are set by superusers only.",
            },
        ),
        ("Organization", {"fields": ["organization", "role"]}),
        ("Dates", {"fields": ["terms_accepted_at", "date_joined", "last_login"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "name", "password1", "password2"]}),
    ]
    readonly_fields = ["organization", "role", "terms_accepted_at", "date_joined", "last_login"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not request.user.is_superuser:
            fields += ["is_staff", "is_superuser", "groups"]
        return fields

    def changelist_view(self, request, extra_context=None):
        # Django drops an action the user may not run (without a word when no action is left
        # to them); a posted second-factor reset without the permission is an attempt worth a
        # 403 and a record.
        if (
            request.method == "POST"
            and self._posted_action(request) == "reset_second_factor"
            and not self.has_reset_second_factor_permission(request)
        ):
            selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            targets = self.get_queryset(request).filter(
                pk__in=[pk for pk in selected if pk.isdigit()]
            )
            return deny(
                request,
                users=list(targets),
                attempt=services.STAFF_MFA_RESET,
                reason="Only a sales lead can reset a second factor.",
            )
        return super().changelist_view(request, extra_context)

    @staticmethod
    def _posted_action(request) -> str:
        actions = request.POST.getlist("action")
        index = request.POST.get("index", "0")
        index = int(index) if index.isdigit() else 0
        return actions[index] if index < len(actions) else ""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Checked before the admin opens its transaction, and answered with a response: the
        # audit row of the refusal is committed (see `deny`).
        if request.method == "POST" and not request.user.is_superuser:
            user = self.get_object(request, unquote(object_id)) if object_id else None
            posted = [f for f in staff_roles.ESCALATION_FIELDS if f in request.POST]
            attempt = services.STAFF_ESCALATION if posted else services.STAFF_CHANGE
            if reason := services.staff_refusal(actor=request.user, user=user, attempt=attempt):
                changed = posted or sorted(set(request.POST) - {"csrfmiddlewaretoken"})
                return deny(request, users=[user], attempt=attempt, reason=reason, fields=changed)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        # modelform_factory built this class for this request alone: safe to attach the actor.
        form.actor = request.user
        return form

    @admin.display(description="organization", ordering="membership__organization__name")
    def organization(self, user: User) -> Organization | None:
        membership = self._membership(user)
        return membership.organization if membership else None

    @admin.display(description="role")
    def role(self, user: User) -> str:
        membership = self._membership(user)
        return membership.get_role_display() if membership else "—"

    @staticmethod
    def _membership(user: User) -> Membership | None:
        try:
            return user.membership
        except Membership.DoesNotExist:
            return None

    def save_model(self, request, obj, form, change):
        if not change:
            user = services.user_create(
                actor=request.user,
                email=form.cleaned_data["email"],
                name=form.cleaned_data["name"],
                password=form.cleaned_data.get("password1") or None,
            )
            # The admin redirects and logs with `obj`: give it the row the service created.
            obj.pk, obj.password, obj._state.adding = user.pk, user.password, False
            return
        org = self.organization(obj)
        for flag in ("is_paid", "is_banned"):
            if flag in form.changed_data:
                # A ban moves the member's allocation by the organization's policy, and an
                # un-ban the pool cannot cover is refused in words (ServiceErrorsAsMessages).
                services.user_set_flag(
                    actor=request.user,
                    org=org,
                    user=obj,
                    flag=flag,
                    value=form.cleaned_data[flag],
                    ip=client_ip(request),
                )
        changes = {
            f: form.cleaned_data[f] for f in form.changed_data if f in services.USER_STAFF_FIELDS
        }
        if changes:
            services.user_update(actor=request.user, user=obj, changes=changes)

    def save_related(self, request, form, formsets, change):
        # The groups were saved by `save_model` through the audited service, not by the form.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        user = self.get_object(request, unquote(id))
        if user is not None and user.pk != request.user.pk:
            reason = services.staff_refusal(
                actor=request.user, user=user, attempt=services.STAFF_PASSWORD
            )
            if not reason and not request.user.has_perm(staff_roles.SET_USER_PASSWORD):
                reason = "Only a sales lead can set another user's password."
            if reason:
                return deny(request, users=[user], attempt=services.STAFF_PASSWORD, reason=reason)
        # The password form saves through a service that records who acted. Bind the actor
        # to a copy of this admin for this request: the admin instance is shared by threads.
        for_request = copy.copy(self)
        for_request.change_password_form = functools.partial(
            StaffPasswordChangeForm, actor=request.user
        )
        return super(UserAdmin, for_request).user_change_password(request, id, form_url)


from accounts import admin_sso  # noqa: E402, F401  (registers the SSO page)
