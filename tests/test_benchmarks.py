"""The benchmark harness's own logic (benchmarks/run.py, common.py), without a database.

The harness itself runs against PostgreSQL (`make bench`); what can break silently is
here: the refusal of a non-PostgreSQL DATABASE_URL, the names of the databases it creates and
may drop, the rows that travel from its child processes, and the verdict against each goal.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
# Appended, so the scripts' flat imports (`from common import …`) resolve without shadowing
# any module found earlier on the path.
sys.path.append(str(BENCHMARKS))

import common  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_run", BENCHMARKS / "run.py")
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)


@pytest.mark.parametrize("url", ["", "sqlite:///db.sqlite3", "mysql://root@localhost/x"])
def test_bench_refuses_a_database_url_that_is_not_postgresql(url):
    with pytest.raises(SystemExit) as refused:
        common.require_postgres(url)
    assert "need a PostgreSQL server" in str(refused.value)
    assert "DATABASE_URL=postgres://" in str(refused.value)


def test_bench_accepts_either_spelling_of_a_postgresql_url():
    for url in ("postgres://u@h:5432/db", "postgresql://u@h/db"):
        assert common.require_postgres(url) == url


@pytest.mark.parametrize(
    ("events", "label"),
    [(1_000_000, "1M"), (10_000_000, "10M"), (50_000, "50k"), (1_234, "1234"), (0, "0")],
)
def test_each_size_gets_its_own_short_database_label(events, label):
    assert bench_run.label(events) == label


def test_a_size_database_keeps_the_server_and_credentials_of_database_url():
    url = common.database_url("postgres://bob:secret@db.example:5433/postgres", "asksage_bench_1m")
    assert url == "postgres://bob:secret@db.example:5433/asksage_bench_1m"


def test_dropping_a_database_not_named_for_benchmarks_is_refused():
    with pytest.raises(SystemExit) as refused:
        common.drop_database("postgres://postgres@127.0.0.1:5432/asksage")
    assert "refusing to drop" in str(refused.value)


def test_a_row_printed_by_a_child_process_reads_back_unchanged(capsys):
    row = common.Row("usage API p99 [1M]", "27.7 ms", "–", None, ("max", 50.0), check_ms=27.7)
    row.emit()
    line = capsys.readouterr().out
    assert line.startswith(common.RESULT_MARK)
    assert common.Row.from_line(line) == row


def test_a_page_slower_than_its_anchor_misses_a_goal_of_one_anchor():
    slow = common.ms_row("Token Statistics, 30 days", 800.0, "changelist", 100.0, ("max", 1.0))
    fast = common.ms_row("User Management, search", 50.0, "changelist", 100.0, ("max", 1.0))
    assert slow.cells() == [
        "Token Statistics, 30 days", "800 ms", "100 ms (changelist)", "8.00×", "≤ 1.00×",
        "**no**",
    ]  # fmt: skip
    assert fast.met() == "yes"


def test_a_latency_goal_is_checked_in_milliseconds_not_on_the_ratio():
    row = common.Row("usage API p99", "75.4 ms", "–", None, ("max", 50.0), check_ms=75.4)
    assert row.cells()[3:] == ["–", "≤ 50 ms", "**no**"]


def test_the_rate_at_size_is_its_share_of_pgbench_over_the_empty_tables_share():
    at_size = common.Row("rate [10M]", "1,500 requests/s", "5,000 tps", 0.30, ("min", 0.3), "%")
    empty = common.Row("rate [empty]", "1,600 requests/s", "4,800 tps", 0.32, ("min", 0.3), "%")
    row = bench_run.rate_row(at_size, empty, 10_000_000)
    assert row.ratio == pytest.approx(0.30 / 0.32)
    assert row.met() == "yes"  # 0.94 ≥ 0.90
    slower = common.Row("rate [10M]", "1,000 requests/s", "5,000 tps", 0.20, None, "%")
    assert bench_run.rate_row(slower, empty, 10_000_000).met() == "**no**"


def test_the_table_has_a_header_and_one_line_per_figure():
    rows = [
        common.ms_row("a", 1.0, "changelist", 2.0, ("max", 1.0)),
        common.ms_row("b", 3.0, "changelist", 2.0),
    ]
    lines = common.table(rows).splitlines()
    assert lines[0] == "| measure | value | anchor | ratio | goal | met? |"
    assert len(lines) == 2 + len(rows)
    assert lines[3].endswith("| 1.50× | – | – |")


def _figures():
    """figures.py, loaded as the harness runs it; the environment defaults it sets for its
    own process (DEBUG, MFA_REQUIRED) are undone, so no later test inherits them."""
    saved = dict(os.environ)
    try:
        spec = importlib.util.spec_from_file_location("bench_figures", BENCHMARKS / "figures.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module


def test_activity_rows_come_from_activity_page_measure_when_the_script_exists(tmp_path):
    figures = _figures()
    figures.HERE = tmp_path
    assert figures.activity_rows() == []  # no script: no rows, nothing fails
    (tmp_path / "activity_page.py").write_text(
        "def measure():\n"
        "    return [\n"
        "        {'measure': 'anchor: admin changelist of users', 'value_ms': 100.0,\n"
        "         'anchor_ms': 100.0, 'ratio': 1.0},\n"
        "        {'measure': '(c) page + badge', 'value_ms': 80.0, 'anchor_ms': 100.0,\n"
        "         'ratio': 0.8},\n"
        "        {'measure': '(e) verify_audit --org', 'value_ms': 900.0, 'anchor_ms': 100.0,\n"
        "         'ratio': 9.0},\n"
        "    ]\n"
    )
    page, walk = figures.activity_rows()  # the anchor's own row is left out
    assert page.measure.endswith("(c) page + badge")
    assert (page.ratio, page.met()) == (0.8, "yes")
    assert walk.goal is None and walk.met() == "–"  # shown for reading, no goal


def test_a_failing_activity_script_gives_a_row_saying_so_not_a_lost_run(tmp_path):
    figures = _figures()
    figures.HERE = tmp_path
    (tmp_path / "activity_page.py").write_text("def measure():\n    raise RuntimeError('no')\n")
    (row,) = figures.activity_rows()
    assert row.value.startswith("failed: RuntimeError('no')")
