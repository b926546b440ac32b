"""Request helpers shared by the apps."""

from django.http import HttpRequest


def client_ip(request: HttpRequest | None) -> str | None:
    """The address the request came from, for audit rows.

    REMOTE_ADDR only: behind a proxy, configure the proxy (or a trusted middleware) to set it,
    never trust a client-sent X-Forwarded-For here.
    """
    return request.META.get("REMOTE_ADDR") if request is not None else None
