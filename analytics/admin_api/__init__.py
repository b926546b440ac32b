"""The admin API's routes that read the analytics layer: the activity log and exports
(the rest is `tokens.admin_api`; `asksage_admin.admin_api` mounts both)."""
