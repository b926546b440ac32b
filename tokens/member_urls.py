"""The member's own pages, at the root of the site (the Admin Panel is under /panel/)."""

from django.urls import path

from tokens import invitation_views, member_views

app_name = "member"

urlpatterns = [
    path("", member_views.home, name="home"),
    path("requests/new/", member_views.token_request_create, name="token_request_create"),
    path(
        "requests/<id:request_id>/cancel/",
        member_views.token_request_cancel,
        name="token_request_cancel",
    ),
    path("invitations/<str:token>/", invitation_views.invitation_accept, name="invitation"),
]
