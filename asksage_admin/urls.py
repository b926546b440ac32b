from django.contrib import admin
from django.urls import include, path, register_converter
from django.urls.converters import get_converters

from asksage_admin.admin_api import api as admin_api
from asksage_admin.lib.inputs import IdConverter

# `<id:…>`: a database id in a path (1 … 2**63 − 1). Registered before the apps' URLconfs
# below are imported by include().
if "id" not in get_converters():  # a reloaded URLconf must not register it twice
    register_converter(IdConverter, "id")

admin.site.site_header = "Enterprise Accounts — Sales Admin"
admin.site.site_title = "Sales Admin"
admin.site.index_title = "Provision and manage enterprise accounts"

# A database that is down answers 503 with Retry-After, wherever the request met it.
handler500 = "asksage_admin.lib.db_unavailable.server_error"

urlpatterns = [
    path("", include("asksage_admin.ops.urls")),
    path("staff/", admin.site.urls),
    path("api/v1/admin/", admin_api.urls),  # before the usage API's JSON 404 for the rest
    path("api/v1/", include("tokens.usage_api.urls")),
    path("scim/v2/", include("tokens.scim.urls")),
    path(
        "sso/", include("tokens.sso.urls")
    ),  # single sign-on (OpenID Connect)  # SCIM provisioning (an IdP's key)
    path("panel/", include("tokens.urls")),
    path("panel/", include("analytics.urls")),
    path("", include("tokens.member_urls")),
    # Passkey ceremonies in their own namespace, `otp_webauthn`, which the library's script
    # configuration reverses; before accounts' logout, so the access sweep visits them logged in.
    path("accounts/mfa/webauthn/", include("accounts.webauthn_urls")),
    path("", include("accounts.urls")),
]
