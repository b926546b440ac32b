"""Who may do what in the sales admin (/staff/): two groups of Django model permissions, and
the accounts no one but a superuser may touch.

`is_staff` only opens the door of /staff/; what a staff member sees and changes there comes
from their groups. A staff member in no group sees nothing. Superusers hold every permission.

- **Sales** provision and run customer accounts: organizations, members, purchases, and the
  users who are not staff (create them, edit their name, email, paid and banned flags).
- **Sales lead**: everything Sales does, and the account-recovery powers that could hand over
  someone's account, so they sit with fewer people: set a customer's password, reset a
  customer's second factor, and read the audit log.

Whatever their groups, a non-superuser never changes a superuser or another staff account
(any field, password, second factor), nor anyone's staff or superuser flag, groups or
permissions: those stay with superusers (`accounts.services.staff_refusal`).
"""

SALES = "Sales"
SALES_LEAD = "Sales lead"

# Custom permissions on the user model (declared in `User.Meta.permissions`).
RESET_SECOND_FACTOR = "accounts.reset_second_factor"
SET_USER_PASSWORD = "accounts.set_user_password"

SALES_PERMISSIONS = [
    "accounts.view_organization",
    "accounts.add_organization",
    "accounts.change_organization",
    "accounts.view_membership",
    "accounts.add_membership",
    "accounts.change_membership",
    "accounts.delete_membership",  # ends a membership; the user and their history stay
    "accounts.view_user",
    "accounts.add_user",
    "accounts.change_user",
    # An organization's single sign-on (OpenID Connect): sales set it up with the customer.
    "accounts.view_identityprovider",
    "accounts.add_identityprovider",
    "accounts.change_identityprovider",
    "tokens.view_purchase",
    "tokens.add_purchase",
    "tokens.view_purchaserequest",
    "tokens.change_purchaserequest",  # "mark fulfilled" records the purchase asked for
    "tokens.view_monthlyusage",
    "tokens.view_usageevent",
    "tokens.view_tokenrequest",
    "tokens.view_allocationpolicy",
    "tokens.view_emaildelivery",  # the outbox: which emails failed for good, and why
    # The model catalogue: sales add and retire models (never delete: grants refer to them).
    "tokens.view_platformmodel",
    "tokens.add_platformmodel",
    "tokens.change_platformmodel",
]
SALES_LEAD_PERMISSIONS = [
    *SALES_PERMISSIONS,
    RESET_SECOND_FACTOR,
    SET_USER_PASSWORD,
    "audit.view_auditlog",
    "tokens.view_periodicrun",  # the periodic jobs' runs, the nightly audit verification's
]
GROUPS = {SALES: SALES_PERMISSIONS, SALES_LEAD: SALES_LEAD_PERMISSIONS}

# Fields of a user that only a superuser may change: together they decide who is staff and
# what staff may do.
ESCALATION_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


def sync_staff_groups(group_model, permission_model, groups: dict | None = None) -> None:
    """Create or update the groups so that they hold exactly the permissions above.

    Takes the models as arguments so that a data migration can pass its historical ones, and
    `groups` so that an old migration can pass the groups as they were when it was written.
    """
    for name, perms in (GROUPS if groups is None else groups).items():
        group, _ = group_model.objects.get_or_create(name=name)
        wanted = [p.split(".", 1) for p in perms]
        found = list(
            permission_model.objects.filter(
                content_type__app_label__in={app for app, _ in wanted},
                codename__in={codename for _, codename in wanted},
            ).select_related("content_type")
        )
        by_key = {(p.content_type.app_label, p.codename): p for p in found}
        missing = [".".join(key) for key in wanted if tuple(key) not in by_key]
        if missing:
            raise LookupError(f"Permissions missing for group {name!r}: {', '.join(missing)}")
        group.permissions.set([by_key[tuple(key)] for key in wanted])
