"""Model access on the usage fast path (PostgreSQL: one statement per batch; on SQLite the ASGI
application is Django itself): a disabled model is refused before anything is counted, in a
batch beside reports that are counted. That both doors answer a refusal byte for byte alike:
test_usage_fastpath.py's REFUSALS."""

import json

import pytest

from tests.factories import MembershipFactory, PlatformModelFactory, used
from tokens.models import DailyUsage, OrgDailyUsage, UsageEvent
from tokens.services import api_keys as api_key_services
from tokens.services import model_access as services

# Pinned mid-month: a report and the reading of "this month" must not fall on two sides of a
# month's end.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("mid_month")]

URL = "/api/v1/usage"


@pytest.fixture
def key_a(alice, org_a):
    return api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]


@pytest.fixture
def catalogue(db):
    return [PlatformModelFactory(name=n) for n in ("gpt-4o", "o1")]


def apost(asgi, key, user, model, idem, tokens=100):
    payload = {"user": user, "kind": "inference", "tokens": tokens, "model": model}
    return asgi.arequest(
        "POST", URL, json.dumps(payload), authorization=f"Bearer {key}", idempotency_key=idem
    )


def test_an_admin_disables_a_model_and_the_next_report_is_refused(
    asgi, key_a, alice, bob, org_a, catalogue
):
    assert asgi.run(apost(asgi, key_a, bob.email, "o1", "first")).status == 200
    services.model_access_set(actor=alice, org=org_a, model_name="o1", mode="off")
    answer = asgi.run(apost(asgi, key_a, bob.email, "o1", "second"))
    assert answer.status == 403 and answer.json()["error"] == "model_not_allowed"
    assert used(bob) == 100 and UsageEvent.objects.count() == 1
    # The retry of the first report still answers what it said.
    again = asgi.run(apost(asgi, key_a, bob.email, "o1", "first"))
    assert again.status == 200 and again.json()["replayed"] is True


def test_a_batch_counts_the_allowed_reports_and_refuses_the_others(
    asgi, key_a, alice, org_a, catalogue
):
    members = [
        MembershipFactory(organization=org_a, user__email=f"m{i}@example.com").user
        for i in range(10)
    ]
    services.model_access_set(
        actor=alice, org=org_a, model_name="o1", mode="users", emails=[members[0].email]
    )
    for i, m in enumerate(members):  # the month's rows, so the batch below counts at once
        assert asgi.run(apost(asgi, key_a, m.email, "gpt-4o", f"warm{i}", tokens=1)).status == 200
    answers = asgi.gather(
        apost(asgi, key_a, m.email, "o1", f"o1-{i}") for i, m in enumerate(members)
    )
    assert [a.status for a in answers] == [200] + [403] * 9
    assert {a.json()["error"] for a in answers[1:]} == {"model_not_allowed"}
    assert used(members[0]) == 101 and all(used(m) == 1 for m in members[1:])
    assert UsageEvent.objects.filter(model="o1").count() == 1
    assert DailyUsage.objects.get(model="o1").tokens == 100
    assert OrgDailyUsage.objects.get(model="o1").events == 1


def test_a_role_grant_follows_the_members_role(asgi, key_a, alice, bob, org_a, catalogue):
    services.model_access_set(
        actor=alice, org=org_a, model_name="o1", mode="roles", roles=["admin"]
    )
    assert asgi.run(apost(asgi, key_a, alice.email, "o1", "a")).status == 200
    assert asgi.run(apost(asgi, key_a, bob.email, "o1", "b")).status == 403
    services.model_access_set(
        actor=alice, org=org_a, model_name="o1", mode="roles", roles=["admin", "member"]
    )
    assert asgi.run(apost(asgi, key_a, bob.email, "o1", "c")).status == 200
