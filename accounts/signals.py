"""Logins and failed logins land in the audit trail, with the address they came from."""

from axes.attempts import get_cool_off_threshold
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models import Sum
from django.dispatch import receiver

from accounts.models import Membership, Organization, User
from asksage_admin.lib.http import client_ip
from audit import services as audit


def _over_http(request) -> bool:
    """A login that came in over HTTP. The test client's `force_login` builds a bare request
    without REMOTE_ADDR (every WSGI/ASGI request has one); those in-process logins are not a
    person signing in and are not audited."""
    return request is not None and "REMOTE_ADDR" in request.META


def _organization_of(user: User | None) -> Organization | None:
    """The chain a login lands on: the user's organization, or the platform's (None)."""
    if user is None:
        return None
    membership = Membership.objects.select_related("organization").filter(user=user).first()
    return membership.organization if membership else None


@receiver(user_logged_in, dispatch_uid="audit_login")
def audit_login(sender, request, user, **kwargs) -> None:
    if _over_http(request):
        # A single sign-on (tokens.sso.views) says so on the row.
        via = {}
        if getattr(request, "sso_provider_id", None):
            via = {"via": "sso", "idp_mfa": bool(getattr(request, "sso_idp_mfa", False))}
        audit.audit_login(
            user=user, organization=_organization_of(user), ip=client_ip(request), **via
        )


def _failures_from_address(request) -> int:
    """Failed logins from this request's address within the cool-off, any email (axes' rows)."""
    since = get_cool_off_threshold(request)
    rows = AccessAttempt.objects.filter(ip_address=request.axes_ip_address, attempt_time__gte=since)
    return rows.aggregate(total=Sum("failures_since_start"))["total"] or 0


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    """A failed login goes on the audit chain only when it says something new, so strangers
    cannot grow an organization's chain (or the platform's) without bound: per account and
    cool-off, its first failure and the failure that locked it; for an email no account has,
    the first failure from that address. Every attempt, locked-out ones included, is still
    counted in django-axes' own tables (AccessAttempt, AccessFailureLog), outside the chain.

    django-axes' receiver runs first (axes is installed before accounts) and leaves the
    account's failure count in the cool-off on the request.
    """
    email = str(credentials.get("username") or credentials.get("email") or "").strip()
    user = User.objects.filter(email__iexact=email).first() if email else None
    ip = client_ip(request)
    organization = _organization_of(user)
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None:  # axes did not count it (no request): record it
        audit.audit_login_failed(email=email, user=user, organization=organization, ip=ip)
    elif user is None:
        if _failures_from_address(request) <= 1:
            audit.audit_login_failed(email=email, user=None, organization=None, ip=ip)
    elif failures == get_failure_limit(request, credentials):
        audit.audit_login_failed(
            email=email, user=user, organization=organization, ip=ip, locked_after=failures
        )
    elif failures == 1:
        audit.audit_login_failed(email=email, user=user, organization=organization, ip=ip)
