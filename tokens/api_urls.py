"""The usage API, mounted at /api/v1/ (see `tokens.api`)."""

from django.urls import path, re_path

from tokens import api

app_name = "api"

urlpatterns = [
    path("usage", api.usage_create, name="usage"),
    path("users/<str:email>/balance", api.user_balance, name="balance"),
    path("openapi.json", api.openapi, name="openapi"),
    # [\s\S], not ".": a path with a newline in it is still the API's (a JSON 404).
    re_path(r"^(?P<rest>[\s\S]*)$", api.not_found),
]
