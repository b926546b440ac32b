"""Analytics pages of the Admin Panel."""

from django.http import HttpResponse
from django.shortcuts import render

from accounts.decorators import org_admin_required
from accounts.http import PanelRequest


@org_admin_required
def statistics(request: PanelRequest) -> HttpResponse:
    return render(request, "analytics/statistics.html", {"active": "statistics"})


@org_admin_required
def activity(request: PanelRequest) -> HttpResponse:
    return render(request, "analytics/activity.html", {"active": "activity"})
