"""gunicorn's own settings, so that its lines (the master's too) are in the app's log format:

    gunicorn -c python:asksage_admin.ops.gunicorn asksage_admin.asgi ...

The master process never loads Django; this reads the same LOG_LEVEL and LOG_FORMAT the
settings do (a malformed one is left to the settings to refuse, in the workers).
"""

import os

from asksage_admin.ops.logging import LOG_FORMATS, LOG_LEVELS, logging_config

_debug = os.environ.get("DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
_level = os.environ.get("LOG_LEVEL", "INFO").strip()
_format = os.environ.get("LOG_FORMAT", "console" if _debug else "json").strip()

logconfig_dict = logging_config(
    level=_level if _level in LOG_LEVELS else "INFO",
    log_format=_format if _format in LOG_FORMATS else "json",
)
