"""Typed request for panel views: the decorators in `accounts.decorators` fill these in."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from accounts.models import Membership, Organization, User


class AuthedRequest(HttpRequest):
    user: User
    htmx: HtmxDetails


class PanelRequest(AuthedRequest):
    org: Organization
    membership: Membership
