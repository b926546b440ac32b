"""ASGI entry point: Django, with the usage API's fast path in front of it.

    gunicorn asksage_admin.asgi -k asgi --workers 2

serves every page through Django and `POST /api/v1/usage` through
`tokens.usage_api.fastpath` when the database is PostgreSQL (see the README's deployment notes).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asksage_admin.settings")
# Django's own connections from a pool (PostgreSQL): see DATABASE_POOL in the settings.
os.environ.setdefault("DATABASE_POOL", "1")
django_application = get_asgi_application()

from asksage_admin.ops.asgi import RequestContextASGI  # noqa: E402
from asksage_admin.ops.body_limit import BodyLimitASGI  # noqa: E402
from tokens.usage_api.fastpath import UsageFastPath  # noqa: E402 - needs the apps loaded above

# Outermost: the request id, access line and metrics for the fast path's requests too.
# Then bodies bounded before Django reads them (asksage_admin/ops/body_limit.py).
application = RequestContextASGI(BodyLimitASGI(UsageFastPath(django_application)))
