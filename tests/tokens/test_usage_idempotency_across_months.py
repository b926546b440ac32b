"""An Idempotency-Key stays once-only across a month's turn, now that the events are
partitioned by month (PostgreSQL) and the keys are unique per month (`UsageEventKey`)."""

import datetime as dt
import threading
import types

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from tests.factories import UsageEventFactory, used
from tests.tokens.test_usage_api import body
from tests.tokens.test_usage_api_concurrency import post_usage, run_threads
from tokens.models import MonthlyUsage, UsageEvent, UsageEventKey
from tokens.services import api_keys
from tokens.usage_api import recording, sqlite
from tokens.usage_api.results import UsageRequest

LAST_MINUTE = dt.datetime(2026, 1, 31, 23, 59, tzinfo=dt.UTC)
FIRST_MINUTE = dt.datetime(2026, 2, 1, 0, 0, 30, tzinfo=dt.UTC)
JAN, FEB = dt.date(2026, 1, 1), dt.date(2026, 2, 1)


@pytest.fixture
def key_a(alice, org_a):
    return api_keys.api_key_create(actor=alice, org=org_a, name="Gateway")[1]


@pytest.fixture
def post(client):
    def send(key, payload, idempotency_key):
        return client.post(
            "/api/v1/usage",
            data=payload,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
            HTTP_IDEMPOTENCY_KEY=idempotency_key,
        )

    return send


def test_a_retry_on_the_1st_of_a_report_first_recorded_on_the_31st_at_23_59_counts_once(
    post, key_a, bob
):
    with time_machine.travel(LAST_MINUTE, tick=False):
        first = post(key_a, body(tokens=700), "gateway-31st")
    with time_machine.travel(FIRST_MINUTE, tick=False):
        retry = post(key_a, body(tokens=700), "gateway-31st")
        assert used(bob) == 0  # February: nothing counted

    assert first.status_code == retry.status_code == 200, retry.content
    assert retry.json()["replayed"] is True
    assert retry.json()["event_id"] == first.json()["event_id"]
    assert retry.json()["used"] == first.json()["used"] == 700
    assert UsageEvent.objects.count() == 1


def test_a_retry_weeks_later_in_the_next_month_is_still_answered_not_counted(post, key_a, bob):
    with time_machine.travel(LAST_MINUTE, tick=False):
        first = post(key_a, body(tokens=700), "gateway-late")
    with time_machine.travel(FIRST_MINUTE + dt.timedelta(days=20), tick=False):
        retry = post(key_a, body(tokens=700), "gateway-late")

    assert retry.json()["replayed"] is True
    assert retry.json()["event_id"] == first.json()["event_id"]
    assert UsageEvent.objects.count() == 1


def test_a_report_of_the_1st_claims_its_key_in_the_previous_month_too(post, key_a, bob):
    with time_machine.travel(FIRST_MINUTE, tick=False):
        assert post(key_a, body(), "gateway-1st").status_code == 200
    with time_machine.travel(FIRST_MINUTE + dt.timedelta(days=1), tick=False):
        assert post(key_a, body(), "gateway-2nd").status_code == 200

    claims = UsageEventKey.objects.order_by("idempotency_key", "month")
    assert [(k.idempotency_key, k.month) for k in claims] == [
        ("gateway-1st", JAN),
        ("gateway-1st", FEB),
        ("gateway-2nd", FEB),
    ]
    assert UsageEventKey.months_claimed(LAST_MINUTE) == [JAN]
    assert UsageEventKey.months_claimed(FIRST_MINUTE) == [FEB, JAN]


