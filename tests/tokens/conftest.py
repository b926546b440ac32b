import os

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from tests.asgi import AsgiClient
from tests.factories import MembershipFactory, MonthlyUsageFactory


@pytest.fixture
def bob_usage(bob, org_a):
    """Bob has used 180,000 of his 200,000 inference tokens this month (90 %)."""
    return MonthlyUsageFactory(user=bob, organization=org_a, kind="inference", used=180_000)


@pytest.fixture
def many_members(org_a):
    def make(n: int, org=None):
        return [MembershipFactory(organization=org or org_a).user for _ in range(n)]

    return make


@pytest.fixture(scope="module")
def application():
    """The ASGI entry point: Django with the usage fast path in front (on PostgreSQL).

    Imported here, not at the top: importing it sets up Django's pool for servers it starts;
    not for the processes other tests start from this one."""
    before = os.environ.get("DATABASE_POOL")
    from asksage_admin.asgi import application

    if before is None:
        os.environ.pop("DATABASE_POOL", None)
    return application


@pytest.fixture(scope="module")
def asgi(application, django_db_setup, django_db_blocker):
    """One client (one event loop, one fast-path pool) for the module; closed before the
    test database is dropped."""
    client = AsgiClient(application)
    yield client
    with django_db_blocker.unblock():
        client.run(application.aclose())
        client.run(sync_to_async(connections.close_all)())
    client.close()
