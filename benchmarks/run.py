"""`make bench`: every figure of issue 19, at each size, in one table with its anchor and goal.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench            # 1M and 10M
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench SIZE=1000000

Only DATABASE_URL's server and credentials are used. For each size it creates the database
`asksage_bench_<size>` (e.g. asksage_bench_1m) if missing, and seeds it unless it recorded
being seeded at that size already (a second run skips the seeding; `--fresh` drops and seeds
again); `asksage_bench_empty` holds no events, for the usage API's rate on an empty table (run just
before each size's, so the two compared runs are minutes apart).
Then, in child processes (each database is another Django configuration):
  - benchmarks/figures.py: Token Statistics, User Management, Activity (when
    benchmarks/activity_page.py exists) against Django admin's changelist, and the CSV export
    against COPY;
  - benchmarks/usage_api.py: the usage API's rate as a share of pgbench's, and its p99, in the
    empty database and in each seeded one, whose ratio is the "rate at N events" figure.
Their output is shown as it comes; the table is printed at the end. Ratios, not times, are
the figures: the anchor runs on the same machine in the same minute, so a shared, noisy host
moves both. Knobs: BENCH_RUNS (pages, median of 7), BENCH_SECONDS (usage API, 30).
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from common import (
    PREFIX,
    RESULT_MARK,
    Row,
    database_url,
    drop_database,
    ensure_database,
    recorded_seed,
    require_postgres,
    table,
)

HERE = Path(__file__).resolve().parent
SIZES = (1_000_000, 10_000_000)
RATE_GOAL = ("min", 0.90)  # the usage API at N events within 10 % of its rate on an empty table


def label(events: int) -> str:
    """1000000 → 1M, 50000 → 50k: the database's suffix and the rows' tag."""
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if events >= size and events % size == 0:
            return f"{events // size}{unit}"
    return str(events)


def child(script: str, url: str, *args: str, **env: str) -> list[Row]:
    """Run a benchmark script on database `url`, echo its output, return the rows it printed."""
    rows, started = [], time.perf_counter()
    print(f"\n== {script} {' '.join(args)} on {url.rsplit('/', 1)[-1]}", flush=True)
    command = [sys.executable, str(HERE / script), *args]
    environ = {**os.environ, "DATABASE_URL": url, **env}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environ) as process:
        for line in process.stdout:
            if line.startswith(RESULT_MARK):
                rows.append(Row.from_line(line))
            else:
                print("   " + line, end="", flush=True)
    if process.returncode:
        raise SystemExit(f"{script} failed (exit status {process.returncode})")
    print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def prepared(url: str, events: int, fresh: bool) -> str:
    """The size's database, dropped first when it holds anything but this size's seed."""
    db = database_url(url, f"{PREFIX}{label(events).lower()}")
    recorded = recorded_seed(db)
    if fresh or (recorded and recorded.get("events") != events):
        drop_database(db)
    elif recorded is None and not ensure_database(db):
        drop_database(db)  # there, but its seeding never finished: start again
    ensure_database(db)
    return db


def rate_row(at_size: Row, empty: Row, events: int) -> Row:
    return Row(
        f"usage API rate at {events:,} events vs an empty table",
        f"{100 * at_size.ratio:.1f} % of pgbench ({at_size.value})",
        f"{100 * empty.ratio:.1f} % of pgbench ({empty.value}, empty)",
        at_size.ratio / empty.ratio,
        RATE_GOAL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, action="append", help="a size (repeatable)")
    parser.add_argument("--fresh", action="store_true", help="drop and seed the databases again")
    parser.add_argument("--no-usage-api", action="store_true", help="skip wrk and pgbench")
    parser.add_argument("--seed-only", action="store_true", help="prepare the databases only")
    args = parser.parse_args()
    url = require_postgres()
    sizes = args.events or list(SIZES)
    started = time.perf_counter()
    rows: list[Row] = []
    if args.seed_only:
        for events in sizes:
            child("figures.py", prepared(url, events, args.fresh), "--events", str(events),
                  "--seed-only")  # fmt: skip
        return
    empty_db = database_url(url, f"{PREFIX}empty")
    for events in sizes:
        db = prepared(url, events, args.fresh)
        rows += child("figures.py", db, "--events", str(events), "--label", label(events))
        if not args.no_usage_api:
            # The empty table's run just before the size's: the machine's load changes within
            # minutes, and the two shares are compared.
            ensure_database(empty_db)
            empty = child(
                "usage_api.py", empty_db, BENCH_LABEL=f"empty table, before {label(events)}"
            )
            usage = child("usage_api.py", db, BENCH_LABEL=f"{label(events)} events")
            rows += [*empty, *usage, rate_row(usage[0], empty[0], events)]
    minutes = (time.perf_counter() - started) / 60
    print(f"\n{table(rows)}\n\n({len(sizes)} size(s), {minutes:.1f} min)")


if __name__ == "__main__":
    main()
