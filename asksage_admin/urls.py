from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Enterprise Accounts — Sales Admin"
admin.site.site_title = "Sales Admin"
admin.site.index_title = "Provision and manage enterprise accounts"

# A database that is down answers 503 with Retry-After, wherever the request met it.
handler500 = "asksage_admin.lib.db_unavailable.server_error"

urlpatterns = [
    path("staff/", admin.site.urls),
    path("api/v1/", include("tokens.api_urls")),
    path("panel/", include("tokens.urls")),
    path("panel/", include("analytics.urls")),
    path("", include("accounts.urls")),
]
