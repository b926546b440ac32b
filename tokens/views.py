"""Management pages of the Admin Panel."""

from django.http import HttpResponse
from django.shortcuts import render

from accounts.decorators import org_admin_required
from accounts.http import PanelRequest


@org_admin_required
def user_table(request: PanelRequest) -> HttpResponse:
    return render(request, "tokens/users.html", {"active": "users"})


@org_admin_required
def distribution(request: PanelRequest) -> HttpResponse:
    return render(request, "tokens/distribution.html", {"active": "distribution"})


@org_admin_required
def requests(request: PanelRequest) -> HttpResponse:
    return render(request, "tokens/requests.html", {"active": "requests"})
