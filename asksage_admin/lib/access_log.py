"""The access log: one line a request, the same fields wherever the request was served.

Written by asksage_admin.ops.middleware for everything Django serves, and to be written by
code that answers outside Django's middleware (the usage API's fast path), so that the log
has one line per request whichever path answered it.
"""

import logging

from django.conf import settings

access_logger = logging.getLogger("asksage.access")


def secret_in_path(view):
    """Mark a view whose URL carries a secret (an invitation link): the access line names its
    route pattern instead of the path, and its refusals skip django.request's warning line,
    so the secret never reaches the logs."""
    view.secret_in_path = True
    return view


def logged_path(request) -> str:
    """The path for a log line: the route pattern for a `secret_in_path` view."""
    match = getattr(request, "resolver_match", None)
    if match is not None and getattr(match.func, "secret_in_path", False):
        return "/" + match.route
    return request.path


def access_logged(
    *,
    method: str,
    path: str,
    view: str,
    status: int,
    seconds: float,
    client_ip: str | None,
    user_id: int | None = None,
    quiet: bool = False,
) -> None:
    """`path` without its query string (searches carry emails). `quiet` (a probe) logs a
    success at DEBUG: a balancer asks every second. 5xx at WARNING, the rest at INFO.
    Nothing with ACCESS_LOG off."""
    if not settings.ACCESS_LOG:
        return
    level = logging.WARNING if status >= 500 else logging.INFO
    if quiet and status < 400:
        level = logging.DEBUG
    access_logger.log(
        level,
        "request",
        extra={
            "method": method,
            "path": path,
            "view": view,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "client_ip": client_ip,
            "user_id": user_id,
        },
    )
