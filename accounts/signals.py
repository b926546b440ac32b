"""Logins and failed logins land in the audit trail, with the address they came from."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from analytics import services as audit
from asksage_admin.lib.http import client_ip


def _over_http(request) -> bool:
    """A login that came in over HTTP. The test client's `force_login` builds a bare request
    without REMOTE_ADDR (every WSGI/ASGI request has one); those in-process logins are not a
    person signing in and are not audited."""
    return request is not None and "REMOTE_ADDR" in request.META


@receiver(user_logged_in, dispatch_uid="audit_login")
def audit_login(sender, request, user, **kwargs) -> None:
    if _over_http(request):
        audit.audit_login(user=user, ip=client_ip(request))


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    email = credentials.get("username") or credentials.get("email") or ""
    audit.audit_login_failed(email=str(email), ip=client_ip(request))
