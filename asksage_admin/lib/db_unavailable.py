"""The answer while the database is unreachable: 503 with Retry-After, never a 500.

Django turns an exception into a response at the layer where it is raised: in a view, and
also in the session, authentication or any other middleware that reads the database before
the view runs. Each of those ends in the 500 handler (`handler500` in the URLconf), which is
the one place that sees them all; it answers 503 when the exception says the database is
down, restarting or out of connections (a pool timeout), and Django's 500 otherwise. The
page is rendered without the request: its context processors would query the database.
"""

import sys

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.csp import build_policy
from django.views import defaults

RETRY_AFTER_SECONDS = 5
DETAIL = "The database is unavailable; nothing was changed. Retry later."

# Django's wrappers of the driver's errors, and the driver's own for code that talks to
# psycopg directly; psycopg_pool's PoolTimeout is a psycopg.OperationalError.
UNAVAILABLE = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """JSON under /api/, the 503 page elsewhere; not cached, retried after a few seconds."""
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"error": "database_unavailable", "detail": DETAIL},
            status=503,
            json_dumps_params={"ensure_ascii": False},
        )
    else:
        response = HttpResponse(loader.render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    session = getattr(request, "session", None)
    if session is not None:
        # On its way out the session middleware would load the session again: a second
        # wait for a connection, twice the time to answer (measured: 4 s instead of 2).
        # Only the copy in memory is cleared: nothing is saved on a 5xx answer, the cookie
        # and the stored session stay as they are.
        session.clear()
    # Set here: raised in the session middleware, the answer never passes through the
    # clickjacking and CSP middleware below it. The page has no script: no nonce needed.
    response["X-Frame-Options"] = settings.X_FRAME_OPTIONS
    if getattr(settings, "SECURE_CSP", None):
        response["Content-Security-Policy"] = build_policy(settings.SECURE_CSP)
    return response


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """handler500: Django calls it inside its `except` block, so the exception is at hand."""
    if isinstance(sys.exc_info()[1], UNAVAILABLE):
        return unavailable_response(request)
    return defaults.server_error(request, template_name)
