"""Shared by the benchmark harness and scripts: databases, timing, the results table.

Nothing here imports the project: `bootstrap()` prepares the environment (the development
settings, the repository on sys.path) and each script calls `django.setup()` itself, so the
harness's parent process can create and drop databases without Django.
"""

import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PREFIX = os.environ.get("BENCH_DB_PREFIX", "asksage_bench_")
META_TABLE = "bench_meta"  # one row: what the seeding put in this database
RESULT_MARK = "@@row "  # a child's result lines: the mark, then one Row as JSON


def bootstrap() -> None:
    """The repository importable and the development settings, as `make bench` sets them."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asksage_admin.settings")
    os.environ.setdefault("DEBUG", "1")  # a developer's tool: the development settings
    os.environ.setdefault("MFA_REQUIRED", "0")  # the clients log in with force_login
    # An access-log line per timed request would bury the output (the anchor's too).
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def require_postgres(url: str | None = None) -> str:
    """DATABASE_URL, or a clear exit: the figures compare with PostgreSQL's own speed."""
    url = os.environ.get("DATABASE_URL", "") if url is None else url
    if not url.startswith(("postgres://", "postgresql://")):
        shown = url or "unset (SQLite)"
        raise SystemExit(
            f"DATABASE_URL is {shown}: the benchmarks need a PostgreSQL server, e.g.\n"
            "    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench\n"
            f"(only the server is used: the databases, named {PREFIX}*, are created on it)."
        )
    return url


def database_url(url: str, name: str) -> str:
    """The same server and credentials, another database."""
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def _server(url: str):
    """An autocommit connection to the server's maintenance database (CREATE/DROP DATABASE)."""
    import psycopg

    return psycopg.connect(database_url(url, "postgres"), autocommit=True)


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if missing; True when it was created."""
    name = urlsplit(url).path.lstrip("/")
    with _server(url) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
    return True


def drop_database(url: str) -> None:
    """Drop a benchmark's own database (named with PREFIX; anything else is refused)."""
    name = urlsplit(url).path.lstrip("/")
    if not name.startswith(PREFIX):
        raise SystemExit(f"refusing to drop database {name!r}: not prefixed {PREFIX!r}")
    with _server(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recorded_seed(url: str) -> dict | None:
    """What the seeding recorded in this database when it finished, or None."""
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            row = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'seed'").fetchone()
    except psycopg.Error:  # no such database or table: never seeded to the end
        return None
    return json.loads(row[0]) if row else None


def record_seed(cursor, meta: dict) -> None:
    """Written last, so an interrupted seeding leaves no record and is redone."""
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key text PRIMARY KEY, value text)")
    cursor.execute(
        f"INSERT INTO {META_TABLE} (key, value) VALUES ('seed', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        [json.dumps(meta)],
    )


def median_ms(func, runs: int) -> tuple[float, int]:
    """Median wall time of `func` in ms over `runs` runs after a warm-up, and its query count."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    func()  # warm caches and connections
    times, queries = [], 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            func()
            times.append((time.perf_counter() - start) * 1000)
        queries = len(captured.captured_queries)
    return statistics.median(times), queries


@dataclass
class Row:
    """One line of the table: a figure, its anchor measured in the same run, and the goal.

    `ratio` is value / anchor (for the usage API: its share of pgbench's rate); `goal` is
    ("max", x) when the ratio must stay ≤ x, ("min", x) when it must reach x.
    """

    measure: str
    value: str
    anchor: str
    ratio: float | None
    goal: tuple[str, float] | None = None
    unit: str = "×"  # how the ratio and the goal are written: "×" or "%"
    check_ms: float | None = None  # a goal in ms (p99) is checked on this, not on the ratio

    def met(self) -> str:
        checked = self.ratio if self.check_ms is None else self.check_ms
        if self.goal is None or checked is None:
            return "–"
        op, limit = self.goal
        ok = checked <= limit if op == "max" else checked >= limit
        return "yes" if ok else "**no**"

    def cells(self) -> list[str]:
        def show(x: float) -> str:
            return f"{100 * x:.1f} %" if self.unit == "%" else f"{x:.2f}×"

        ratio = "–" if self.ratio is None else show(self.ratio)
        goal = "–"
        if self.goal:
            limit = f"{self.goal[1]:g} ms" if self.check_ms is not None else show(self.goal[1])
            goal = ("≤ " if self.goal[0] == "max" else "≥ ") + limit
        return [self.measure, self.value, self.anchor, ratio, goal, self.met()]

    def emit(self) -> None:
        """Print for the harness's parent, which reads the line back with `from_line`."""
        print(RESULT_MARK + json.dumps(asdict(self)), flush=True)

    @classmethod
    def from_line(cls, line: str) -> "Row":
        data = json.loads(line[len(RESULT_MARK) :])
        data["goal"] = tuple(data["goal"]) if data["goal"] else None
        return cls(**data)


def ms_row(measure: str, value_ms: float, anchor: str, anchor_ms: float, goal=None) -> Row:
    """A page timed against an anchor page, both in ms."""
    return Row(measure, f"{value_ms:,.0f} ms", f"{anchor_ms:,.0f} ms ({anchor})",
               value_ms / anchor_ms, goal)  # fmt: skip


def table(rows: list[Row]) -> str:
    """One markdown table of every figure."""
    head = ["measure", "value", "anchor", "ratio", "goal", "met?"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)
