"""Production settings: `check --deploy` is clean, and a missing SECRET_KEY stops the start."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


# Set by the test run itself (tests/conftest.py sets DJANGO_ALLOW_ASYNC_UNSAFE for Playwright),
# never by a deployment.
NOT_INHERITED = {
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_with_production_settings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="example.gov",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_settings_refuse_to_load_without_a_secret_key_when_debug_is_off():
    result = manage("check", DEBUG="0", ALLOWED_HOSTS="example.gov")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_debug_defaults_to_a_development_key_so_make_run_just_works():
    result = manage("check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_postgresql_connections_turn_jit_off_and_keep_the_urls_own_options():
    printed = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'])"
    result = manage(
        "shell",
        "-c",
        printed,
        DATABASE_URL="postgres://app@db.internal:5432/admin?options=-c%20statement_timeout%3D5000",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "'options': '-c statement_timeout=5000 -c jit=off'" in result.stdout