@pytest.fixture
def record_keyed(monkeypatch):
    """Record an event with an Idempotency-Key through the database's own claim: on
    PostgreSQL the trigger on the events (any insert claims); on SQLite the recording
    (`tokens.usage_api.sqlite`, the one writer of keyed events there), as a copy in flight
    that looked the key up before the other committed (the lookup is skipped)."""
    if connection.vendor == "postgresql":

        def insert(org, user, created_at, key):
            return UsageEventFactory(
                organization=org, user=user, created_at=created_at, idempotency_key=key
            ).pk

        return insert
    monkeypatch.setattr(sqlite, "answer_replay", lambda **_: None)

    def record(org, user, created_at, key):
        usage = UsageRequest(user.email, "inference", 40, "gpt-4o")
        return sqlite.record_in_steps(
            org=org, usage=usage, idempotency_key=key, now=created_at
        ).event_id

    return record


def test_the_database_refuses_an_event_of_the_31st_whose_key_the_1st_claimed(
    record_keyed, org_a, bob, carol
):
    """What makes two copies of one report, in flight on either side of midnight, collide:
    whichever commits second is refused (the recording then answers it as a retry)."""
    event_id = record_keyed(org_a, bob, FIRST_MINUTE, "midnight")
    claimed = UsageEventKey.objects.filter(idempotency_key="midnight")
    assert sorted(claimed.values_list("month", flat=True)) == [JAN, FEB]
    assert {k.id for k in claimed} == {event_id}

    with pytest.raises(IntegrityError), transaction.atomic():
        record_keyed(org_a, bob, LAST_MINUTE, "midnight")
    assert UsageEvent.objects.filter(organization=org_a).count() == 1
    # The refused copy counted nothing in January.
    assert not MonthlyUsage.objects.filter(user=bob, month=JAN, used__gt=0).exists()
    # Another organization may use the same key.
    record_keyed(carol.membership.organization, carol, LAST_MINUTE, "midnight")
    assert UsageEventKey.objects.filter(idempotency_key="midnight").count() == 3


@pytest.mark.django_db(transaction=True)
def test_one_report_sent_at_once_from_both_sides_of_midnight_counts_once(key_a, bob, monkeypatch):
    """Ten copies of one report at once, half through servers whose clock says 23:59:59 on
    the 31st, half through servers already on the 1st."""
    clock = threading.local()
    monkeypatch.setattr(
        recording, "timezone", types.SimpleNamespace(now=lambda: clock.now), raising=True
    )
    answers, lock = [], threading.Lock()

    def client(index: int) -> None:
        clock.now = LAST_MINUTE + dt.timedelta(seconds=59.5) if index % 2 else FIRST_MINUTE
        response = post_usage(key_a, 1_000, idempotency_key="both-sides")
        with lock:
            answers.append(response)

    run_threads(10, client)

    assert [r.status_code for r in answers] == [200] * 10, [r.content for r in answers]
    assert len({r.json()["event_id"] for r in answers}) == 1
    assert sum(1 for r in answers if not r.json()["replayed"]) == 1
    assert UsageEvent.objects.filter(user=bob).count() == 1


def test_events_inserted_in_one_statement_each_claim_their_key_with_their_answer(
    record_keyed, org_a, bob
):
    """PostgreSQL claims keys once per INSERT statement (a statement-level trigger reading
    the new events): every event of a multi-row insert claims its own key, with its own
    answer, the 1st's also in the previous month; an unkeyed event claims nothing."""
    moments = {"multi-a": LAST_MINUTE, "multi-b": FIRST_MINUTE, "": FIRST_MINUTE}
    if connection.vendor == "postgresql":
        events = UsageEvent.objects.bulk_create(
            UsageEventFactory.build(
                organization=org_a, user=bob, created_at=when, idempotency_key=key
            )
            for key, when in moments.items()
        )
        ids = {event.idempotency_key: event.pk for event in events}
    else:
        ids = {key: record_keyed(org_a, bob, when, key) for key, when in moments.items() if key}
    claims = UsageEventKey.objects.order_by("idempotency_key", "month")
    assert [(k.idempotency_key, k.month, k.id) for k in claims] == [
        ("multi-a", JAN, ids["multi-a"]),
        ("multi-b", JAN, ids["multi-b"]),
        ("multi-b", FEB, ids["multi-b"]),
    ]
