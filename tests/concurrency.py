"""Run pieces of work in real threads at once, each on its own database connection."""

import threading

from django.db import connections

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
