"""The LOGGING dictionary: every line through one structlog formatter, with the request id.

The formatter reads the request id (and anything else bound with structlog's contextvars, see
asksage_admin.lib.request_id) at the moment a line is written, so Django's own loggers, the
apps' `logging.getLogger(__name__)` and the access log all carry it without passing it along.
JSON lines in production (one object a line, for a log shipper); aligned text in development.
Kept free of Django imports: settings.py builds LOGGING with it before Django is set up.
"""

import structlog

LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _drop_terminal_colours(logger, method_name: str, event_dict: dict) -> dict:
    """uvicorn passes a coloured copy of its messages as an extra; the plain one suffices."""
    event_dict.pop("color_message", None)
    return event_dict


def _pre_chain() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        _drop_terminal_colours,
    ]


def logging_config(*, level: str, log_format: str) -> dict:
    """Django's LOGGING for `level` and `log_format` (json or console), both already checked."""
    if log_format == "json":
        renderer = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=False)]
    formatter = {
        "()": structlog.stdlib.ProcessorFormatter,
        "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        "foreign_pre_chain": _pre_chain(),
    }
    handler = {"class": "logging.StreamHandler", "formatter": "structured"}
    server = {"handlers": ["console"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": formatter},
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own default handlers (console in DEBUG, mail_admins) give way to ours.
            "django": {"level": level},
            "django.server": {"level": level},
            # 4xx answers (an API over-limit 402, a 404 for another org's id) are expected
            # traffic, already in the access log; 5xx stay errors.
            "django.request": {"level": "ERROR"},
            # The server's own messages (worker starts, timeouts) in the same format. Its
            # access lines are left to gunicorn: the app writes its own (asksage.access).
            "uvicorn.error": server,
            "gunicorn.error": server,
        },
    }
