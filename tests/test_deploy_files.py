"""The deployment files (Dockerfile, compose.yaml, deploy/) stay honest without Docker: they
set only documented variables, run the README's commands against modules and management
commands that exist, and keep the hardening they promise (non-root, a health check, no
committed secrets). Docker is not needed here; what a daemon would catch first is checked
by running the same command lines (gunicorn --check-config, the commands' own parsers)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parent.parent
DOCKERFILE = BASE_DIR / "Dockerfile"
COMPOSE = BASE_DIR / "compose.yaml"
ENV_EXAMPLE = BASE_DIR / ".env.example"
ENTRYPOINT = BASE_DIR / "deploy" / "docker" / "entrypoint.sh"
SYSTEMD = BASE_DIR / "deploy" / "systemd"
SYSTEMD_ENV_EXAMPLE = SYSTEMD / "asksage.env.example"
APP_SERVICES = ("migrate", "web", "worker", "scheduler")
LONG_RUNNING_UNITS = ("asksage-web.service", "asksage-worker@.service", "asksage-scheduler.service")
VENV_BIN = "/opt/asksage/.venv/bin/"

# Not the app's: the PostgreSQL password compose builds DATABASE_URL from (and gives the db
# container), and Python's and pip's own switches in the image.
NOT_THE_APPS = {
    "POSTGRES_PASSWORD",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
}
# The README's production command passes FORWARDED_ALLOW_IPS explicitly; the deployment
# files leave it to gunicorn, which reads the same variable (docs/environment.md).
README_ONLY_ARGS = {"--forwarded-allow-ips"}
# gunicorn 25+ makes a control socket in $HOME, which the container and the units keep
# read-only (each start would log an error); nothing uses gunicornc.
DEPLOY_ONLY_ARGS = ["--no-control-socket"]


def documented_variables() -> set[str]:
    text = (BASE_DIR / "docs" / "environment.md").read_text()
    table = text.split("<!-- env-table -->")[1]
    names = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    return names


def env_file_variables(path: Path) -> dict[str, str]:
    """NAME=value lines, commented-out ones too (they are suggestions to uncomment)."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match[1]] = match[2]
    return found


