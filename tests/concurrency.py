"""Run pieces of work in real threads at once, each on its own database connection."""

import threading
import time

from django.db import connection, connections

from asksage_admin.lib.errors import DomainError


def run_together(*works):
    """Start every work at the same moment; returns ("ok", result), ("refused", message) or
    ("crashed", repr) per work, in order. A crash is any exception but a domain refusal."""
    barrier = threading.Barrier(len(works))
    outcomes: list = [None] * len(works)

    def run(index, work):
        try:
            barrier.wait(timeout=30)
            outcomes[index] = ("ok", work())
        except DomainError as exc:
            outcomes[index] = ("refused", " ".join(exc.messages))
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcomes[index] = ("crashed", repr(exc))
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(i, w), name=f"work-{i}") for i, w in enumerate(works)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def hold_first_thread(target, attribute: str, *, until: threading.Event, seconds: float = 2.0):
    """Wrap `target.attribute` so that thread "work-0" pauses before calling it until `until`
    is set (or `seconds` pass): the other threads get to run through the same step first.

    This opens a race window deterministically: without a lock, work-1 completes inside it;
    with one, work-1 waits for work-0's lock, and work-0 goes on once the pause times out.
    """
    original = getattr(target, attribute)

    def paused(*args, **kwargs):
        if threading.current_thread().name == "work-0":
            until.wait(timeout=seconds)
        return original(*args, **kwargs)

    return paused


def wait_for_lock_waiters(count: int, *, sqlite_pause: float, timeout: float = 30) -> None:
    """Return once `count` sessions of this test database wait on a lock.

    PostgreSQL shows lock waits in pg_stat_activity, so a test knows the other thread is
    blocked behind its lock instead of guessing with a sleep. SQLite's busy wait is not
    visible from another connection: there the test still pauses `sqlite_pause` seconds.
    """
    if connection.vendor != "postgresql":
        time.sleep(sqlite_pause)
        return
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} session(s) never waited on a lock")
            time.sleep(0.01)
