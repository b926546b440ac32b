"""The one way a page answers: a fragment under htmx, the whole page or a redirect otherwise.

The 4xx policy lives once, in templates/base.html (`htmx-config` → `responseHandling`): 422
and 400 answers are swapped like successes, so a refusal always answers 422 with the fragment
that says why; nothing else (no script, no view) decides whether an error swaps.
"""

from collections.abc import Callable, Iterable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from asksage_admin.lib.inputs import header_text

REFUSED = 422  # a rule refused what was posted; the answer says why


def announce(response: HttpResponse, text: str) -> HttpResponse:
    """Say `text` to screen readers (the `announce` event, an HX-Trigger header). Bounded:
    the text can quote what was typed (emails, names), and a header line over a proxy's
    limit (8 KiB in nginx) loses the whole answer."""
    if not text:
        return response
    return trigger_client_event(response, "announce", {"text": header_text(text)})


def is_partial(request: HttpRequest) -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def _render(
    request: HttpRequest, template: str, fragments: Iterable[str], context: dict, status: int
) -> HttpResponse:
    html = "".join(
        render_to_string(f"{template}#{name}" if name else template, context, request=request)
        for name in fragments
    )
    return HttpResponse(html, status=status)


def page_or_partial(
    request: HttpRequest,
    template: str,
    fragment: str | tuple[str, ...],
    context: dict,
    *,
    status: int = 200,
) -> HttpResponse:
    """A GET: the fragment(s) under htmx, the whole page otherwise."""
    fragments = (fragment,) if isinstance(fragment, str) else fragment
    if is_partial(request):
        return _render(request, template, fragments, context, status)
    return _render(request, template, ("",), context, status)


def respond(
    request: HttpRequest,
    *,
    template: str,
    fragment: str | tuple[str, ...],
    context: Callable[[], dict],
    redirect_to: str | None,
    ok: str = "",
    error: str = "",
    page_on_error: bool = False,
    navigate: bool = False,
    fragment_only: bool = False,
) -> HttpResponse:
    """Answer a POST: the fragment(s) under htmx — 422 when `error` says a rule refused —
    announced to screen readers; without htmx a Django message and a redirect (PRG).

    `context` is called only when something is rendered (a redirect needs none).
    `redirect_to=None`: no redirect without htmx, the whole page is rendered (the answer
    carries what a redirect would lose: a new key's secret). `page_on_error`: a refusal
    without htmx renders the whole page (422) so typed values stay beside their errors.
    `navigate`: the answer is another page, under htmx too (HX-Redirect after a message).
    `fragment_only`: an endpoint only a page's script calls (the grid's cell editor)
    answers its fragment to anyone, so a bare POST still gets the 422 with words.
    """
    status = REFUSED if error else 200
    text = error or ok
    if navigate and redirect_to is not None:
        _message(request, ok=ok, error=error)
        if is_partial(request):
            return HttpResponseClientRedirect(redirect_to)
        return redirect(redirect_to)
    if fragment_only or is_partial(request):
        fragments = (fragment,) if isinstance(fragment, str) else fragment
        return announce(_render(request, template, fragments, context(), status), text)
    if redirect_to is None or (error and page_on_error):
        return _render(request, template, ("",), context(), status)
    _message(request, ok=ok, error=error)
    return redirect(redirect_to)


def _message(request: HttpRequest, *, ok: str, error: str) -> None:
    if error:
        messages.error(request, error)
    elif ok:
        messages.success(request, ok)
