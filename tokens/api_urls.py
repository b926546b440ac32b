"""The usage API, mounted at /api/v1/ (see `tokens.api`)."""

from django.urls import path, re_path

from tokens import api

app_name = "api"

urlpatterns = [
    path("usage", api.usage_create, name="usage"),
    path("users/<str:email>/balance", api.user_balance, name="balance"),
    path("openapi.json", api.openapi, name="openapi"),
    re_path(r"^(?P<rest>.*)$", api.not_found),
]
