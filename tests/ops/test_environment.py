"""Twelve-factor settings: each variable, read in a fresh process, lands in the right setting,
and a wrong value stops the start with its name in words (asksage_admin/settings.py)."""

import ast
import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_deploy_settings import manage

BASE_DIR = Path(__file__).resolve().parent.parent.parent
PRODUCTION = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "x.gov"}
# Read by a library rather than settings.py, and listed in the table all the same.
READ_ELSEWHERE = {"DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "FORWARDED_ALLOW_IPS"}


def settings_of(*names: str, **env: str) -> dict:
    script = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    result = manage("shell", "-c", script, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def refused(**env: str) -> str:
    result = manage("check", **env)
    assert result.returncode != 0, result.stdout
    return result.stderr.strip().splitlines()[-1]


def test_email_url_configures_smtp_with_its_quoted_password():
    got = settings_of(
        "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD",
        "EMAIL_USE_TLS", "EMAIL_USE_SSL", "EMAIL_TIMEOUT",
        DEBUG="1",
        EMAIL_URL="smtp://mailer:p%40ss@smtp.example.gov:587/?tls=True",
    )  # fmt: skip
    assert got == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.gov",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_HOST_PASSWORD": "p@ss",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 10.0,
    }


def test_email_host_variables_configure_smtp_instead_of_localhost_25():
    got = settings_of(
        "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD",
        "EMAIL_USE_TLS", "EMAIL_TIMEOUT",
        DEBUG="1", EMAIL_HOST="relay.example.gov", EMAIL_PORT="587",
        EMAIL_HOST_USER="console", EMAIL_HOST_PASSWORD="s3cret", EMAIL_TIMEOUT="5",
    )  # fmt: skip
    assert got == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "relay.example.gov",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "console",
        "EMAIL_HOST_PASSWORD": "s3cret",
        "EMAIL_USE_TLS": True,  # 587 is the submission port: STARTTLS unless told otherwise
        "EMAIL_TIMEOUT": 5.0,
    }


def test_without_mail_settings_mail_goes_to_the_console():
    got = settings_of("EMAIL_BACKEND", DEBUG="1")
    assert got["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_tls_and_ssl_together_are_refused():
    message = refused(
        DEBUG="1", EMAIL_HOST="relay.example.gov", EMAIL_USE_TLS="1", EMAIL_USE_SSL="1"
    )
    assert "EMAIL_USE_TLS" in message and "EMAIL_USE_SSL" in message


def test_a_malformed_email_url_is_refused_without_echoing_the_password():
    message = refused(DEBUG="1", EMAIL_URL="smtp://u:topsecret@mail.example.gov:notaport")
    assert "EMAIL_URL" in message and "topsecret" not in message


def test_site_url_defaults_to_the_development_server_and_loses_a_trailing_slash():
    assert settings_of("SITE_URL", DEBUG="1")["SITE_URL"] == "http://127.0.0.1:8000"
    got = settings_of("SITE_URL", DEBUG="1", SITE_URL="https://admin.example.gov/")
    assert got["SITE_URL"] == "https://admin.example.gov"


@pytest.mark.parametrize("value", ["admin.example.gov", "ftp://x.gov", "https://", "https://a b"])
def test_a_site_url_that_is_not_an_absolute_http_url_is_refused(value):
    assert "SITE_URL must be an absolute http(s) URL" in refused(DEBUG="1", SITE_URL=value)


def test_logs_are_json_in_production_and_text_in_development_at_info():
    assert settings_of("LOG_FORMAT", "LOG_LEVEL", **PRODUCTION) == {
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    got = settings_of("LOG_FORMAT", "LOG_LEVEL", DEBUG="1", LOG_LEVEL="WARNING")
    assert got == {"LOG_FORMAT": "console", "LOG_LEVEL": "WARNING"}


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of json, console"),
        ("TRUSTED_PROXY_COUNT", "-1", "TRUSTED_PROXY_COUNT must be 0 or more"),
        ("TRUSTED_PROXY_COUNT", "one", "TRUSTED_PROXY_COUNT must be a whole number"),
        ("USAGE_API_POOL_TIMEOUT", "soon", "USAGE_API_POOL_TIMEOUT must be a number"),
        ("EMAIL_TIMEOUT", "nan", "EMAIL_TIMEOUT must be 0.1 or more"),
        ("USAGE_API_POOL_SIZE", "0", "USAGE_API_POOL_SIZE must be 1 or more"),
        ("METRICS_TOKEN", "short", "METRICS_TOKEN must be at least 24 characters"),
        ("TRUSTED_PROXY_ADDRESSES", "10.0.0.0/33", "TRUSTED_PROXY_ADDRESSES: '10.0.0.0/33'"),
    ],
)
def test_a_malformed_value_stops_the_start_naming_the_variable(name, value, words):
    assert words in refused(DEBUG="1", **{name: value})


