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
        SITE_URL="https://example.gov",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_an_https_site_url_for_the_links_in_emails():
    for site_url in ("", "http://example.gov"):
        result = manage(
            "check",
            "--deploy",
            DEBUG="0",
            SECRET_KEY=secrets.token_urlsafe(64),
            ALLOWED_HOSTS="example.gov",
            SITE_URL=site_url,
        )
        assert result.returncode != 0, site_url
        assert "ops.E001" in result.stderr and "SITE_URL" in result.stderr


def test_settings_refuse_to_load_without_a_secret_key_when_debug_is_off():
    result = manage("check", DEBUG="0", ALLOWED_HOSTS="example.gov")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_without_a_debug_variable_the_app_fails_closed():
    """No DEBUG variable means production: no public key, no debug pages, no demo switch."""
    result = manage("check", DEMO_SKIP_MFA="1")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_without_a_debug_variable_debug_and_the_demo_switch_are_off():
    script = "from django.conf import settings; print(settings.DEBUG, settings.DEMO_SKIP_MFA)"
    result = manage(
        "shell",
        "-c",
        script,
        DEMO_SKIP_MFA="1",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="example.gov",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False False"


def test_the_public_development_key_is_refused_when_debug_is_off():
    result = manage(
        "check", SECRET_KEY="dev-only-insecure-secret-key-change-me", ALLOWED_HOSTS="example.gov"
    )
    assert result.returncode != 0
    assert "public development key" in result.stderr


def test_debug_1_gives_the_development_settings_so_make_run_just_works():
    result = manage("check", DEBUG="1")
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_run_chooses_the_development_settings_itself():
    makefile = (BASE_DIR / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    commands = [line.strip() for line in run.splitlines()[1:] if "manage.py" in line]
    assert commands, run
    assert all(command.startswith("$(DEV)") for command in commands), commands
    assert "DEV := DEBUG=1" in makefile
