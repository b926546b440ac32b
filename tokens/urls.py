from django.urls import path
from django.views.generic import RedirectView

from tokens.views import api_keys, distribution, imports, members, models, requests, users

app_name = "tokens"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="tokens:users"), name="panel"),
    path("users/", users.user_table, name="users"),
    path("users/bulk/", users.bulk_edit, name="bulk"),
    path("users/import/", imports.allocation_import, name="import"),
    path(
        "users/import/template.csv",
        imports.allocation_import_template,
        name="import_template",
    ),
    path("users/<id:user_id>/cells/<str:column>/", users.max_cell, name="cell"),
    path("users/<id:user_id>/cells/<str:column>/edit/", users.max_cell_edit, name="cell_edit"),
    path("users/<id:user_id>/flags/<str:flag>/", users.user_flag, name="user_flag"),
    path("users/<id:user_id>/role/", members.member_role, name="member_role"),
    path("users/<id:user_id>/remove/", members.member_remove, name="member_remove"),
    path("users/invite/", members.invite, name="invite"),
    path(
        "users/invitations/<id:invitation_id>/resend/",
        members.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "users/invitations/<id:invitation_id>/revoke/",
        members.invitation_revoke,
        name="invitation_revoke",
    ),
    path("users/batches/<uuid:batch_id>/undo/", users.batch_undo, name="batch_undo"),
    path("users/batches/<str:column>/save/", users.batch_save, name="batch_save"),
    path("users/batches/<str:column>/discard/", users.batch_discard, name="batch_discard"),
    path("distribution/", distribution.distribution, name="distribution"),
    path("distribution/preset/", distribution.distribution_preset, name="distribution_preset"),
    path("distribution/action/", distribution.distribution_action, name="distribution_action"),
    path("distribution/reclaim/", distribution.distribution_reclaim, name="distribution_reclaim"),
    path(
        "distribution/override/", distribution.distribution_override, name="distribution_override"
    ),
    path(
        "distribution/override/<id:user_id>/remove/",
        distribution.distribution_override_remove,
        name="distribution_override_remove",
    ),
    path("distribution/options/", distribution.distribution_options, name="distribution_options"),
    path(
        "distribution/purchase-request/",
        distribution.distribution_purchase_request,
        name="distribution_purchase_request",
    ),
    path("requests/", requests.requests, name="requests"),
    path("requests/<id:request_id>/approve/", requests.request_approve, name="request_approve"),
    path("requests/<id:request_id>/deny/", requests.request_deny, name="request_deny"),
    path("api-keys/", api_keys.api_keys, name="api_keys"),
    path("api-keys/<id:key_id>/revoke/", api_keys.api_key_revoke, name="api_key_revoke"),
    path("models/", models.models_page, name="models"),
    path("models/access/", models.model_access, name="model_access"),
    path("models/unrestrict/", models.models_unrestrict, name="models_unrestrict"),
]