def active_env_file_variables(path: Path) -> dict[str, str]:
    return {
        name: value
        for name, value in env_file_variables(path).items()
        if re.search(rf"^{name}=", path.read_text(), re.MULTILINE)
    }


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def unit(name: str) -> dict[str, list[str]]:
    """A unit file's settings, `Section.Key` → values (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (SYSTEMD / name).read_text())
    settings: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key}", []).append(value)
    return settings


def unit_names() -> list[str]:
    return sorted(path.name for path in SYSTEMD.glob("*.service"))


def exec_starts() -> dict[str, list[list[str]]]:
    return {
        name: [shlex.split(v) for v in unit(name)["Service.ExecStart"]] for name in unit_names()
    }


def entrypoint_commands() -> dict[str, list[str]]:
    """Each role's `exec` line in the image's entrypoint, as argv (without "$@")."""
    text = re.sub(r"\\\n\s*", " ", ENTRYPOINT.read_text())
    commands = {}
    for role, body in re.findall(r"^(\w+)\)\n(.*?);;", text, re.MULTILINE | re.DOTALL):
        lines = [line.strip() for line in body.splitlines() if line.strip().startswith("exec ")]
        commands[role] = [arg for arg in shlex.split(lines[-1])[1:] if arg != "$@"]
    return commands


def readme_gunicorn_command() -> list[str]:
    text = (BASE_DIR / "README.md").read_text()
    line = re.search(r"\.venv/bin/gunicorn .*?(?<!\\)\n", text, re.DOTALL)[0]
    argv = shlex.split(line.replace("\\\n", " "))
    argv[0] = "gunicorn"
    for flag in README_ONLY_ARGS:
        index = argv.index(flag)
        del argv[index : index + 2]
    return argv


def manage_py_calls() -> list[list[str]]:
    """Every `manage.py <command> ...` the deployment files run, as argv after manage.py."""
    argvs = [argv for argvs in exec_starts().values() for argv in argvs]
    argvs += [["python", *argv] for argv in entrypoint_commands().values()]
    text = ENTRYPOINT.read_text()
    argvs += [shlex.split(line) for line in re.findall(r"^\s*(python manage\.py .*)$", text, re.M)]
    calls = []
    for argv in argvs:
        if "manage.py" in argv:
            rest = [arg for arg in argv[argv.index("manage.py") + 1 :] if arg != "$@"]
            if rest:  # the `manage` role passes its arguments through
                calls.append(rest)
    return calls


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = [
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [
        (line.split(" ", 1)[0], line.split(" ", 1)[1]) for line in text.splitlines() if line.strip()
    ]


def runtime_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    start = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[start:]


# -- variables ----------------------------------------------------------------------------


def test_every_variable_the_deployment_files_set_is_documented():
    documented = documented_variables() | NOT_THE_APPS
    services = compose()["services"]
    set_by = {
        ".env.example": set(env_file_variables(ENV_EXAMPLE)),
        "asksage.env.example": set(env_file_variables(SYSTEMD_ENV_EXAMPLE)),
        "compose.yaml": {
            name for service in APP_SERVICES for name in services[service].get("environment", {})
        },
        "compose.yaml interpolation": set(re.findall(r"\$\{(\w+)", COMPOSE.read_text())),
        "Dockerfile ENV": {
            match
            for name, args in dockerfile_instructions()
            if name == "ENV"
            for match in re.findall(r"(\w+)=", args)
        },
        "systemd Environment=": {
            value.split("=")[0]
            for name in unit_names()
            for value in unit(name).get("Service.Environment", [])
        },
    }
    for source, names in set_by.items():
        assert names, source
        assert names <= documented, f"{source} sets undocumented {sorted(names - documented)}"


def test_compose_interpolates_only_what_env_example_offers():
    interpolated = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    assert interpolated <= set(env_file_variables(ENV_EXAMPLE))


def test_the_example_environments_commit_no_secret_and_fail_closed():
    compose_env = active_env_file_variables(ENV_EXAMPLE)
    systemd_env = active_env_file_variables(SYSTEMD_ENV_EXAMPLE)
    for required in ("SECRET_KEY", "ALLOWED_HOSTS", "SITE_URL"):
        assert compose_env[required] == "", required
        assert systemd_env[required] == "", required
    assert compose_env["POSTGRES_PASSWORD"] == ""
    assert "CHANGE-ME" in systemd_env["DATABASE_URL"]
    for optional in ("METRICS_TOKEN", "EMAIL_URL", "DEFAULT_FROM_EMAIL"):
        assert optional not in compose_env and optional not in systemd_env, (
            f"{optional} would be set to an empty or example value: leave it commented out"
        )
    assert "${POSTGRES_PASSWORD:?" in COMPOSE.read_text()


def test_the_filled_in_env_file_is_kept_out_of_git_and_the_image():
    for ignore_file in (".gitignore", ".dockerignore"):
        assert ".env" in (BASE_DIR / ignore_file).read_text().splitlines(), ignore_file
    dockerignore = (BASE_DIR / ".dockerignore").read_text().splitlines()
    assert {".venv", ".git", "db.sqlite3", "staticfiles", "!.env.example"} <= set(dockerignore)


# -- commands -----------------------------------------------------------------------------


def test_web_commands_are_the_readmes_gunicorn_command():
    readme = readme_gunicorn_command() + DEPLOY_ONLY_ARGS
    assert entrypoint_commands()["web"] == readme
    [web] = exec_starts()["asksage-web.service"]
    assert [web[0].removeprefix(VENV_BIN), *web[1:]] == readme


def test_worker_and_scheduler_commands_are_the_makefiles():
    makefile = (BASE_DIR / "Makefile").read_text()
    roles = entrypoint_commands()
    units = exec_starts()
    for role, unit_name in (
        ("worker", "asksage-worker@.service"),
        ("scheduler", "asksage-scheduler.service"),
    ):
        command = roles[role]
        assert " ".join(shlex.quote(arg) for arg in command[1:]) in makefile, command
        [argv] = units[unit_name]
        assert [argv[0].removeprefix(VENV_BIN), *argv[1:]] == command


def test_the_python_modules_the_commands_name_exist():
    readme = readme_gunicorn_command()
    config = readme[readme.index("-c") + 1].removeprefix("python:")
    worker_class = readme[readme.index("-k") + 1]
    for module in (config, readme[3]):
        assert (BASE_DIR / (module.replace(".", "/") + ".py")).is_file(), module
    module, _, name = worker_class.rpartition(".")
    assert hasattr(__import__(module, fromlist=[name]), name)


PARSE_CALLS = """
import json, sys, django
django.setup()
from django.core.management import get_commands, load_command_class
commands = get_commands()
for name, *args in json.loads(sys.argv[1]):
    if name not in commands:
        sys.exit(f"no management command {name}")
    command = load_command_class(commands[name], name)
    command.create_parser("manage.py", name).parse_args(args)  # exits on an unknown option
