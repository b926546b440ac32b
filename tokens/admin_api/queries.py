"""Query strings hold only what an operation declares: a misspelt filter (`near-limit` for
`near_limit`) is a 400 naming it, not a silently unfiltered answer."""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest
from ninja import Schema

from tokens.usage_api.errors import UsageError


def known_query(declared: type[Schema] | None = None) -> Callable:
    """Refuse a query parameter that `declared` (the operation's Query schema) lacks."""
    names = frozenset(declared.model_fields) if declared is not None else frozenset()

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def checked(request: HttpRequest, *args, **kwargs):
            unknown = sorted(set(request.GET) - names)
            if unknown:
                shown = ", ".join(f"“{name[:40]}”" for name in unknown[:3])
                raise UsageError(400, "invalid_request", f"Unknown query parameter {shown}.")
            return view(request, *args, **kwargs)

        return checked

    return decorate