def test_pool_sizes_and_proxy_count_come_from_the_environment():
    got = settings_of(
        "DATABASES", "TRUSTED_PROXY_COUNT", "USAGE_API_POOL_SIZE",
        DEBUG="1", DATABASE_URL="postgres://u@db.example.gov:5432/x", DATABASE_POOL="1",
        DATABASE_POOL_SIZE="8", DATABASE_POOL_MIN_SIZE="2", DATABASE_POOL_TIMEOUT="1.5",
        TRUSTED_PROXY_COUNT="2", USAGE_API_POOL_SIZE="10",
    )  # fmt: skip
    pool = got["DATABASES"]["default"]["OPTIONS"]["pool"]
    assert (pool["min_size"], pool["max_size"], pool["timeout"]) == (2, 8, 1.5)
    assert (got["TRUSTED_PROXY_COUNT"], got["USAGE_API_POOL_SIZE"]) == (2, 10)


def test_behind_a_transaction_pooler_nothing_relies_on_a_session():
    """DATABASE_POOLER=transaction (PgBouncer): no startup options (PgBouncer refuses
    them), no named cursors, and no pool of Django's own even where DATABASE_POOL asks."""
    url = "postgres://u@pgbouncer.example.gov:6432/x"
    pooled = settings_of(
        "DATABASES", "DATABASE_POOLER",
        DEBUG="1", DATABASE_URL=url, DATABASE_POOL="1", DATABASE_POOLER="transaction",
    )  # fmt: skip
    default = pooled["DATABASES"]["default"]
    assert pooled["DATABASE_POOLER"] == "transaction"
    assert "options" not in default["OPTIONS"] and "pool" not in default["OPTIONS"]
    assert default["DISABLE_SERVER_SIDE_CURSORS"] is True
    direct = settings_of("DATABASES", DEBUG="1", DATABASE_URL=url)["DATABASES"]["default"]
    assert direct["OPTIONS"]["options"] == "-c jit=off"
    assert not direct.get("DISABLE_SERVER_SIDE_CURSORS")
    words = "DATABASE_POOLER must be one of none, transaction"
    assert words in refused(DEBUG="1", DATABASE_POOLER="session")


def test_gunicorn_logs_in_the_apps_format_too():
    """The master process never loads Django: asksage_admin.ops.gunicorn gives it LOGGING."""
    script = (
        "import json; from asksage_admin.ops import gunicorn; "
        "c = gunicorn.logconfig_dict; "
        "print(json.dumps([c['root']['level'], repr(c['formatters']['structured']['processors'])]))"
    )

    def run(**env: str) -> list:
        result = manage_python(script, **env)
        return json.loads(result.stdout.strip().splitlines()[-1])

    level, processors = run(LOG_LEVEL="WARNING")
    assert level == "WARNING" and "JSONRenderer" in processors
    assert "ConsoleRenderer" in run(DEBUG="1")[1]


def manage_python(script: str, **env: str) -> subprocess.CompletedProcess:
    """`script` in a fresh interpreter with only `env` (and PATH) in its environment."""
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    )


def _names_read_by_settings() -> set[str]:
    """Every variable name settings.py reads: os.environ.get/[...] and the env_* helpers."""
    tree = ast.parse((BASE_DIR / "asksage_admin" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        first = None
        if isinstance(node, ast.Call) and node.args:
            func = ast.unparse(node.func)
            if func == "os.environ.get" or func.startswith("env_"):
                first = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            first = node.slice
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def _names_in_the_table() -> set[str]:
    text = (BASE_DIR / "docs" / "environment.md").read_text()
    table = text.split("<!-- env-table -->")[1]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}


def test_every_variable_the_settings_read_is_in_the_environment_table():
    read = _names_read_by_settings()
    assert {"SECRET_KEY", "EMAIL_URL", "SITE_URL", "METRICS_TOKEN"} <= read  # the walker works
    missing = sorted((read | READ_ELSEWHERE) - _names_in_the_table())
    assert not missing, f"add to docs/environment.md: {missing}"


def test_the_environment_table_lists_no_variable_that_nothing_reads():
    stale = sorted(_names_in_the_table() - _names_read_by_settings() - READ_ELSEWHERE)
    assert not stale, f"remove from docs/environment.md (or read them): {stale}"
