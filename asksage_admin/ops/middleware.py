"""The outermost middleware: request id, access log line, request metrics, and the probes."""

import time
from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotFound

from asksage_admin.lib import metrics
from asksage_admin.lib.access_log import access_logged, logged_path
from asksage_admin.lib.http import client_ip
from asksage_admin.lib.request_id import (
    HEADER,
    bind_request_id,
    current_request_id,
    unbind_request_id,
)
from asksage_admin.ops import views
from asksage_admin.ops.asgi import SERVED_BY_DJANGO

# Answered here, before the host check, the HTTPS redirect and the session (see ops.views).
PROBES: dict[str, tuple[str, Callable[[HttpRequest], HttpResponse]]] = {
    "/healthz": ("ops:healthz", views.healthz),
    "/readyz": ("ops:readyz", views.readyz),
    "/metrics": ("ops:metrics", views.metrics_view),
}


class RequestLogMiddleware:
    """Binds the request id (asksage_admin.lib.request_id) for every line logged while the
    request is served and echoes it in X-Request-ID; then writes one access line and counts
    the request by view name and status class (asksage_admin.lib.metrics)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        # Under ASGI the id is already bound (asksage_admin.ops.asgi): the same one, then.
        request_id = current_request_id()
        tokens = None
        if request_id is None:
            request_id, tokens = bind_request_id(request.headers.get(HEADER))
        scope = getattr(request, "scope", None)
        if scope is not None:
            scope[SERVED_BY_DJANGO] = True
        try:
            probe = PROBES.get(request.path_info)
            if probe is not None:
                view_name, response = probe[0], _answer_probe(probe[1], request)
            else:
                response = self.get_response(request)
                match = getattr(request, "resolver_match", None)
                view_name = match.view_name if match is not None else "unresolved"
            response[HEADER] = request_id
            seconds = time.perf_counter() - started
            metrics.request_observed(
                view=view_name, method=request.method, status=response.status_code, seconds=seconds
            )
            _log_access(request, response, view_name, seconds, quiet=probe is not None)
            return response
        finally:
            if tokens is not None:
                unbind_request_id(tokens)


def _answer_probe(view: Callable[[HttpRequest], HttpResponse], request: HttpRequest):
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotFound() if view is views.metrics_view else _not_allowed()
    try:
        response = view(request)
    except Http404:
        response = HttpResponseNotFound()
    # Not again by django.request: a failing readiness check has logged its reason, and a
    # balancer asking each second during an outage would add an error line each time.
    response._has_been_logged = True
    return response


def _not_allowed() -> HttpResponse:
    response = HttpResponse(status=405)
    response["Allow"] = "GET, HEAD"
    return response


def _log_access(request, response, view_name: str, seconds: float, *, quiet: bool) -> None:
    user = getattr(request, "_cached_user", None)  # only if the request loaded it anyway
    access_logged(
        method=request.method,
        path=logged_path(request),
        view=view_name,
        status=response.status_code,
        seconds=seconds,
        client_ip=client_ip(request),
        user_id=user.pk if user is not None and user.is_authenticated else None,
        quiet=quiet,
    )
