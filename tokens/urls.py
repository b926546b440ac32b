from django.urls import path
from django.views.generic import RedirectView

from tokens import views

app_name = "tokens"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="tokens:users"), name="panel"),
    path("users/", views.user_table, name="users"),
    path("users/bulk/", views.bulk_edit, name="bulk"),
    path("users/<id:user_id>/cells/<str:column>/", views.max_cell, name="cell"),
    path("users/<id:user_id>/cells/<str:column>/edit/", views.max_cell_edit, name="cell_edit"),
    path("users/<id:user_id>/flags/<str:flag>/", views.user_flag, name="user_flag"),
    path("users/batches/<uuid:batch_id>/undo/", views.batch_undo, name="batch_undo"),
    path("users/batches/<str:column>/save/", views.batch_save, name="batch_save"),
    path("users/batches/<str:column>/discard/", views.batch_discard, name="batch_discard"),
    path("distribution/", views.distribution, name="distribution"),
    path("distribution/preset/", views.distribution_preset, name="distribution_preset"),
    path("distribution/action/", views.distribution_action, name="distribution_action"),
    path("distribution/reclaim/", views.distribution_reclaim, name="distribution_reclaim"),
    path("distribution/override/", views.distribution_override, name="distribution_override"),
    path(
        "distribution/override/<id:user_id>/remove/",
        views.distribution_override_remove,
        name="distribution_override_remove",
    ),
    path("distribution/options/", views.distribution_options, name="distribution_options"),
    path(
        "distribution/purchase-request/",
        views.distribution_purchase_request,
        name="distribution_purchase_request",
    ),
    path("requests/", views.requests, name="requests"),
    path("requests/<id:request_id>/approve/", views.request_approve, name="request_approve"),
    path("requests/<id:request_id>/deny/", views.request_deny, name="request_deny"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<id:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
]
