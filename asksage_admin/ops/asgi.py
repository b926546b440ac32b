"""Around the whole ASGI application (asksage_admin/asgi.py): the request id, the access line
and the request metrics for the requests Django's middleware never sees.

The usage API's fast path (tokens/usage_api/fastpath.py) answers `POST /api/v1/usage` ahead
of Django. Here every HTTP request gets its id bound before either door runs (so the fast
path's own log lines carry it, and RequestLogMiddleware reuses it), every answer carries
X-Request-ID, and a request Django did not serve gets the same access line and counts as
one that it did.
"""

import time

from asksage_admin.lib import metrics
from asksage_admin.lib.access_log import access_logged
from asksage_admin.lib.request_id import HEADER, bind_request_id, unbind_request_id
from asksage_admin.ops.asgi_wrap import HttpWrapperASGI

SERVED_BY_DJANGO = "asksage.served_by_django"  # set in the scope by RequestLogMiddleware
_HEADER = HEADER.lower().encode()


class RequestContextASGI(HttpWrapperASGI):
    async def http(self, scope, receive, send) -> None:
        incoming = next((v for k, v in scope.get("headers", ()) if k == _HEADER), b"")
        request_id, tokens = bind_request_id(incoming.decode("latin-1"))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER]
                message = {**message, "headers": [*headers, (_HEADER, request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if not scope.get(SERVED_BY_DJANGO):
                _observe_outside_django(scope, status, time.perf_counter() - started)
            unbind_request_id(tokens)


def _observe_outside_django(scope, status: int, seconds: float) -> None:
    view = "api:usage" if scope.get("path") == "/api/v1/usage" else "outside_django"
    method = scope.get("method", "GET")
    metrics.request_observed(view=view, method=method, status=status, seconds=seconds)
    client = scope.get("client") or (None, None)
    access_logged(
        method=method,
        path=scope.get("path", ""),
        view=view,
        status=status,
        seconds=seconds,
        client_ip=client[0],
    )
