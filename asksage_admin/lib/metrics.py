"""Prometheus metrics: what the app counts, and the hooks other parts report through.

Exposed at /metrics (asksage_admin.ops.views), for a scraper holding METRICS_TOKEN. Labels
are bounded by the code, never by the traffic: a view's name (not its URL, which carries
ids), a status class, a usage outcome. Under gunicorn with several workers set
PROMETHEUS_MULTIPROC_DIR to an empty directory (emptied before each start): prometheus_client
then keeps each worker's counts in files there and /metrics adds them up, whichever worker
answers.

For other parts of the app (layer 0, so any app may import it):
- `usage_reported(outcome, reason="")` once per usage report (the usage API).
- `register_queue_depth(name, callback)`: a task queue's depth, read at each scrape.
"""

import functools
import logging
import os
import re
from collections.abc import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter(
    "asksage_http_requests",
    "Requests answered by Django, by view name, method and status class.",
    ["view", "method", "status"],
)
LATENCY = Histogram(
    "asksage_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by view name.",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
USAGE_REPORTS = Counter(
    "asksage_usage_reports",
    "Usage reports received by the usage API, by outcome and (when refused) reason.",
    ["outcome", "reason"],
)

USAGE_OUTCOMES = frozenset({"accepted", "replayed", "refused", "invalid", "unavailable"})
_CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def usage_reported(outcome: str, reason: str = "") -> None:
    """Count one usage report.

    outcome: accepted (recorded), replayed (an Idempotency-Key seen before), refused (a rule
    said no: reason is the API's error code, e.g. "insufficient_tokens"), invalid (a 400) or
    unavailable (503). Anything else counts as "other", so a typo never raises in the API.
    """
    if outcome not in USAGE_OUTCOMES:
        outcome = "other"
    if reason and not _CODE.fullmatch(reason):
        reason = "other"
    _usage_reports(outcome, reason).inc()


def request_observed(*, view: str, method: str, status: int, seconds: float) -> None:
    """Count one request Django answered (asksage_admin.ops.middleware)."""
    method = method if method in _METHODS else "other"
    _requests(view, method, f"{status // 100}xx").inc()
    _latency(view).observe(seconds)


# Each series' child, looked up once per process: `labels()` checks and locks on every call,
# which cost the usage API's fast path more than the counting (a few µs a report). The label
# values are bounded by the code (above), so are these caches.
@functools.cache
def _usage_reports(outcome: str, reason: str):
    return USAGE_REPORTS.labels(outcome=outcome, reason=reason)


@functools.cache
def _requests(view: str, method: str, status: str):
    return REQUESTS.labels(view=view, method=method, status=status)


@functools.cache
def _latency(view: str):
    return LATENCY.labels(view=view)


_queue_depths: dict[str, Callable[[], int]] = {}


def register_queue_depth(name: str, callback: Callable[[], int]) -> None:
    """Report `callback()` as asksage_task_queue_depth{queue=name} at each scrape.

    The callback runs in the scraping request: keep it one cheap query. Registering a name
    again replaces its callback (a reloaded module registers once more).
    """
    _queue_depths[name] = callback


class _QueueDepthCollector(Collector):
    """Reads each registered queue's depth when scraped; a failing callback is left out."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "asksage_task_queue_depth", "Tasks waiting in each task queue.", labels=["queue"]
        )
        for name, callback in sorted(_queue_depths.items()):
            try:
                family.add_metric([name], float(callback()))
            except Exception:
                logger.warning("queue depth callback failed", extra={"queue": name}, exc_info=True)
        yield family


_QUEUE_DEPTHS = _QueueDepthCollector()
REGISTRY.register(_QUEUE_DEPTHS)


def exposition() -> bytes:
    """Every metric in Prometheus' text format, summed over the workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_QUEUE_DEPTHS)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
