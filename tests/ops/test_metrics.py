"""/metrics: Prometheus' format, for the scraper holding METRICS_TOKEN and nobody else."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django_tasks_db.models import DBTaskResult, get_date_max
from prometheus_client.parser import text_string_to_metric_families

from asksage_admin.lib import metrics

TOKEN = "t" * 32
BASE_DIR = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def scraper(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def scrape() -> dict[tuple, float]:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=")
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples
        }

    return scrape


def test_metrics_answer_404_while_no_token_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize(
    "authorization", [None, f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"]
)
def test_metrics_answer_404_without_the_right_bearer_token(client, settings, authorization):
    settings.METRICS_TOKEN = TOKEN
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 404
    assert b"asksage_" not in response.content


def test_metrics_refuse_a_post_even_with_the_token(client, settings):
    settings.METRICS_TOKEN = TOKEN
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


def test_requests_are_counted_by_view_name_and_status_class_not_by_url(client, scraper):
    key = (
        "asksage_http_requests_total",
        (("method", "GET"), ("status", "2xx"), ("view", "ops:healthz")),
    )
    before = scraper().get(key, 0)
    client.get("/healthz")
    client.get("/healthz")
    after = scraper()
    assert after[key] == before + 2
    assert ("asksage_http_request_duration_seconds_count", (("view", "ops:healthz"),)) in after
    assert not [name for name, labels in after if "/healthz" in str(labels)]


def test_an_unknown_url_is_counted_under_one_label(client, scraper):
    client.get("/no/such/page/12345")
    labels = {dict(labels).get("view") for name, labels in scraper()}
    assert "unresolved" in labels and not any("12345" in str(view) for view in labels)


def test_usage_reports_are_counted_by_outcome_and_reason(scraper):
    accepted = ("asksage_usage_reports_total", (("outcome", "accepted"), ("reason", "")))
    refused = (
        "asksage_usage_reports_total",
        (("outcome", "refused"), ("reason", "insufficient_tokens")),
    )
    before = scraper()
    metrics.usage_reported("accepted")
    metrics.usage_reported("refused", "insufficient_tokens")
    metrics.usage_reported("refused", "insufficient_tokens")
    after = scraper()
    assert after[accepted] == before.get(accepted, 0) + 1
    assert after[refused] == before.get(refused, 0) + 2


def test_an_unexpected_usage_outcome_or_reason_is_counted_as_other_without_raising(scraper):
    metrics.usage_reported("Accepted!", "Some Reason with spaces")
    assert ("asksage_usage_reports_total", (("outcome", "other"), ("reason", "other"))) in scraper()


def test_a_registered_queue_depth_is_read_at_each_scrape(scraper, monkeypatch):
    monkeypatch.setattr(metrics, "_queue_depths", {})
    depth = iter([3, 5])
    metrics.register_queue_depth("emails", lambda: next(depth))
    metrics.register_queue_depth("broken", lambda: 1 / 0)  # left out, never a 500
    key = ("asksage_task_queue_depth", (("queue", "emails"),))
    assert scraper()[key] == 3
    samples = scraper()
    assert samples[key] == 5
    assert ("asksage_task_queue_depth", (("queue", "broken"),)) not in samples


def test_in_multiprocess_mode_metrics_add_up_over_the_workers(tmp_path):
    """Two processes (gunicorn's workers) count into PROMETHEUS_MULTIPROC_DIR; a third
    scrapes and sees both."""
    worker = textwrap.dedent("""
        from asksage_admin.lib import metrics
        metrics.usage_reported("accepted")
    """)
    scrape = textwrap.dedent("""
        from asksage_admin.lib import metrics
        print(metrics.exposition().decode())
    """)
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for script in (worker, worker):
        subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, env=env, check=True)
    out = subprocess.run(
        [sys.executable, "-c", scrape],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert 'asksage_usage_reports_total{outcome="accepted",reason=""} 2.0' in out


@pytest.mark.django_db
def test_the_task_queue_depth_counts_the_tasks_waiting_for_a_worker(scraper):
    depth = ("asksage_task_queue_depth", (("queue", "default"),))
    before = scraper()[depth]
    for _ in range(3):
        DBTaskResult.objects.create(
            task_path="tokens.tasks.task_results_prune",
            args_kwargs={"args": [], "kwargs": {}},
            backend_name="default",
            run_after=get_date_max(),
        )
    assert scraper()[depth] == before + 3
