"""SCIM 2.0 under /scim/v2/ (the tenant URL an IdP is given); the organization is the key's."""

from django.urls import path

from tokens.scim import groups, meta, users

app_name = "scim"

urlpatterns = [
    path("ServiceProviderConfig", meta.service_provider_config, name="config"),
    path("ResourceTypes", meta.resource_types, name="resource_types"),
    path("Schemas", meta.schemas, name="schemas"),
    path("Schemas/<str:pk>", meta.schema, name="schema"),
    path("Users", users.users, name="users"),
    path("Users/<str:pk>", users.user, name="user"),
    path("Groups", groups.groups, name="groups"),
    path("Groups/<str:pk>", groups.group, name="group"),
]
