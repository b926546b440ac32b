"""Timing shared by the benchmark scripts (run as `python benchmarks/<name>.py`)."""

import statistics
import time


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
