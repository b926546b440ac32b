"""The organization's usage API keys: created (the secret shown once) and revoked."""

from django.http import Http404, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import org_admin_required
from accounts.http import PanelRequest
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.htmx import page_or_partial, respond
from asksage_admin.lib.http import client_ip
from tokens import selectors
from tokens.forms import ApiKeyForm
from tokens.models import ApiKey, ApiKeyScope
from tokens.services import api_keys as api_key_services
from tokens.views._common import refusal_text

PAGE = "tokens/api_keys.html"


def _context(request: PanelRequest, **extra) -> dict:
    return {
        "active": "api_keys",
        "keys": selectors.api_keys_for(request.org),
        "scope_choices": ApiKeyScope.choices,
        **extra,
    }


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # a new key's secret is on this page, once
    return response


@require_http_methods(["GET", "POST"])
@org_admin_required
def api_keys(request: PanelRequest) -> HttpResponse:
    """The organization's usage API keys; a created key's secret is shown in this answer only
    (so a key is never created behind a redirect: the page itself answers, 422 on refusal)."""
    if request.method == "GET":
        return _no_store(page_or_partial(request, PAGE, "api-keys", _context(request)))
    form = ApiKeyForm(request.POST)
    name = form.data.get("name", "")
    context, error, ok = {}, "", ""
    if not form.is_valid():
        error = refusal_text(form)
    else:
        try:
            key, secret = api_key_services.api_key_create(
                actor=request.user,
                org=request.org,
                name=form.cleaned_data["name"],
                scopes=form.chosen_scopes(),
                ip=client_ip(request),
            )
            context, ok = {"created": key, "secret": secret}, f"Created the key “{key.name}”."
        except DomainError as exc:
            error = refusal_text(exc)
    if error:
        context = {"errors": [error], "name": name[:100], "chosen": form.data.getlist("scopes")}
    response = respond(
        request,
        template=PAGE,
        fragment="api-keys",
        context=lambda: _context(request, **context),
        redirect_to=None,
        ok=ok,
        error=error,
    )
    return _no_store(response)


@require_POST
@org_admin_required
def api_key_revoke(request: PanelRequest, key_id: int) -> HttpResponse:
    error, text = "", ""
    try:
        key = api_key_services.api_key_revoke(
            actor=request.user, org=request.org, key_id=key_id, ip=client_ip(request)
        )
        text = f"Revoked “{key.name}” ({key.prefix}…): it is refused from now on."
    except ApiKey.DoesNotExist as exc:
        raise Http404("No such API key.") from exc
    except DomainError as exc:
        error = refusal_text(exc)
    response = respond(
        request,
        template=PAGE,
        fragment="api-keys",
        context=lambda: _context(request, notice=error or text, notice_ok=not error),
        redirect_to=reverse("tokens:api_keys"),
        ok=text,
        error=error,
    )
    return _no_store(response)
