"""Request helpers shared by the apps."""

import functools
import ipaddress

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: HttpRequest | None) -> str | None:
    """The address the request came from, for audit rows, login throttling (axes) and logs.

    REMOTE_ADDR unless settings.TRUSTED_PROXY_COUNT says how many reverse proxies of ours
    stand in front of the app: each appends the address it received the request from to
    X-Forwarded-For, so the client is the entry that many places from the right. Entries
    further left were written by the client and are never read. A request that did not pass
    through all of them (too few entries) or carries a malformed entry is taken at its
    REMOTE_ADDR, which no client can forge. With TRUSTED_PROXY_ADDRESSES set, so is a request
    whose REMOTE_ADDR is not one of those proxies: one that reached the app around them.
    """
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if not proxies or not _from_a_trusted_proxy(remote):
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(hops) < proxies or not hops[-proxies]:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-proxies]))
    except ValueError:
        return remote


def _from_a_trusted_proxy(remote: str | None) -> bool:
    networks = trusted_proxy_networks(tuple(settings.TRUSTED_PROXY_ADDRESSES))
    if not networks:
        return True  # not configured: the proxy count alone decides
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


@functools.cache
def trusted_proxy_networks(addresses: tuple[str, ...]) -> tuple[Network, ...]:
    """Addresses or networks ("10.0.0.0/8", "192.0.2.7"); raises ValueError on a bad one."""
    return tuple(ipaddress.ip_network(address, strict=False) for address in addresses)
