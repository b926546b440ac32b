"""The usage API under concurrent clients: real threads, each with its own connection.

On PostgreSQL the threads really overlap and the row locks and the conditional UPDATE do the
work. On SQLite (a file database, IMMEDIATE transactions) the same tests run: writers are
serialized by the database lock, and the invariants must hold all the same.
"""

import json
import threading
import time
import uuid
from collections.abc import Callable

import pytest
from django.db import connection, connections, transaction
from django.db.models import Sum
from django.test import Client

from asksage_admin.lib.months import current_month
from tests.concurrency import wait_for_lock_waiters
from tests.factories import set_max, used
from tokens.models import DailyUsage, MonthlyUsage, UsageEvent
from tokens.services import api_keys as api_key_services

# Pinned mid-month: reports and the readings of "this month" (`used`) must not fall on two
# sides of a month's end while the threads race.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("mid_month")]

URL = "/api/v1/usage"


@pytest.fixture
def key_a(alice, org_a):
    return api_key_services.api_key_create(actor=alice, org=org_a, name="Gateway")[1]


def post_usage(key: str, tokens: int, idempotency_key: str = "", email="bob@example.com"):
    # The API requires an Idempotency-Key: a fresh one unless the test gives one.
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "HTTP_IDEMPOTENCY_KEY": idempotency_key or uuid.uuid4().hex,
    }
    payload = {"user": email, "kind": "inference", "tokens": tokens, "model": "gpt-4o"}
    return Client().post(URL, json.dumps(payload), content_type="application/json", **headers)


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Start `count` threads together; each closes its own connection when done."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(index)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client never got an answer"
    assert not errors, errors


def test_fifty_concurrent_clients_never_push_a_user_over_the_max(key_a, bob):
    limit = 10_000
    set_max(bob, limit)
    answers: list[tuple[int, int]] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        for attempt in range(4):
            tokens = 150 + (index * 7 + attempt * 13) % 200  # 150…349, sums well over the max
            response = post_usage(key_a, tokens, idempotency_key=f"c{index}-{attempt}")
            with lock:
                answers.append((response.status_code, tokens))

    run_threads(50, client)

    assert len(answers) == 200  # every request got an answer
    statuses = {status for status, _ in answers}
    assert statuses <= {200, 402}, statuses
    accepted = sum(tokens for status, tokens in answers if status == 200)
    assert accepted == used(bob) <= limit
    assert limit - accepted < 350  # it filled up: refusals were real, not spurious
    events = UsageEvent.objects.filter(user=bob)
    assert events.aggregate(total=Sum("tokens"))["total"] == accepted
    assert events.count() == sum(1 for status, _ in answers if status == 200)
    daily = DailyUsage.objects.get(user=bob)
    assert (daily.tokens, daily.events) == (accepted, events.count())


def test_the_same_idempotency_key_sent_twenty_times_at_once_counts_once(key_a, bob):
    answers = []
    lock = threading.Lock()

    def client(index: int) -> None:
        response = post_usage(key_a, 1_000, idempotency_key="the-same-key")
        with lock:
            answers.append(response)

    run_threads(20, client)

    assert [r.status_code for r in answers] == [200] * 20
    assert len({r.json()["event_id"] for r in answers}) == 1
    assert sum(1 for r in answers if not r.json()["replayed"]) == 1
    assert used(bob) == 1_000
    assert UsageEvent.objects.filter(user=bob).count() == 1
    assert DailyUsage.objects.get(user=bob).events == 1


def test_concurrent_first_usages_of_the_month_make_one_row_and_lose_nothing(key_a, bob):
    assert not MonthlyUsage.objects.filter(user=bob).exists()
    statuses = []
    lock = threading.Lock()

    def client(index: int) -> None:
        response = post_usage(key_a, 10 + index, idempotency_key=f"first-{index}")
        with lock:
            statuses.append(response.status_code)

    run_threads(30, client)

    assert statuses == [200] * 30
    rows = MonthlyUsage.objects.filter(user=bob, kind="inference", month=current_month())
    assert rows.count() == 1
    assert rows.get().used == sum(10 + i for i in range(30))


def test_the_first_row_of_the_month_is_created_race_free_by_the_service(bob, org_a):
    """Below the API: many transactions creating the month's row at once, never twice."""
    month = current_month()

    def create(index: int) -> None:
        with transaction.atomic():
            MonthlyUsage.objects.bulk_create(
                [MonthlyUsage(organization=org_a, user=bob, kind="embedding", month=month)],
                ignore_conflicts=True,
            )

    run_threads(16, create)
    assert MonthlyUsage.objects.filter(user=bob, kind="embedding", month=month).count() == 1


