"""CSV exports served by the ASGI application stream as they do under WSGI.

Django under ASGI reads a synchronous iterator whole before sending a byte; the export gives
it an asynchronous one instead. Transactional: the ASGI application runs the view in a
thread of its own, on a connection of its own.
"""

import warnings

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.urls import reverse

from tests.asgi import AsgiClient
from tests.factories import utc_today

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def asgi(django_db_blocker):
    from django.core.asgi import get_asgi_application

    client = AsgiClient(get_asgi_application())
    yield client
    with django_db_blocker.unblock():
        client.run(sync_to_async(connections.close_all)())
    client.close()


def test_an_export_streams_in_chunks_under_asgi_as_under_wsgi(asgi, alice_client, bob, org_a):
    from tokens.models import DailyUsage

    DailyUsage.objects.bulk_create(
        DailyUsage(
            organization=org_a,
            user=bob,
            kind="inference",
            model=f"model-{n}-" + "x" * 60,
            day=utc_today(),
            tokens=n + 1,
            events=1,
        )
        for n in range(6000)
    )
    url = reverse("analytics:export", args=["daily-usage"])
    wsgi_body = b"".join(alice_client.get(url).streaming_content)
    cookie = (
        f"{settings.SESSION_COOKIE_NAME}={alice_client.cookies[settings.SESSION_COOKIE_NAME].value}"
    )

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "must consume synchronous iterators" would be one
        answer = asgi.request("GET", url, cookie=cookie)

    assert answer.status == 200 and answer["content-type"] == "text/csv; charset=utf-8"
    parts = [m for m in answer.messages if m["type"] == "http.response.body"]
    assert len([m for m in parts if m.get("body")]) >= 2  # sent as it was read
    assert all(m.get("more_body") for m in parts[:-1]) and not parts[-1].get("more_body")
    assert answer.body == wsgi_body
    assert answer.body.count(b"\n") == 6001
