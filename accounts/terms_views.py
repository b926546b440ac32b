"""The terms page for someone who never accepted them (created by SCIM or by sales): one
checkbox, then on to where they were going (`middleware.TermsRequiredMiddleware` sends them)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.forms import TermsForm
from accounts.http import AuthedRequest
from asksage_admin.lib.http import client_ip


@login_required
@require_http_methods(["GET", "POST"])
def terms(request: AuthedRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    if request.user.terms_accepted_at is not None:
        return redirect(next_url or "member:home")
    form = TermsForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        services.user_accept_terms(user=request.user, ip=client_ip(request))
        return redirect(next_url or "member:home")
    status = 422 if form.is_bound else 200
    return render(
        request, "registration/terms.html", {"form": form, "next": next_url}, status=status
    )
