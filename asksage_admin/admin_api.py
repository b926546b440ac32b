"""The admin API (`/api/v1/admin/`), assembled: django-ninja generates its OpenAPI document
(`/api/v1/admin/openapi.json`) and serves Swagger UI from its own static files
(`/api/v1/admin/docs`, no CDN: "ninja" is in INSTALLED_APPS).

Mounted here because its routes span two layers: users, limits and requests
(`tokens.admin_api`), the activity log and exports (`analytics.admin_api`).
"""

from ninja import NinjaAPI

from analytics.admin_api import activity, exports
from tokens.admin_api import errors, requests, users
from tokens.admin_api.auth import KeyRateThrottle

api = NinjaAPI(
    title="Enterprise Admin admin API",
    version="1",
    description=(
        "What an org admin does in the Admin Panel, for scripts. Authenticate with an "
        "organization API key (`Authorization: Bearer <key>`) created on the API Keys page "
        "with the `admin:read` scope (reads, exports) or `admin:write` (limits, decisions). "
        'Every refusal is `{"error": code, "detail": sentence}`; 429 `rate_limited` past '
        "the per-key rate (see Retry-After)."
    ),
    urls_namespace="admin_api",
    throttle=[KeyRateThrottle()],
    docs_url="/docs",
    openapi_url="/openapi.json",
)
errors.install(api)
api.add_router("/", users.router)
api.add_router("/", requests.router)
api.add_router("/", activity.router)
api.add_router("/", exports.router)
