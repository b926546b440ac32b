"""How the fast path groups reports into statements (tokens.usage_api.batcher.Batcher), without a
database: a stand-in records each statement's reports and answers when told to."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tokens.usage_api import postgres
from tokens.usage_api.batcher import Batcher
from tokens.usage_api.errors import UsageError
from tokens.usage_api.results import UsageRequest


class StandIn:
    """Records the reports of each statement; each statement ends when `release` is set
    (from the start when `released`)."""

    def __init__(self, *, released: bool = False):
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        if released:
            self.release.set()

    async def execute(self, sql: str, params: dict) -> list[tuple]:
        reports = json.loads(params["reports"])
        self.batches.append([r[2].split("@")[0] for r in reports])  # who, by email
        await self.release.wait()
        # Rows of unknown keys: every report is answered 401 at once.
        empty = [None] * (len(postgres.Row._fields) - 2)
        return [(r[0], *empty, False) for r in reports]


def report(who: str, key: str = "") -> postgres.Report:
    return postgres.Report("hash", UsageRequest(f"{who}@example.com", "inference", 1, "m"), key)


def run(scenario):
    """On a loop of its own, in a thread: the browser tests' Playwright keeps a loop running
    in this one."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, scenario()).result(timeout=30)


async def settle(futures) -> list:
    return await asyncio.gather(*futures, return_exceptions=True)


async def turns(count: int = 3) -> None:
    """Let the loop run: the batch is started, then its task sends the statement."""
    for _ in range(count):
        await asyncio.sleep(0)


def test_a_lone_report_goes_at_once_and_the_next_ones_wait_for_a_fuller_batch():
    async def scenario():
        database = StandIn()
        batcher = Batcher(database, size=64, concurrency=2, min_fill=4)
        first = [batcher.record(report("a"))]
        await turns()
        assert database.batches == [["a"]]  # no wait for company
        waiting = [batcher.record(report(who)) for who in "bcd"]
        await turns()
        assert database.batches == [["a"]]  # three are fewer than min_fill: they wait
        waiting += [batcher.record(report(who)) for who in "efg"]
        await turns()
        assert database.batches == [["a"], list("bcdefg")]  # six: a second batch
        database.release.set()
        answers = await settle(first + waiting)
        assert all(isinstance(a, UsageError) and a.status == 401 for a in answers)

    run(scenario)


def test_reports_waiting_when_the_running_batch_ends_go_together():
    async def scenario():
        database = StandIn()
        batcher = Batcher(database, size=64, concurrency=2, min_fill=8)
        futures = [batcher.record(report("a"))]
        await turns()
        futures += [batcher.record(report(who)) for who in "bcd"]
        database.release.set()
        await settle(futures)
        assert database.batches == [["a"], list("bcd")]

    run(scenario)


def test_one_report_per_user_and_per_idempotency_key_in_a_batch():
    async def scenario():
        database = StandIn(released=True)
        batcher = Batcher(database, size=64, concurrency=1)
        futures = [
            batcher.record(report("a")),
            batcher.record(report("a")),  # the same user: the next batch
            batcher.record(report("b", key="k")),
            batcher.record(report("c", key="k")),  # the same key: the next batch
            batcher.record(report("d")),
        ]
        await settle(futures)
        assert database.batches == [["a", "b", "d"], ["a", "c"]]

    run(scenario)


def test_a_batch_holds_at_most_its_size():
    async def scenario():
        database = StandIn(released=True)
        batcher = Batcher(database, size=3, concurrency=1)
        await settle([batcher.record(report(f"u{i}")) for i in range(7)])
        assert [len(batch) for batch in database.batches] == [3, 3, 1]

    run(scenario)


@pytest.mark.parametrize("error", [OSError("boom"), RuntimeError("bug")])
def test_a_failing_statement_answers_every_report_of_its_batch(error):
    class Broken(StandIn):
        async def execute(self, sql, params):
            raise error

    async def scenario():
        batcher = Batcher(Broken(), size=64, concurrency=1)
        answers = await settle([batcher.record(report(who)) for who in "abc"])
        assert answers == [error, error, error]
        assert batcher.running == 0 and not batcher.pending

    run(scenario)
