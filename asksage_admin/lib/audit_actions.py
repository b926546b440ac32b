"""The audit trail's vocabulary: every action a row may record, its family and its words.

Writers refuse an action missing here (`audit.services.audit_record`), and the Activity
page's filter is built from this list, so every action ever written can be filtered and reads
as words. Values are stored; never rename one (old rows keep it), add a new one instead.
"""

from django.db import models


class AuditAction(models.TextChoices):
    LOGIN = "auth.login", "Signed in"
    LOGIN_FAILED = "auth.login_failed", "Failed sign-in"
    MFA_ENROLLED = "mfa.enrolled", "Second factor set up"
    MFA_VERIFIED = "mfa.verified", "Second factor passed"
    MFA_FAILED = "mfa.failed", "Wrong second-factor code"
    MFA_RESET = "mfa.reset", "Second factor reset"
    MFA_RECOVERY_CODES = "mfa.recovery_codes", "Recovery codes issued"
    MFA_PASSKEY_ADDED = "mfa.passkey_added", "Passkey added"
    MFA_PASSKEY_REMOVED = "mfa.passkey_removed", "Passkey removed"
    USER_REGISTERED = "user.registered", "Registered"
    USER_TERMS_ACCEPTED = "user.terms_accepted", "Terms accepted"
    USER_CREATED = "user.created", "User created"
    USER_UPDATED = "user.updated", "User details changed"
    USER_PASSWORD = "user.password", "Password set by staff"
    USER_PAID = "user.paid", "Paid changed"
    USER_BANNED = "user.banned", "Banned changed"
    ORG_CREATED = "org.created", "Organization provisioned"
    ORG_UPDATED = "org.updated", "Organization details changed"
    ORG_STATUS = "org.status", "Organization status changed"
    MEMBERSHIP_ADDED = "membership.added", "Member added"
    MEMBERSHIP_REMOVED = "membership.removed", "Member removed"
    MEMBERSHIP_ROLE = "membership.role", "Role changed"
    INVITATION_SENT = "invitation.sent", "Invitation sent"
    INVITATION_RESENT = "invitation.resent", "Invitation sent again"
    INVITATION_REVOKED = "invitation.revoked", "Invitation revoked"
    INVITATION_ACCEPTED = "invitation.accepted", "Invitation accepted"
    PURCHASE_RECORDED = "purchase.recorded", "Purchase recorded"
    PURCHASE_REQUEST_CREATED = "purchase_request.created", "More tokens requested from sales"
    PURCHASE_REQUEST_FULFILLED = "purchase_request.fulfilled", "Purchase request fulfilled"
    ALLOCATION_CHANGED = "allocation.changed", "Limit changed"
    ALLOCATION_IMPORTED = "allocation.imported", "Limits imported from a file (pending)"
    TOKEN_REQUEST_CREATED = "token_request.created", "Token request sent"
    TOKEN_REQUEST_APPROVED = "token_request.approved", "Token request approved"
    TOKEN_REQUEST_DENIED = "token_request.denied", "Token request denied"
    TOKEN_REQUEST_CANCELLED = "token_request.cancelled", "Token request cancelled"
    POLICY_CHANGED = "policy.changed", "Distribution policy changed"
    POLICY_OPTIONS = "policy.options", "Distribution options changed"
    POLICY_OVERRIDE = "policy.override", "Per-user override changed"
    POLICY_OVERRIDE_REMOVED = "policy.override_removed", "Per-user override removed"
    DISTRIBUTION_APPLIED = "distribution.applied", "Distribution action applied"
    RECLAIM_APPLIED = "reclaim.applied", "Idle tokens reclaimed"
    ALERT_USAGE = "alert.usage", "Usage alert sent"
    ALERT_POOL = "alert.pool", "Low pool alert sent"
    API_KEY_CREATED = "api_key.created", "API key created"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    MODEL_CATALOGUE = "model.catalogue", "Model catalogue changed"
    MODEL_ACCESS = "model.access", "Model access changed"
    MODEL_RESTRICTED = "model.restricted", "Model restriction changed"
    EXPORT = "export.csv", "Export downloaded"
    STAFF_DENIED = "staff.denied", "Staff action refused"
    SSO_CONFIGURED = "sso.configured", "Single sign-on set up or changed"
    SSO_LINKED = "sso.linked", "Single sign-on identity bound to a user"
    SSO_REFUSED = "sso.refused", "Single sign-on refused"
    SSO_ACCOUNT_RECLAIMED = "sso.account_reclaimed", "Account reclaimed at its first single sign-on"
    SSO_SESSIONS_ENDED = "sso.sessions_ended", "Password sessions ended: single sign-on required"
    SSO_IDENTITIES_UNLINKED = (
        "sso.identities_unlinked",
        "Single sign-on identities unbound: the issuer changed",
    )
    ALERT_SSO_POOL = "alert.sso_pool", "Sign-in refused: pool too small for a new member"
    USAGE_EVENTS_DROPPED = "usage.events_dropped", "Usage events of a month dropped (retention)"


# The filter's groups, in the order the Activity page lists them.
FAMILIES: dict[str, str] = {
    "auth": "Sign-ins",
    "mfa": "Second factor",
    "allocation": "Limit changes",
    "token_request": "Token requests",
    "distribution": "Distribution actions",
    "reclaim": "Reclamation",
    "policy": "Policy changes",
    "alert": "Alerts",
    "user": "User changes",
    "membership": "Memberships",
    "invitation": "Invitations",
    "org": "Organization changes",
    "purchase": "Purchases",
    "purchase_request": "Purchase requests",
    "api_key": "API keys",
    "model": "Models",
    "export": "Exports",
    "staff": "Refused staff actions",
    "sso": "Single sign-on",
    "usage": "Usage retention",
}

_LABELS = dict(AuditAction.choices)


class UnknownAuditAction(ValueError):
    """A writer used an action outside the vocabulary: add it to AuditAction first."""


def family_of(action: str) -> str:
    return action.split(".", 1)[0]


def check_action(action: str) -> str:
    if action not in _LABELS or family_of(action) not in FAMILIES:
        raise UnknownAuditAction(f"{action!r} is not in asksage_admin.lib.audit_actions.")
    return action


def label_of(action: str) -> str:
    """The words for an action; an unknown (legacy) code reads as itself."""
    return _LABELS.get(action, action)


def filter_choices() -> list[tuple[str, str]]:
    """Each family, then each of its actions (when it has more than one), for a <select>."""
    choices: list[tuple[str, str]] = []
    for family, label in FAMILIES.items():
        members = [a for a in AuditAction if family_of(a.value) == family]
        choices.append((family, f"{label} (all)" if len(members) > 1 else label))
        if len(members) > 1:
            choices.extend((a.value, f"— {a.label}") for a in members)
    return choices
