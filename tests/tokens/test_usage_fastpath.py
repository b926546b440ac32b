"""The ASGI application's usage fast path (tokens/usage_api/fastpath.py), driven in process.

On PostgreSQL, `POST /api/v1/usage` through `asksage_admin.asgi.application` is served by
the fast path: batched, one statement per batch, on its own connections. On SQLite the same
application hands every request to Django. Every test here holds on both: the fast path must
answer exactly as the view does, and the view is what answers on SQLite.

The fast path's connections see only committed data: these tests are transactional.
"""

import asyncio
import json
import threading
import time
import uuid
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connection, connections, transaction
from django.db.models import Sum
from django.test import Client
from prometheus_client import REGISTRY

from accounts.models import Organization
from asksage_admin.lib.months import current_month
from tests.asgi import AsgiClient
from tests.factories import MembershipFactory, PlatformModelFactory, set_max, used
from tokens.models import DailyUsage, MonthlyUsage, UsageEvent, UsageEventKey
from tokens.services import api_keys as api_key_services
from tokens.services import auto_increase as auto_increase_services
from tokens.services.model_access import model_access_set
from tokens.usage_api import fastpath, pool, recording
from tokens.usage_api.results import UsageRequest

# Pinned mid-month: a report and the reading of "this month" (`used`) must not fall on two
# sides of a month's end.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("mid_month")]

URL = "/api/v1/usage"
FAST = connection.vendor == "postgresql"  # else the ASGI application is Django itself


# `application` and `asgi` (one in-process client per module): tests/tokens/conftest.py.


@pytest.fixture
def key_a(alice, org_a):
    return api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]


def body(user="bob@example.com", kind="inference", tokens=1_000, model="gpt-4o", **extra):
    return {"user": user, "kind": kind, "tokens": tokens, "model": model, **extra}


NO_KEY = ""  # idempotency_key=NO_KEY: send no Idempotency-Key header at all


def headers_for(key: str | None, idempotency_key: str | None = None, **extra) -> dict:
    """Headers of a report; a fresh Idempotency-Key unless one is given (the API requires
    one), none with NO_KEY."""
    headers = dict(extra)
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    if idempotency_key is None:
        idempotency_key = uuid.uuid4().hex
    if idempotency_key != NO_KEY:
        headers["idempotency_key"] = idempotency_key
    return headers


def post(asgi: AsgiClient, key, payload, idempotency_key=None, raw=None, **extra):
    data = raw if raw is not None else json.dumps(payload)
    return asgi.request("POST", URL, data, **headers_for(key, idempotency_key, **extra))


def apost(asgi: AsgiClient, key, payload, idempotency_key=None):
    return asgi.arequest("POST", URL, json.dumps(payload), **headers_for(key, idempotency_key))


def statements(application) -> int:
    """Round trips the fast path made to record usage (0 when it never ran)."""
    batcher = application.batcher
    return batcher.database.statements if batcher is not None else 0


# ---------------------------------------------------------------- recording


def test_the_asgi_application_records_usage_and_answers_the_balance(asgi, key_a, bob):
    answer = post(asgi, key_a, body(tokens=1_500), idempotency_key="req-1")
    assert answer.status == 200, answer.body
    data = answer.json()
    assert (data["max"], data["used"], data["remaining"]) == (200_000, 1_500, 198_500)
    assert data["user"] == "bob@example.com" and data["replayed"] is False
    assert answer["content-type"] == "application/json"
    assert answer["cache-control"] == "no-store"
    assert used(bob) == 1_500
    event = UsageEvent.objects.get()
    assert (event.pk, event.user, event.tokens, event.idempotency_key) == (
        data["event_id"],
        bob,
        1_500,
        "req-1",
    )
    daily = DailyUsage.objects.get()
    assert (daily.user, daily.model, daily.tokens, daily.events) == (bob, "gpt-4o", 1_500, 1)


