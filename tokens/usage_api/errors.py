"""A refused API call (`UsageError`), the refusals both doors and both databases share, and
the headers an error answer carries besides its body."""

from django.conf import settings

from accounts.models import Organization
from asksage_admin.lib.errors import DomainError
from tokens.usage_api.results import Balance, UsageRequest

RETRY_AFTER_SECONDS = getattr(settings, "USAGE_API_RETRY_AFTER_SECONDS", 2)


class UsageError(DomainError):
    """A refused API call: an HTTP status, a stable code and a sentence for people."""

    def __init__(self, status: int, code: str, detail: str, **extra):
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra
        super().__init__(detail)

    def as_dict(self) -> dict:
        return {"error": self.code, "detail": self.detail, **self.extra}


def error_headers(error: UsageError) -> dict[str, str]:
    """What an error answer says besides its body: how to authenticate, when to retry."""
    if error.status == 401:
        return {"WWW-Authenticate": 'Bearer realm="api"'}
    if error.status == 503:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return {}


def invalid_key() -> UsageError:
    return UsageError(401, "invalid_key", "The API key is not valid.")


def key_revoked() -> UsageError:
    return UsageError(401, "key_revoked", "This API key was revoked.")


def organization_inactive(status: str) -> UsageError:
    label = Organization.Status(status).label.lower()
    return UsageError(
        403, "organization_inactive", f"The organization is {label}: its API keys are refused."
    )


def scope_missing(scope: str) -> UsageError:
    return UsageError(
        403,
        "scope_missing",
        f"This API key lacks the “{scope}” scope: create a key with it on the API Keys page.",
    )


def key_reused() -> UsageError:
    return UsageError(
        409,
        "idempotency_key_reused",
        "This Idempotency-Key was already used with a different request body.",
    )


def over_limit(usage: UsageRequest, balance: Balance) -> UsageError:
    return UsageError(
        402,
        "over_limit",
        f"{usage.tokens:,} {usage.kind} tokens would exceed the user's monthly max: "
        f"{balance.remaining:,} remaining.",
        requested=usage.tokens,
        **balance.as_dict(),
    )


def check_user_may_use(user) -> None:
    """A User, or anything with its is_banned, is_active and is_paid."""
    if user.is_banned:
        raise UsageError(403, "user_banned", "This user is banned: their usage is refused.")
    if not user.is_active:
        raise UsageError(403, "user_inactive", "This user's account is disabled.")
    if not user.is_paid:
        raise UsageError(403, "user_not_paid", "This user is paid off: they have no paid features.")


def model_not_allowed(model: str) -> UsageError:
    # The same answer for a model the organization did not enable for this user and for a
    # name outside the catalogue (while the organization restricts its models).
    return UsageError(
        403,
        "model_not_allowed",
        f"The model “{model[:100]}” is not enabled for this user in your organization.",
    )


def user_not_found() -> UsageError:
    # The same answer for an unknown email and another organization's user: emails of other
    # organizations cannot be probed with a key.
    return UsageError(404, "user_not_found", "No user with this email in your organization.")


def database_unavailable() -> UsageError:
    # Down, restarting, or a lock timeout: nothing was recorded; retry later.
    return UsageError(
        503,
        "database_unavailable",
        "The usage database is unavailable; nothing was recorded. Retry later.",
    )
