"""How the fast path groups reports into statements: one `Batcher` per worker process."""

import asyncio
from collections import deque
from dataclasses import dataclass

import psycopg
from django.utils import timezone

from tokens.usage_api import postgres
from tokens.usage_api.errors import UsageError
from tokens.usage_api.pool import UNAVAILABLE, Database
from tokens.usage_api.postgres import Again, Report, Row
from tokens.usage_api.results import UsageResult


async def run_async(flow: postgres.Flow, database: Database) -> UsageResult:
    """Drive a `postgres` flow (`record_one`) on the fast path's connections."""
    try:
        query = next(flow)
        while True:
            try:
                rows = await database.execute(*query)
            except psycopg.Error as exc:
                if not postgres.is_duplicate_report(exc):
                    raise
                query = flow.throw(postgres.DuplicateReport())
            else:
                query = flow.send(rows)
    except StopIteration as stop:
        return stop.value


@dataclass(slots=True)
class _Waiting:
    """A report waiting for its batch, and for its answer."""

    report: Report
    answer: asyncio.Future
    passes: int = 0  # batches it already went through (a first usage of the month: one)


class Batcher:
    """Collects reports and records them a batch per statement, `concurrency` batches at a
    time. A batch takes everything waiting (up to `size`), one report per user and per
    idempotency key; the rest wait for the next batch. A batch starts at once when none is
    running (a lone report never waits); another one only when `min_fill` reports are
    waiting, else they join the batch that starts when the running one ends: bigger
    batches, fewer statements for the same reports (measured: +15 % reports/s).

    Reports a batch cannot settle: the first usages of a month get their rows in one
    statement and go into the next batch (at midnight UTC on the 1st, every user's first
    report is one); reports whose member row was locked elsewhere, or that met a concurrent
    duplicate, are recorded alone, waiting for locks, without holding up the batches."""

    def __init__(self, database: Database, *, size: int, concurrency: int, min_fill: int = 1):
        self.database = database
        self.size = size
        self.concurrency = concurrency
        self.min_fill = min_fill
        self.pending: deque[_Waiting] = deque()
        self.running = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task] = set()

    def record(self, report: Report) -> asyncio.Future:
        """A future of the report's UsageResult (or its UsageError)."""
        waiting = _Waiting(report, asyncio.get_running_loop().create_future())
        self.pending.append(waiting)
        self._kick()
        return waiting.answer

    def _kick(self) -> None:
        # Start on the next loop turn, so reports arriving in this one join the batch.
        if self.pending and not self._scheduled and self.running < self.concurrency:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        while self.pending and self.running < self.concurrency:
            if self.running and len(self.pending) < self.min_fill:
                break  # the running batch's end starts the next one, fuller
            batch = self._take()
            if batch:
                self.running += 1
                self._spawn(self._run(batch))

    def _take(self) -> list[_Waiting]:
        batch, later, users, keys = [], [], set(), set()
        while self.pending and len(batch) < self.size:
            waiting = self.pending.popleft()
            report = waiting.report
            if waiting.answer.done():  # the client went away before its turn
                continue
            key = (report.key_hash, report.idempotency_key)
            if report.usage.email in users or (report.idempotency_key and key in keys):
                later.append(waiting)
                continue
            users.add(report.usage.email)
            keys.add(key)
            batch.append(waiting)
        self.pending.extendleft(reversed(later))
        return batch

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # a reference, or the loop may drop a running task
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Waiting]) -> None:
        try:
            now = timezone.now()
            reports = [waiting.report for waiting in batch]
            try:
                rows = await self.database.execute(
                    postgres.BATCH_SQL, postgres.params(reports, now)
                )
            except psycopg.Error as exc:
                rolled_back = isinstance(exc, psycopg.errors.TransactionRollback)
                if isinstance(exc, UNAVAILABLE) and not rolled_back:
                    raise
                # A concurrent duplicate refused one event, or a deadlock with another
                # writer: nothing of the batch was written; each report goes alone.
                for waiting in batch:
                    self._spawn(self._alone(waiting))
                return
            first_of_month = []
            for waiting, values in zip(batch, rows, strict=True):
                if waiting.answer.done():
                    continue
                row = Row._make(values)
                try:
                    result = postgres.settle(waiting.report, row, now=now, waited=False)
                except Again as again:
                    if again.why == Again.NO_MONTH_ROW and waiting.passes == 0:
                        first_of_month.append((waiting, row.user_id))
                    else:
                        self._spawn(self._alone(waiting))
                except UsageError as error:
                    waiting.answer.set_exception(error)
                else:
                    waiting.answer.set_result(result)
            if first_of_month:
                await self._next_batch_with_month_rows(first_of_month, now)
        except Exception as exc:  # unavailable database, or a bug: every report hears of it
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
        finally:
            self.running -= 1
            self._kick()

    async def _next_batch_with_month_rows(self, first: list, now) -> None:
        pairs = {(user_id, waiting.report.usage.kind) for waiting, user_id in first}
        await self.database.execute(
            postgres.ENSURE_MONTH_SQL, postgres.ensure_month_params(sorted(pairs), now)
        )
        for waiting, _ in reversed(first):
            waiting.passes += 1
            self.pending.appendleft(waiting)

    async def _alone(self, waiting: _Waiting) -> None:
        answer = waiting.answer
        try:
            flow = postgres.record_one(waiting.report, timezone.now())
            result = await run_async(flow, self.database)
        except Exception as exc:
            if not answer.done():
                answer.set_exception(exc)
        else:
            if not answer.done():
                answer.set_result(result)
