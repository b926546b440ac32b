"""The Models page: which of the platform's models the organization's members may use."""

from django.http import HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_admin_required
from accounts.http import PanelRequest
from asksage_admin.lib.errors import DomainError
from asksage_admin.lib.htmx import page_or_partial, respond
from asksage_admin.lib.http import client_ip
from tokens.forms import ModelAccessForm
from tokens.model_selectors import model_rows
from tokens.services import model_access as model_services
from tokens.views._common import refusal_text

PAGE = "tokens/models.html"


def _context(request: PanelRequest, **extra) -> dict:
    request.org.refresh_from_db(fields=["models_restricted"])
    return {
        "active": "models",
        "rows": model_rows(request.org),
        "restricted": request.org.models_restricted,
        "modes": model_services.MODES,
        "role_labels": model_services.ROLE_LABELS,
        **extra,
    }


@require_GET
@org_admin_required
def models_page(request: PanelRequest) -> HttpResponse:
    return page_or_partial(request, PAGE, "models", _context(request))


@require_POST
@org_admin_required
def model_access(request: PanelRequest) -> HttpResponse:
    """Set who may use one model; a refusal answers 422 with the row's form and its words."""
    form = ModelAccessForm(request.POST)
    error, ok = "", ""
    model = str(form.data.get("model", ""))[:100]
    if not form.is_valid():
        error = refusal_text(form)
    else:
        data = form.cleaned_data
        try:
            words = model_services.model_access_set(
                actor=request.user,
                org=request.org,
                model_name=data["model"],
                mode=data["mode"],
                roles=data["roles"],
                emails=data["emails"],
                ip=client_ip(request),
            )
            ok = f"{model} may now be used by: {words}."
        except DomainError as exc:
            error = refusal_text(exc)
    return respond(
        request,
        template=PAGE,
        fragment="models",
        context=lambda: _context(
            request, notice=error or ok, notice_ok=not error, focus_model=model
        ),
        redirect_to=reverse("tokens:models"),
        ok=ok,
        error=error,
    )


@require_POST
@org_admin_required
def models_unrestrict(request: PanelRequest) -> HttpResponse:
    error, ok = "", ""
    try:
        model_services.model_access_unrestrict(
            actor=request.user, org=request.org, ip=client_ip(request)
        )
        ok = "Every model is allowed again, also models added to the catalogue later."
    except DomainError as exc:
        error = refusal_text(exc)
    return respond(
        request,
        template=PAGE,
        fragment="models",
        context=lambda: _context(request, notice=error or ok, notice_ok=not error),
        redirect_to=reverse("tokens:models"),
        ok=ok,
        error=error,
    )
