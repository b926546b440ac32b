"""Probes for load balancers and the metrics scrape.

All three are answered by asksage_admin.ops.middleware.RequestLogMiddleware before the rest
of the middleware (no host check, no HTTPS redirect, no session): a balancer probes a node by
its address over plain HTTP, and a scraper by the pod's. Their URL patterns exist so they can
be reversed and so the access sweep visits them.
"""

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from asksage_admin.lib import health, metrics


def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and answering. Touches nothing else: a database outage must not make
    an orchestrator restart healthy processes."""
    return _no_store(HttpResponse("ok", content_type="text/plain; charset=utf-8"))


def readyz(request: HttpRequest) -> HttpResponse:
    """200 when this process can serve (database, migrations, registered checks), else 503,
    naming the failing checks only (asksage_admin.lib.health)."""
    checks = health.readiness()
    ready = all(state == "ok" for state in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    response = JsonResponse(body, status=200 if ready else 503)
    if not ready:
        response["Retry-After"] = "5"
    return _no_store(response)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition for a scraper sending `Authorization: Bearer <METRICS_TOKEN>`.

    Anyone else, and everyone while no token is configured, gets 404: the endpoint does not
    admit to existing. Constant-time comparison, so the token cannot be guessed by timing.
    """
    if not _bearer_matches(request, settings.METRICS_TOKEN):
        raise Http404
    return _no_store(HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE))


def _bearer_matches(request: HttpRequest, token: str) -> bool:
    if not token:
        return False
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(offered.strip().encode(), token.encode())


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response
