"""TRUSTED_PROXY_ADDRESSES: X-Forwarded-For counts only when a trusted proxy sent it."""

import pytest
from django.test import RequestFactory

from asksage_admin.lib.http import client_ip

FORWARDED = "198.51.100.1, 203.0.113.9"


@pytest.mark.parametrize(
    ("addresses", "remote", "expected"),
    [
        ([], "192.0.2.50", "203.0.113.9"),  # not configured: the count alone decides
        (["10.0.0.0/8"], "10.1.2.3", "203.0.113.9"),  # from the proxies' network
        (["10.0.0.0/8", "192.0.2.7"], "192.0.2.7", "203.0.113.9"),  # a listed address
        (["10.0.0.0/8"], "192.0.2.50", "192.0.2.50"),  # around the proxies: its own address
        (["2001:db8::/32"], "2001:db8::1", "203.0.113.9"),
        (["10.0.0.0/8"], "not-an-address", "not-an-address"),
    ],
)
def test_forwarded_for_is_read_only_from_a_trusted_proxy_address(
    settings, addresses, remote, expected
):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_ADDRESSES = addresses
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=FORWARDED)
    assert client_ip(request) == expected


def test_without_a_proxy_count_the_addresses_change_nothing(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.TRUSTED_PROXY_ADDRESSES = ["10.0.0.0/8"]
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR=FORWARDED)
    assert client_ip(request) == "10.1.2.3"