"""


def test_every_management_command_exists_and_accepts_its_options():
    """Under the production settings module (the test settings run tasks immediately, and
    db_worker refuses a backend that is not the database's)."""
    calls = manage_py_calls()
    assert {call[0] for call in calls} >= {"db_worker", "crontask", "migrate", "check"}
    environ = {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "asksage_admin.settings"}
    result = subprocess.run(
        [sys.executable, "-c", PARSE_CALLS, json.dumps(calls)],
        cwd=BASE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_gunicorn_accepts_the_web_command_and_the_entrypoint_empties_the_metrics_dir(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_1234.db").write_text("left by a worker of the last run")
    environ = {
        **os.environ,
        "DEBUG": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "web", "--check-config"],
        cwd=BASE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(metrics.iterdir()) == []


def test_the_entrypoint_refuses_an_unknown_role_in_words():
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "serve"], cwd=BASE_DIR, capture_output=True, text=True
    )
    assert result.returncode == 64
    assert "web|worker|scheduler|migrate|manage" in result.stderr and "serve" in result.stderr


def test_compose_runs_each_entrypoint_role():
    services = compose()["services"]
    roles = set(entrypoint_commands())
    for service in APP_SERVICES:
        assert services[service]["command"] == [service]
        assert service in roles


# -- image --------------------------------------------------------------------------------


def test_the_runtime_image_is_slim_non_root_and_health_checked():
    runtime = runtime_stage()
    instructions = dict(runtime)  # the last of each
    assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim-\w+ AS runtime", runtime[0][1])
    assert instructions["USER"].split(":")[0] not in {"0", "root"}
    assert [name for name, _ in runtime].index("USER") < [name for name, _ in runtime].index("CMD")
    assert re.search(r"CMD .*http://127\.0\.0\.1:8000/healthz", instructions["HEALTHCHECK"])
    assert instructions["EXPOSE"] == "8000"
    assert instructions["ENTRYPOINT"] == '["/app/deploy/docker/entrypoint.sh"]'
    runs = " ".join(args for name, args in runtime if name == "RUN")
    assert "pip install --no-index --find-links /wheels" in runs
    assert not re.search(r"apt-get|build-essential|gcc", runs)


def test_the_build_only_secret_key_never_reaches_the_runtime_environment():
    instructions = dockerfile_instructions()
    for name, args in instructions:
        if name in {"ENV", "ARG"}:
            assert "SECRET_KEY" not in args
    [collectstatic] = [
        args for name, args in runtime_stage() if name == "RUN" and "collectstatic" in args
    ]
    assert re.match(r"SECRET_KEY=build-only-\S+ python manage\.py collectstatic", collectstatic)


def test_the_builder_makes_wheels_of_exactly_the_pinned_dependencies():
    pyproject = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["packages"] == []
    constraints = {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in re.findall(
            r"^([\w.-]+)==(\S+)$", (BASE_DIR / "deploy" / "constraints.txt").read_text(), re.M
        )
    }
    for requirement in pyproject["project"]["dependencies"]:
        name, version = re.fullmatch(r"([\w.-]+)(?:\[\w+\])?==(\S+)", requirement).groups()
        assert constraints.get(re.sub(r"[-_.]+", "-", name).lower()) == version, requirement
    builder = dockerfile_instructions()
    assert builder[1][1].endswith("AS builder")
    assert any(name == "RUN" and "pip wheel" in args for name, args in builder[:6])


# -- compose ------------------------------------------------------------------------------


def test_compose_starts_web_workers_and_scheduler_only_after_migrate_succeeded():
    services = compose()["services"]
    assert services["db"]["healthcheck"]["test"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for service in ("web", "worker", "scheduler"):
        depends = services[service]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", service


def test_compose_workers_scale_and_only_web_serves_http():
    services = compose()["services"]
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    for service in ("migrate", "worker", "scheduler"):
        assert services[service]["healthcheck"] == {"disable": True}, service
        assert "ports" not in services[service]


def test_compose_keeps_the_metrics_dir_on_a_tmpfs_of_the_web_container():
    web = compose()["services"]["web"]
    directory = web["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert directory in web["tmpfs"]
    assert web["environment"]["DATABASE_URL"].startswith("postgres://")
    for service in APP_SERVICES:
        assert compose()["services"][service]["read_only"] is True


# -- systemd ------------------------------------------------------------------------------


def test_every_unit_runs_unprivileged_and_hardened():
    for name in unit_names():
        settings = unit(name)
        assert settings["Service.User"] == ["asksage"], name
        for key, value in (
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("PrivateTmp", "yes"),
            ("CapabilityBoundingSet", ""),
        ):
            assert settings[f"Service.{key}"] == [value], (name, key)
        assert settings["Service.EnvironmentFile"] == ["/etc/asksage/asksage.env"]
    for name in LONG_RUNNING_UNITS:
        settings = unit(name)
        assert settings["Service.Restart"] == ["on-failure"], name
        assert "asksage-migrate.service" in settings["Unit.Requires"][0].split(), name
        assert "asksage-migrate.service" in settings["Unit.After"][0].split(), name


def test_the_migrate_unit_is_a_oneshot_that_checks_then_migrates():
    settings = unit("asksage-migrate.service")
    assert settings["Service.Type"] == ["oneshot"]
    assert [argv[2:4] for argv in exec_starts()["asksage-migrate.service"]] == [
        ["check", "--deploy"],
        ["migrate", "--noinput"],
    ]


def test_the_web_unit_gives_the_metrics_dir_an_empty_runtime_directory():
    settings = unit("asksage-web.service")
    [runtime_directory] = settings["Service.RuntimeDirectory"]
    assert f"PROMETHEUS_MULTIPROC_DIR=/run/{runtime_directory}" in settings["Service.Environment"]
    assert settings.get("Service.RuntimeDirectoryPreserve", ["no"]) == ["no"]


# CI runs every test (.ci/run fails on a skip): there a missing systemd-analyze fails it.
@pytest.mark.skipif(
    not shutil.which("systemd-analyze") and not os.environ.get("CI"),
    reason="systemd-analyze is not installed (Debian: apt-get install systemd)",
)
def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path):
    """In a scratch root, with stand-ins for the virtualenv's programs, since the units name
    /opt/asksage/.venv (verify refuses a unit whose program is missing)."""
    assert shutil.which("systemd-analyze"), "CI needs systemd-analyze (apt-get install systemd)"
    system = tmp_path / "etc" / "systemd" / "system"
    system.mkdir(parents=True)
    for path in SYSTEMD.iterdir():
        if path.suffix in {".service", ".target"}:
            shutil.copy(path, system)
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system", symlinks=True)
    programs = {argv[0] for argvs in exec_starts().values() for argv in argvs}
    for program in programs | {"/bin/kill"}:
        stand_in = tmp_path / program.lstrip("/")
        stand_in.parent.mkdir(parents=True, exist_ok=True)
        stand_in.write_text("#!/bin/sh\n")
        stand_in.chmod(0o755)
    units = [name.replace("@.service", "@1.service") for name in unit_names() + ["asksage.target"]]
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={tmp_path}", *units],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""
