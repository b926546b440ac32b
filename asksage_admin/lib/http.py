"""Request helpers shared by the apps."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest | None) -> str | None:
    """The address the request came from, for audit rows and login throttling (axes).

    REMOTE_ADDR unless settings.TRUSTED_PROXY_COUNT says how many reverse proxies of ours
    stand in front of the app: each appends the address it received the request from to
    X-Forwarded-For, so the client is the entry that many places from the right. Entries
    further left were written by the client and are never read. A request that did not pass
    through all of them (too few entries) or carries a malformed entry is taken at its
    REMOTE_ADDR, which no client can forge.
    """
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if not proxies:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(hops) < proxies or not hops[-proxies]:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-proxies]))
    except ValueError:
        return remote
