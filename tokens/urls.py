from django.urls import path
from django.views.generic import RedirectView

from tokens import views

app_name = "tokens"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="tokens:users"), name="panel"),
    path("users/", views.user_table, name="users"),
    path("distribution/", views.distribution, name="distribution"),
    path("requests/", views.requests, name="requests"),
]
