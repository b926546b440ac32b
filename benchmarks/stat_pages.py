"""Token Statistics against the changelist, interleaved: the issue-19 pass's lab bench.

`DATABASE_URL=postgres://…/stat_bench_1m python benchmarks/stat_pages.py [--runs 7]` on a
database `figures.py` seeded. Each round times the changelist and the three periods one
after the other, so a drift of the shared machine's speed hits all of them; prints each
median and its ratio to the changelist's median. When the forecast snapshots exist in the
code, they are refreshed first (as the periodic task keeps them) and that refresh is timed;
so is the closing of the cumulative usage's months (`analytics.cumulative`), when present.
"""

import argparse
import statistics
import time

import figures
from django.db import connection
from seed import USERS_SLUG

from accounts.models import Organization


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    try:
        from analytics import snapshots  # noqa: PLC0415 (absent before the snapshots)
    except ImportError:
        snapshots = None
    try:
        from analytics import cumulative  # noqa: PLC0415 (absent before the closed months)
    except ImportError:
        cumulative = None
    for refresh in [
        snapshots and snapshots.snapshots_refresh_stale,
        cumulative and cumulative.cumulative_close_due,
    ]:
        if refresh is not None:
            start = time.perf_counter()
            print(refresh(), end=" ")
            print(f"in {(time.perf_counter() - start) * 1000:.0f} ms", flush=True)
    timers = {"changelist": figures.changelist_timer(Organization.objects.get(slug=USERS_SLUG))}
    for name, timer in figures.page_timers().items():
        if name.startswith("Token Statistics"):
            timers[name.split(", ")[1].split(" (")[0]] = timer
    for timer in timers.values():
        timer()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(args.runs):
        for name, timer in timers.items():
            start = time.perf_counter()
            timer()
            times[name].append((time.perf_counter() - start) * 1000)
    anchor = statistics.median(times["changelist"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:12} {median:7.0f} ms  {median / anchor:5.2f}×", flush=True)
    connection.close()


if __name__ == "__main__":
    main()
