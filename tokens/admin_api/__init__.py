"""The admin API (`/api/v1/admin/`): what an org admin does in the panel, for scripts.

django-ninja builds the OpenAPI document from these routers' type hints and schemas; the API
itself is assembled in `asksage_admin.admin_api` (its activity and exports routes read the
analytics layer, `analytics.admin_api`). Views stay thin: each calls the service or selector
the panel calls.

    errors      the `{"error", "detail"}` answers (the usage API's shape) for every refusal
    auth        organization API keys with a scope, and the per-key rate limit
    schemas     request and answer bodies
    cursors     opaque cursors, and keyset_page(): the one pager of every list
    queries     a query parameter the operation does not declare is a 400, not ignored
    users       users with limits and usage; limits set in batches, and undone
    requests    token requests: list, approve, deny
"""