def test_a_retry_through_either_door_answers_what_the_first_answer_said(asgi, key_a, bob):
    first = post(asgi, key_a, body(tokens=700), idempotency_key="k").json()
    via_django = Client().post(
        URL,
        json.dumps(body(tokens=700)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key_a}",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert via_django.json() == {**first, "replayed": True}
    again = post(asgi, key_a, body(tokens=700), idempotency_key="k")
    assert again.json() == {**first, "replayed": True}
    assert again["idempotent-replayed"] == "true"
    assert used(bob) == 700 and UsageEvent.objects.count() == 1


def test_an_idempotency_key_reused_with_another_body_is_a_conflict(asgi, key_a, bob):
    post(asgi, key_a, body(tokens=700), idempotency_key="abc")
    answer = post(asgi, key_a, body(tokens=701), idempotency_key="abc")
    assert answer.status == 409 and answer.json()["error"] == "idempotency_key_reused"
    assert used(bob) == 700


def test_a_retry_of_a_recorded_usage_is_answered_after_the_user_is_banned(asgi, key_a, bob):
    post(asgi, key_a, body(tokens=10), idempotency_key="k1")
    bob.is_banned = True
    bob.save()
    assert post(asgi, key_a, body(tokens=10), idempotency_key="k1").status == 200
    assert post(asgi, key_a, body(tokens=10), idempotency_key="k2").status == 403
    assert used(bob) == 10


def test_the_first_usage_of_the_month_creates_its_row(asgi, key_a, bob):
    assert not MonthlyUsage.objects.exists()
    assert post(asgi, key_a, body(tokens=10)).status == 200
    assert post(asgi, key_a, body(tokens=20)).status == 200
    row = MonthlyUsage.objects.get(user=bob)
    assert (row.month, row.used) == (current_month(), 30)


def test_a_first_usage_over_the_max_is_refused_without_creating_anything(asgi, key_a, bob):
    answer = post(asgi, key_a, body(tokens=200_001))
    assert answer.status == 402 and answer.json()["remaining"] == 200_000
    assert used(bob) == 0 and not UsageEvent.objects.exists()


def test_usage_over_the_max_is_refused_with_the_balance(asgi, key_a, bob, org_a):
    MonthlyUsage.objects.create(
        organization=org_a, user=bob, kind="inference", month=current_month(), used=180_000
    )
    answer = post(asgi, key_a, body(tokens=20_001))
    assert answer.status == 402
    data = answer.json()
    assert (data["used"], data["remaining"], data["requested"]) == (180_000, 20_000, 20_001)
    assert used(bob) == 180_000 and not UsageEvent.objects.exists()
    assert post(asgi, key_a, body(tokens=20_000)).json()["remaining"] == 0


def test_using_a_key_marks_when_it_was_last_used_at_most_once_a_minute(asgi, key_a, org_a, bob):
    post(asgi, key_a, body())
    first = org_a.api_keys.get().last_used_at
    assert first is not None
    post(asgi, key_a, body())
    assert org_a.api_keys.get().last_used_at == first


# ---------------------------------------------------------------- same answers as the view


@pytest.fixture
def world(org_a, org_b, alice, bob, carol, dave, key_a):
    """Keys and members for every refusal the API has."""
    MembershipFactory(organization=org_a, user__email="banned@example.com", user__is_banned=True)
    MembershipFactory(organization=org_a, user__email="unpaid@example.com", user__is_paid=False)
    revoked = api_key_services.api_key_create(actor=alice, org=org_a, name="Old")[1]
    api_key_services.api_key_revoke(
        actor=alice, org=org_a, key_id=org_a.api_keys.get(name="Old").pk
    )
    suspended = api_key_services.api_key_create(actor=carol, org=org_b, name="Birds")[1]
    Organization.objects.filter(pk=org_b.pk).update(status=Organization.Status.SUSPENDED)
    # Org A restricts its models: gpt-4o for everyone, o1 for admins only.
    for name in ("gpt-4o", "o1"):
        PlatformModelFactory(name=name)
    model_access_set(actor=alice, org=org_a, model_name="o1", mode="roles", roles=["admin"])
    return {"key": key_a, "revoked": revoked, "suspended": suspended}


REFUSALS = [
    ("no key", None, body(), None, {}),
    ("not shaped like a key", "not-a-key", body(), None, {}),
    ("unknown key", "ask_unknown", body(), None, {}),
    ("revoked key", "revoked", body(), None, {}),
    ("suspended organization", "suspended", body(), None, {}),
    ("malformed JSON", "key", None, "{nope", {}),
    ("NaN", "key", None, '{"tokens": NaN}', {}),
    ("too large", "key", None, json.dumps(body(padding="x" * 5_000)), {}),
    ("no user", "key", {"kind": "inference", "tokens": 5, "model": "m"}, None, {}),
    ("unknown kind", "key", body(kind="training"), None, {}),
    ("a list as kind", "key", body(kind=["inference"]), None, {}),
    ("true tokens", "key", body(tokens=True), None, {}),
    ("zero tokens", "key", body(tokens=0), None, {}),
    ("bad idempotency key", "key", body(), None, {"idempotency_key": "x" * 201}),
    ("no idempotency key", "key", body(), None, {"idempotency_key": NO_KEY}),
    ("a blank idempotency key", "key", body(), None, {"idempotency_key": "  "}),
    ("NUL in user", "key", body(user="bob\x00@example.com"), None, {}),
    ("NUL in model", "key", body(model="gpt\x00"), None, {}),
    ("lone surrogate in user", "key", body(user="bob\ud800@example.com"), None, {}),
    ("lone surrogate in model", "key", body(model="gpt\udfff"), None, {}),
    ("unknown user", "key", body(user="nobody@example.com"), None, {}),
    ("another organization's user", "key", body(user="dave@example.com"), None, {}),
    ("banned user", "key", body(user="banned@example.com"), None, {}),
    ("paid-off user", "key", body(user="unpaid@example.com"), None, {}),
    ("over the max", "key", body(tokens=10**9), None, {}),
    ("a model not enabled for the user", "key", body(model="o1"), None, {}),
    ("a model outside the catalogue", "key", body(model="mystery"), None, {}),
    (
        "banned, and a model not enabled",
        "key",
        body(user="banned@example.com", model="o1"),
        None,
        {},
    ),
]
# Headers the two doors may answer differently, and why. Every other header must be equal,
# by name and value, both ways (a header only one door sends is a difference). In process
# neither door sends these; behind a server both get them, each with its own value.
HEADERS_ALLOWED_TO_DIFFER = {
    "date",  # the HTTP server's clock at each answer
    "server",  # the HTTP server's name, added by the server to both doors' answers
    # A fresh id per request: Django's middleware adds it to the view's answers, and
    # asksage_admin.ops.asgi around both doors to the fast path's (tests/ops/test_asgi.py).
    "x-request-id",
}


def django_headers(response) -> dict[str, str]:
    """Every header of the view's answer as a server sends it, cookies included."""
    headers = {name.lower(): value for name, value in response.items()}
    if response.cookies:
        headers["set-cookie"] = "; ".join(m.OutputString() for m in response.cookies.values())
    return headers


def differing_headers(ours, django, *, ignore: frozenset[str] = frozenset()) -> dict:
    """{header: (the fast path's value, the view's value)} for each header they disagree on."""
    theirs = django_headers(django)
    names = (set(ours.headers) | set(theirs)) - HEADERS_ALLOWED_TO_DIFFER - ignore
    return {
        name: (ours.headers.get(name), theirs.get(name))
        for name in sorted(names)
        if ours.headers.get(name) != theirs.get(name)
    }


def via_django(data: str, headers: dict, scheme: str = "http"):
    meta = {f"HTTP_{k.upper()}": v for k, v in headers.items()}
    return Client().post(
        URL, data, content_type="application/json", secure=scheme == "https", **meta
    )


def via_asgi(client: AsgiClient, data: str, headers: dict, scheme: str = "http"):
    return client.run(client.arequest("POST", URL, data, scheme=scheme, **headers))


def both_doors(client: AsgiClient, data: str, headers: dict, scheme: str = "http"):
    """The same request through Django's view, then through the ASGI application."""
    django = via_django(data, headers, scheme)
    return via_asgi(client, data, headers, scheme), django


@pytest.fixture
def doors(settings):
    """A client of an ASGI application built now, so that its Django middleware reads the
    settings of the test (the module's application loaded them once): HSTS on, so HTTPS
    answers carry it on both doors."""
    from django.core.asgi import get_asgi_application

    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    app = fastpath.UsageFastPath(get_asgi_application())
    client = AsgiClient(app)
    yield client
    client.run(app.aclose())
    client.run(sync_to_async(connections.close_all)())
    client.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_every_refusal_is_answered_exactly_as_the_django_view_answers_it(doors, world, scheme):
    """Status, body bytes and every header, but the allowed ones (HEADERS_ALLOWED_TO_DIFFER)."""
    mismatches = []
    for name, key_name, payload, raw, extra in REFUSALS:
        key = world.get(key_name, key_name)
        data = raw if raw is not None else json.dumps(payload)
        ours, django = both_doors(doors, data, headers_for(key, **extra), scheme)
        headers = differing_headers(ours, django)
        if (ours.status, ours.body) != (django.status_code, django.content) or headers:
            mismatches.append((name, ours.status, django.status_code, headers, ours.body))
        assert 400 <= ours.status < 500, name
    assert not mismatches
    assert not UsageEvent.objects.exists() and not MonthlyUsage.objects.filter(used__gt=0)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_recorded_usage_its_replay_and_a_conflict_are_answered_alike_by_both_doors(
    doors, key_a, bob, org_a, scheme
):
    carol = MembershipFactory(organization=org_a, user__email="carol2@example.com").user
    report = body(user=carol.email, tokens=1_000)
    ours = via_asgi(doors, json.dumps(report), headers_for(key_a, "first"), scheme)
    django = via_django(json.dumps(body(tokens=1_000)), headers_for(key_a, "second"), scheme)
    # Two usages, two event ids (maybe of different lengths): each length is its own body's.
    assert (ours.status, django.status_code) == (200, 200)
    assert int(ours["content-length"]) == len(ours.body)
    assert int(django["Content-Length"]) == len(django.content)
    assert not differing_headers(ours, django, ignore=frozenset({"content-length"}))
    recorded = {"event_id", "user"}
    assert {k: v for k, v in ours.json().items() if k not in recorded} == {
        k: v for k, v in django.json().items() if k not in recorded
    }

    replayed = both_doors(doors, json.dumps(report), headers_for(key_a, "first"), scheme)
    conflict = both_doors(
        doors, json.dumps({**report, "tokens": 7}), headers_for(key_a, "first"), scheme
    )
    for (ours, django), status in ((replayed, 200), (conflict, 409)):
        assert ours.status == django.status_code == status
        assert ours.body == django.content
        assert not differing_headers(ours, django)
    assert replayed[0]["idempotent-replayed"] == "true"
    assert used(carol) == 1_000 and used(bob) == 1_000


PROXIED = [
    ("https from the proxy", {"x_forwarded_proto": "https"}, 200),
    ("plain http from the proxy", {"x_forwarded_proto": "http"}, 301),
    ("the first of two values", {"x_forwarded_proto": "https, http"}, 200),
    ("no header from the proxy", {}, 301),
    (
        "a forwarded host not allowed",
        {"x_forwarded_proto": "https", "x_forwarded_host": "evil.example.com"},
        400,
    ),
    (
        "an allowed forwarded host",
        {"x_forwarded_proto": "https", "x_forwarded_host": "localhost"},
        200,
    ),
]


def test_behind_a_proxy_both_doors_read_the_scheme_and_host_as_django_does(key_a, bob, settings):
    """SECURE_PROXY_SSL_HEADER, USE_X_FORWARDED_HOST, SECURE_SSL_REDIRECT: the fast path asks
    Django's own code (tokens/usage_api/gate.py), so both doors serve, redirect or refuse the
    same requests with the same headers."""
    from django.core.asgi import get_asgi_application

    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    settings.ALLOWED_HOSTS = ["testserver", "localhost"]
    app = fastpath.UsageFastPath(get_asgi_application())
    client = AsgiClient(app)
    try:
        for name, extra, status in PROXIED:
            before = statements(app)
            data = json.dumps(body(tokens=1))  # each door its own usage (Idempotency-Key)
            django = via_django(data, headers_for(key_a, **extra))
            ours = via_asgi(client, data, headers_for(key_a, **extra))
            assert ours.status == django.status_code == status, name
            if status == 200:  # two usages: each body has its own event id
                assert not differing_headers(ours, django, ignore=frozenset({"content-length"}))
                assert ours["strict-transport-security"].startswith("max-age=3600"), name
                assert statements(app) > before or not FAST, name  # the fast path served it
            else:
                assert ours.body == django.content, name
                assert not differing_headers(ours, django), name
                assert statements(app) == before, name
    finally:
        client.run(app.aclose())
        client.run(sync_to_async(connections.close_all)())
        client.close()
    assert used(bob) == 2 * 3


def test_an_unavailable_database_is_answered_alike_by_both_doors(key_a, bob, settings):
    settings.USAGE_API_POOL_TIMEOUT = 0.5
    app = fastpath.UsageFastPath(None, conninfo="host=127.0.0.1 port=1 connect_timeout=1")
    client = AsgiClient(app)
    try:
        with mock.patch.object(recording, "_record", side_effect=OperationalError("refused")):
            ours, django = both_doors(client, json.dumps(body()), headers_for(key_a))
    finally:
        client.run(app.aclose())
        client.close()
    assert (ours.status, ours.body) == (django.status_code, django.content)
    assert ours.status == 503 and ours["retry-after"] == django["Retry-After"]
    assert not differing_headers(ours, django)
    assert used(bob) == 0


@pytest.mark.parametrize(
    ("name", "payload", "idempotency_key", "error"),
    [
        ("no key", body(), NO_KEY, "missing_idempotency_key"),
        ("NUL in user", body(user="bob\x00@example.com"), None, "invalid_request"),
        ("lone surrogate in model", body(model="m\ud800"), None, "invalid_request"),
    ],
)
def test_a_nul_in_the_user_field_is_refused_with_400_on_both_doors(
    asgi, key_a, bob, name, payload, idempotency_key, error
):
    """And a report without an Idempotency-Key, and unpaired surrogates: the fast path and
    the view answer the same 400 (was a 500 from PostgreSQL on both for the text, and a
    counted report without a key)."""
    ours = post(asgi, key_a, payload, idempotency_key)
    meta = {f"HTTP_{k.upper()}": v for k, v in headers_for(key_a, idempotency_key).items()}
    django = Client().post(URL, json.dumps(payload), "application/json", **meta)
    answers = [(ours.status, ours.json()), (django.status_code, django.json())]
    assert answers[0] == answers[1], name
    assert answers[0][0] == 400 and answers[0][1]["error"] == error
    assert not UsageEvent.objects.exists() and not MonthlyUsage.objects.exists()


# ---------------------------------------------------------------- batches


def test_reports_arriving_together_are_recorded_in_few_statements(asgi, application, key_a, org_a):
    members = [
        MembershipFactory(organization=org_a, user__email=f"m{i}@example.com").user
        for i in range(20)
    ]
    before = statements(application)
    answers = asgi.gather(
        apost(asgi, key_a, body(user=m.email, tokens=10 + i), idempotency_key=f"t{i}")
        for i, m in enumerate(members)
    )
    assert [a.status for a in answers] == [200] * 20
    assert [a.json()["used"] for a in answers] == [10 + i for i in range(20)]
    assert len({a.json()["event_id"] for a in answers}) == 20
    assert DailyUsage.objects.aggregate(t=Sum("tokens"))["t"] == sum(10 + i for i in range(20))
    if FAST:
        # First usages of the month: a batch that finds no month rows, one statement that
        # creates them, a batch that counts (at most two batches in flight: twice that).
        assert statements(application) - before <= 6
        before = statements(application)
        answers = asgi.gather(
            apost(asgi, key_a, body(user=m.email, tokens=1), idempotency_key=f"u{i}")
            for i, m in enumerate(members)
        )
        assert [a.status for a in answers] == [200] * 20
        assert statements(application) - before <= 2


def test_reports_for_one_user_arriving_together_are_each_counted_once(asgi, key_a, bob, org_a):
    MonthlyUsage.objects.create(
        organization=org_a, user=bob, kind="inference", month=current_month()
    )
    answers = asgi.gather(
        apost(asgi, key_a, body(tokens=tokens), idempotency_key=f"same-user-{tokens}")
        for tokens in (100, 200, 300)
    )
    # One after the other, in some order: each answer's balance adds its own tokens.
    previous = 0
    for balance, tokens in sorted((a.json()["used"], a.json()["tokens"]) for a in answers):
        assert balance == previous + tokens
        previous = balance
    assert used(bob) == 600 and UsageEvent.objects.filter(user=bob).count() == 3


def test_fifty_concurrent_reports_never_push_a_user_over_the_max(asgi, key_a, bob):
    limit = 10_000
    set_max(bob, limit)
    sizes = [150 + (i * 7) % 200 for i in range(120)]  # 150…349, sums well over the max
    answers = asgi.gather(
        apost(asgi, key_a, body(tokens=tokens), idempotency_key=f"c{i}")
        for i, tokens in enumerate(sizes)
    )
    assert {a.status for a in answers} <= {200, 402}
    accepted = sum(t for a, t in zip(answers, sizes, strict=True) if a.status == 200)
    assert accepted == used(bob) <= limit
    assert limit - accepted < 350  # it filled up: the refusals were real
    events = UsageEvent.objects.filter(user=bob)
    assert events.aggregate(t=Sum("tokens"))["t"] == accepted
    daily = DailyUsage.objects.get(user=bob)
    assert (daily.tokens, daily.events) == (accepted, events.count())


def test_the_same_idempotency_key_twenty_times_at_once_counts_once(asgi, key_a, bob):
    answers = asgi.gather(
        apost(asgi, key_a, body(tokens=1_000), idempotency_key="the-same") for _ in range(20)
    )
    assert [a.status for a in answers] == [200] * 20
    assert len({a.json()["event_id"] for a in answers}) == 1
    assert sum(1 for a in answers if not a.json()["replayed"]) == 1
    assert used(bob) == 1_000 and UsageEvent.objects.count() == 1


def test_concurrent_first_usages_of_the_month_make_one_row_and_lose_nothing(asgi, key_a, bob):
    answers = asgi.gather(
        apost(asgi, key_a, body(tokens=10 + i), idempotency_key=f"first-{i}") for i in range(30)
    )
    assert [a.status for a in answers] == [200] * 30
    rows = MonthlyUsage.objects.filter(user=bob, kind="inference", month=current_month())
    assert rows.count() == 1 and rows.get().used == sum(10 + i for i in range(30))


# ---------------------------------------------------------------- locks


def test_a_report_meeting_a_save_that_lowers_the_max_waits_and_obeys_it(
    asgi, key_a, alice, bob, org_a
):
    """The save holds bob's row; bob's report waits for it and counts against the new max,
    while alice's report, in the same batch, is not held up (on PostgreSQL)."""
    for user in (alice, bob):
        MonthlyUsage.objects.create(
            organization=org_a, user=user, kind="inference", month=current_month()
        )
    set_max(bob, 1_000)
    saving, release = threading.Event(), threading.Event()
    saved_at: list[float] = []

    def save() -> None:
        try:
            with transaction.atomic():
                set_max(bob, 500)
                saving.set()
                release.wait(timeout=10)
            saved_at.append(time.monotonic())
        finally:
            connections.close_all()

    saver = threading.Thread(target=save)
    saver.start()
    assert saving.wait(timeout=10)

    async def both():
        bobs = asyncio.ensure_future(apost(asgi, key_a, body(tokens=900), idempotency_key="b"))
        alices = await apost(asgi, key_a, body(user="alice@example.com", tokens=5))
        alice_answered = time.monotonic()
        release.set()
        return await bobs, alices, alice_answered

    if FAST:
        bobs, alices, alice_answered = asgi.run(both())
        assert alices.status == 200 and alice_answered < saved_at[0]
    else:  # SQLite: the save holds the database's write lock; everyone waits
        threading.Timer(0.3, release.set).start()
        bobs = post(asgi, key_a, body(tokens=900), idempotency_key="b")
    saver.join(timeout=10)
    assert bobs.status == 402 and used(bob) == 0


def claim_key_as_sqlite_records(event: UsageEvent) -> None:
    """The event's Idempotency-Key claims, as `tokens.usage_api.sqlite` writes them in the
    event's transaction (the one writer of keyed events there; no trigger on SQLite)."""
    UsageEventKey.objects.bulk_create(
        UsageEventKey(
            idempotency_key=event.idempotency_key,
            organization_id=event.organization_id,
            month=month,
            id=event.pk,
            created_at=event.created_at,
            request_hash=event.request_hash,
            used_after=event.used_after,
            max_after=event.max_after,
        )
        for month in UsageEventKey.months_claimed(event.created_at)
    )


def test_a_concurrent_duplicate_sends_the_batch_to_record_each_report_alone(
    asgi, key_a, alice, bob, org_a
):
    """Another transaction is inserting bob's event with the same Idempotency-Key: the batch
    (bob's retry and alice's report) fails on the unique index once that commits; each
    report is then recorded alone: bob's is answered from the committed event, alice's is
    counted once. On SQLite (no batch) bob's retry waits for the write lock, then finds the
    committed key and replays it."""
    for user in (alice, bob):
        MonthlyUsage.objects.create(
            organization=org_a, user=user, kind="inference", month=current_month()
        )
    report = UsageRequest("bob@example.com", "inference", 40, "gpt-4o")
    inserting, release = threading.Event(), threading.Event()

    def insert() -> None:
        try:
            with transaction.atomic():
                event = UsageEvent.objects.create(
                    organization=org_a,
                    user=bob,
                    kind="inference",
                    tokens=40,
                    model="gpt-4o",
                    idempotency_key="dup",
                    request_hash=report.fingerprint,
                    used_after=40,
                    max_after=200_000,
                )
                if not FAST:  # PostgreSQL's trigger claims the key; SQLite's recording does
                    claim_key_as_sqlite_records(event)
                inserting.set()
                release.wait(timeout=10)
        finally:
            connections.close_all()

    inserter = threading.Thread(target=insert)
    inserter.start()
    assert inserting.wait(timeout=10)
    threading.Timer(0.5, release.set).start()
    bobs, alices = asgi.gather(
        [
            apost(asgi, key_a, body(tokens=40), idempotency_key="dup"),
            apost(asgi, key_a, body(user="alice@example.com", tokens=7), idempotency_key="a"),
        ]
    )
    inserter.join(timeout=10)
    assert bobs.status == 200 and bobs.json()["replayed"] is True
    assert bobs.json()["event_id"] == UsageEvent.objects.get(user=bob).pk
    assert used(bob) == 0  # the other transaction wrote the event only
    assert alices.status == 200 and used(alice) == 7
    assert UsageEvent.objects.filter(user=alice).count() == 1


# ---------------------------------------------------------------- the policy hook


def test_the_policy_hook_runs_after_the_usage_commits(asgi, key_a, bob, monkeypatch):
    calls = []

    def apply(*, user, kind):
        calls.append((user.pk, kind, used(user, kind)))
        set_max(user, 300_000)
        return 300_000

    monkeypatch.setattr(auto_increase_services, "auto_increase_apply", apply)
    low = post(asgi, key_a, body(tokens=10_000))  # 5 %: below every mark
    assert low.status == 200
    if FAST:
        assert calls == []  # the statement said which marks were reached: none
    high = post(asgi, key_a, body(tokens=160_000))  # 85 %: the 80 % alert's mark
    assert calls[-1] == (bob.pk, "inference", 170_000)  # after the usage committed
    # The policy is a background task: what it granted shows in the next answer at the latest.
    assert high.status == 200
    after = post(asgi, key_a, body(tokens=1_000))
    assert after.json()["max"] == 300_000 and after.json()["remaining"] == 129_000


def test_the_policy_hook_is_not_rerun_for_every_report_past_the_same_mark(
    asgi, key_a, bob, monkeypatch
):
    calls = []
    monkeypatch.setattr(
        auto_increase_services, "auto_increase_apply", lambda **kw: calls.append(kw)
    )
    post(asgi, key_a, body(tokens=170_000))
    post(asgi, key_a, body(tokens=1_000))
    post(asgi, key_a, body(tokens=1_000))
    if FAST:
        assert len(calls) == 1  # same max, same marks reached: quiet for a while
        post(asgi, key_a, body(tokens=20_000))  # 96 %: the 95 % mark is new
        assert len(calls) == 2
    else:
        assert len(calls) == 3  # the view runs it each time


def test_a_failing_policy_hook_never_undoes_the_usage(asgi, key_a, bob, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("policy bug")

    monkeypatch.setattr(auto_increase_services, "auto_increase_apply", broken)
    answer = post(asgi, key_a, body(tokens=190_000))
    assert answer.status == 200 and used(bob) == 190_000


# ---------------------------------------------------------------- before the database


@pytest.mark.parametrize(
    ("key", "raw", "extra", "status"),
    [
        (None, json.dumps(body()), {}, 401),
        ("not-a-key", json.dumps(body()), {}, 401),
        ("key", "{nope", {}, 400),
        ("key", json.dumps(body(padding="x" * 1_000_000)), {}, 413),
        ("key", json.dumps(body()), {"idempotency_key": "\x01"}, 400),
        ("key", json.dumps(body()), {"idempotency_key": NO_KEY}, 400),
        ("key", json.dumps(body(model="m\x00")), {}, 400),
    ],
)
def test_bad_requests_are_refused_before_the_database(
    asgi, application, key_a, bob, key, raw, extra, status
):
    before = statements(application)
    answer = post(asgi, key_a if key == "key" else key, None, raw=raw, **extra)
    assert answer.status == status
    assert statements(application) == before
    assert not UsageEvent.objects.exists()


def test_a_body_longer_than_the_cap_without_a_length_is_refused(asgi, key_a, bob):
    chunk = b"x" * 3_000
    messages = [
        {"type": "http.request", "body": chunk, "more_body": True},
        {"type": "http.request", "body": chunk, "more_body": False},
    ]
    answer = asgi.run(
        asgi.arequest("POST", URL, messages=messages, authorization=f"Bearer {key_a}")
    )
    assert answer.status == 413
    assert answer.json()["error"] == "body_too_large"


def test_a_client_gone_before_its_body_arrived_records_nothing(asgi, key_a, bob):
    messages = [{"type": "http.disconnect"}]
    asgi.run(asgi.arequest("POST", URL, messages=messages, authorization=f"Bearer {key_a}"))
    assert not UsageEvent.objects.exists() and used(bob) == 0


def test_an_unreachable_database_answers_503_with_retry_after(asgi, key_a, bob, settings):
    settings.USAGE_API_POOL_TIMEOUT = 0.5
    app = fastpath.UsageFastPath(None, conninfo="host=127.0.0.1 port=1 connect_timeout=1")
    client = AsgiClient(app)
    try:
        answer = client.post_json(URL, body(), **headers_for(key_a))
    finally:
        client.run(app.aclose())
        client.close()
    assert answer.status == 503
    assert answer.json()["error"] == "database_unavailable"
    assert int(answer["retry-after"]) > 0


# ---------------------------------------------------------------- everything else is Django


def test_other_methods_and_urls_are_answered_by_django(asgi, key_a):
    answer = asgi.request("GET", URL, authorization=f"Bearer {key_a}")
    assert answer.status == 405 and answer.json()["error"] == "method_not_allowed"
    assert asgi.request("GET", "/api/v1/openapi.json").json()["openapi"].startswith("3.")
    assert asgi.request("POST", URL + "/", json.dumps(body())).status == 404


def test_a_host_django_refuses_is_refused_as_django_refuses_it(asgi, application, key_a, bob):
    before = statements(application)
    client = AsgiClient(application, host="evil.example.com")
    try:
        answer = client.post_json(URL, body(), **headers_for(key_a))
    finally:
        client.close()
    assert answer.status == 400
    assert statements(application) == before and used(bob) == 0


def test_plain_http_is_redirected_when_https_is_required(key_a, bob, settings):
    from django.core.asgi import get_asgi_application

    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    app = fastpath.UsageFastPath(get_asgi_application())  # middleware reads its settings once
    client = AsgiClient(app)
    try:
        plain = client.post_json(URL, body(), **headers_for(key_a))
        https = client.run(
            client.arequest("POST", URL, json.dumps(body()), scheme="https", **headers_for(key_a))
        )
    finally:
        client.run(app.aclose())
        client.run(sync_to_async(connections.close_all)())
        client.close()
    assert plain.status == 301 and plain["location"].startswith("https://")
    assert https.status == 200 and https["strict-transport-security"].startswith("max-age=3600")
    assert used(bob) == 1_000


def test_the_fast_path_can_be_switched_off(asgi, application, key_a, bob, settings):
    settings.USAGE_FAST_PATH = False
    before = statements(application)
    assert post(asgi, key_a, body(tokens=5)).status == 200
    assert statements(application) == before and used(bob) == 5


def test_lifespan_is_answered_and_shutdown_closes_the_pool(asgi, application, key_a, bob):
    post(asgi, key_a, body())
    sent = asgi.run(asgi.lifespan("startup", "shutdown"))
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert application.batcher is None  # the next request opens a new pool
    assert post(asgi, key_a, body()).status == 200


def test_the_connection_settings_leave_out_djangos_own_options():
    conninfo = pool.conninfo_from_django(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "usage",
            "USER": "app",
            "HOST": "db.internal",
            "PORT": "5433",
            "OPTIONS": {"sslmode": "require", "server_side_binding": True, "pool": True},
        }
    )
    assert "sslmode=require" in conninfo and "host=db.internal" in conninfo
    assert "pool" not in conninfo and "server_side_binding" not in conninfo


def test_no_connection_compiles_its_queries_with_jit(asgi, application, key_a, bob, settings):
    """Once the tables grow, the usage statement's estimated cost passes jit_above_cost:
    compiling it would then cost about 60 ms on every execution (measured), so JIT is off
    on the fast path's connections and on Django's. SQLite has no JIT, and must not be
    handed PostgreSQL's connection options."""
    assert post(asgi, key_a, body()).status == 200
    if not FAST:
        assert "options" not in settings.DATABASES["default"]["OPTIONS"]
        return
    assert asgi.run(application.batcher.database.execute("SHOW jit", {})) == [("off",)]
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)


# ---------------------------------------------------------------- metrics


def reports_counted(outcome: str, reason: str = "") -> float:
    value = REGISTRY.get_sample_value(
        "asksage_usage_reports_total", {"outcome": outcome, "reason": reason}
    )
    return value or 0.0


def test_each_report_is_counted_once_by_its_outcome_on_either_door(asgi, key_a, bob):
    outcomes = [
        ("accepted", ""),
        ("replayed", ""),
        ("refused", "over_limit"),
        ("invalid", "malformed_json"),
        ("refused", "invalid_key"),
    ]
    before = {outcome: reports_counted(*outcome) for outcome in outcomes}
    assert post(asgi, key_a, body(tokens=1_000), idempotency_key="m").status == 200
    assert post(asgi, key_a, body(tokens=1_000), idempotency_key="m").status == 200
    assert post(asgi, key_a, body(tokens=10**9)).status == 402
    assert post(asgi, key_a, None, raw="{not json").status == 400
    assert post(asgi, "ask_" + "x" * 43, body(tokens=1)).status == 401
    after = {outcome: reports_counted(*outcome) for outcome in outcomes}
    assert {o: after[o] - before[o] for o in outcomes} == dict.fromkeys(outcomes, 1.0)
