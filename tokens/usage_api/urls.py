"""The usage API, mounted at /api/v1/ (see `tokens.usage_api.views`)."""

from django.urls import path, re_path

from tokens.usage_api import views

app_name = "api"

urlpatterns = [
    path("usage", views.usage_create, name="usage"),
    path("users/<str:email>/balance", views.user_balance, name="balance"),
    path("openapi.json", views.openapi, name="openapi"),
    # [\s\S], not ".": a path with a newline in it is still the API's (a JSON 404).
    re_path(r"^(?P<rest>[\s\S]*)$", views.not_found),
]