def test_no_usage_is_accepted_over_a_max_lowered_while_usage_pours_in(key_a, bob):
    set_max(bob, 1_000_000)
    new_max = 6_000
    lowered = threading.Event()
    stop = threading.Event()
    after_commit: list[tuple[float, int, int]] = []  # (start time, status, used in answer)
    lock = threading.Lock()
    committed_at = [float("inf")]
    # Set by the clients: 3,000 tokens counted; 40 refusals under the new max.
    warmed_up, refused_enough = threading.Event(), threading.Event()

    def client(index: int) -> None:
        attempt = 0
        while not stop.is_set():
            started = time.monotonic()
            response = post_usage(key_a, 100, idempotency_key=f"p{index}-{attempt}")
            attempt += 1
            assert response.status_code in {200, 402}, response.content
            if response.status_code == 200 and response.json().get("used", 0) >= 3_000:
                warmed_up.set()
            if started > committed_at[0]:
                with lock:
                    after_commit.append(
                        (started, response.status_code, response.json().get("used", -1))
                    )
                    if sum(1 for _, status, _ in after_commit if status == 402) >= 40:
                        refused_enough.set()

    def admin() -> None:
        deadline = time.monotonic() + 60
        warmed_up.wait(timeout=60)
        with transaction.atomic():  # what a batch save does to the row: one UPDATE
            set_max(bob, new_max)
            # Holding the member's row lock, no usage is between its lock and its commit:
            # this is exactly what was counted under the old max.
            used_at_commit.append(used(bob))
        committed_at[0] = time.monotonic()
        lowered.set()
        # Keep the pressure on until plenty of requests ran against the new max.
        refused_enough.wait(timeout=max(deadline - time.monotonic(), 0))
        stop.set()

    used_at_commit: list[int] = []

    def work(index: int) -> None:
        if index == 0:
            admin()
        else:
            client(index)

    run_threads(9, work)

    assert lowered.is_set()
    final = used(bob)
    # Requests in flight when the save committed were already counted when it committed
    # (they held the member's row lock, so the save waited for them).
    assert final <= max(new_max, used_at_commit[0])
    accepted_after = [amount for _, status, amount in after_commit if status == 200]
    assert all(amount <= new_max for amount in accepted_after)
    assert any(status == 402 for _, status, _ in after_commit)
    assert UsageEvent.objects.filter(user=bob).aggregate(total=Sum("tokens"))["total"] == final


def test_a_usage_arriving_during_a_save_that_lowers_the_max_waits_and_obeys_it(key_a, bob):
    """Deterministic: the save has lowered the max but not committed when the usage arrives.

    The usage read the old max in its snapshot; it must wait for the save and count against
    the max the save commits (900 fits the old 1,000, not the new 500).
    """
    set_max(bob, 1_000)
    MonthlyUsage.objects.create(
        organization=bob.membership.organization, user=bob, kind="inference", month=current_month()
    )
    saving, arriving = threading.Event(), threading.Event()
    done: dict[str, float | int] = {}

    def work(index: int) -> None:
        if index == 0:
            with transaction.atomic():
                set_max(bob, 500)  # the member's row lock (PostgreSQL), the write lock (SQLite)
                saving.set()
                assert arriving.wait(timeout=10)
                # The usage is now waiting for this transaction. Not a lock wait that
                # pg_stat_activity shows: a report that finds its member's row locked backs
                # off and tries again, so only time tells it has arrived.
                time.sleep(0.5)
            done["saved"] = time.monotonic()
        else:
            assert saving.wait(timeout=10)
            arriving.set()
            done["status"] = post_usage(key_a, 900, idempotency_key="during").status_code
            done["answered"] = time.monotonic()

    run_threads(2, work)

    assert done["status"] == 402
    assert done["answered"] > done["saved"]  # it waited for the save
    assert used(bob) == 0


def test_a_save_arriving_during_a_usage_waits_for_it(key_a, bob):
    """Deterministic: the usage holds the member's row when the save lowering the max comes.

    A third transaction holds the month's usage row, so the usage stops after locking the
    member and before counting. Either the save waits for the usage (which then counts under
    the max of its time, committed before the save), or the usage sees the new max. Never:
    the save commits first and the usage is then accepted against the old max.
    """
    set_max(bob, 1_000)
    MonthlyUsage.objects.create(
        organization=bob.membership.organization, user=bob, kind="inference", month=current_month()
    )
    held, release = threading.Event(), threading.Event()
    done: dict[str, int] = {}

    def work(index: int) -> None:
        if index == 0:  # holds the month's row (PostgreSQL) or the write lock (SQLite)
            with transaction.atomic():
                MonthlyUsage.objects.select_for_update().filter(user=bob).first()
                held.set()
                assert release.wait(timeout=10)
        elif index == 1:
            assert held.wait(timeout=10)
            done["status"] = post_usage(key_a, 900, idempotency_key="slow").status_code
        else:
            assert held.wait(timeout=10)
            # The usage has locked the member and waits for the month's row.
            wait_for_lock_waiters(1, sqlite_pause=0.3)
            with transaction.atomic():
                set_max(bob, 500)
                done["seen_by_save"] = used(bob)

    releaser_errors: list[BaseException] = []

    def release_later() -> None:
        try:
            held.wait(timeout=10)
            wait_for_lock_waiters(2, sqlite_pause=0.8)  # the usage, and the save behind it
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            releaser_errors.append(exc)
        finally:
            release.set()
            connections.close_all()

    releaser = threading.Thread(target=release_later)
    releaser.start()
    run_threads(3, work)
    releaser.join()
    assert not releaser_errors, releaser_errors

    if done["status"] == 200:
        assert done["seen_by_save"] == 900, "accepted against a max lowered before it"
        assert used(bob) == 900
    else:
        assert done["status"] == 402 and used(bob) == 0
    if connection.vendor == "postgresql":
        # Row locks make the order certain: the usage locked the member first.
        assert done["status"] == 200
