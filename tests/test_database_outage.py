"""A PostgreSQL outage, for real: a throwaway cluster that the test stops and starts again.

The app runs as deployed (gunicorn with uvicorn's worker on `asksage_admin.asgi`, DEBUG off)
against a cluster of its own on a free port, whatever database the rest of the suite uses.
While the cluster is down every request must answer 503 with Retry-After within
ANSWER_WITHIN seconds (the usage API on its fast path, a panel page, a sign-in), never a 500
and never a hang; once it is back, the fast path and the pages must serve again within
RESUME_WITHIN seconds, however long it was down. A page that needs no database (the sign-in
form before anyone signs in) keeps answering 200; submitting it answers 503.

The outage lasts OUTAGE_SECONDS (default 35, what the security review measured): long enough
for psycopg_pool's reconnect backoff (1, 2, 4, 8, 16 s … between attempts) to have grown
past 15 s, which is what kept the fast path answering 503 for 15-21 s after the database's
return. Set it with ASKSAGE_OUTAGE_SECONDS.
"""

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from http.client import HTTPConnection
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTAGE_SECONDS = float(os.environ.get("ASKSAGE_OUTAGE_SECONDS", "35"))
ANSWER_WITHIN = 5.0
RESUME_WITHIN = 2.0
PAUSE = 0.25  # between rounds of requests during the outage

pytestmark = pytest.mark.outage


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster of its own in a temporary directory, trust auth, 127.0.0.1 only.

    initdb refuses to run as root: as root, its commands run as the `postgres` user."""

    def __init__(self):
        versions = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"),
            key=lambda path: int(Path(path).parent.parent.name),
        )
        initdb = versions[-1] if versions else shutil.which("initdb")
        if not initdb:
            pytest.fail("PostgreSQL's initdb is needed (apt-get install postgresql)")
        self.bin = Path(initdb).parent
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="asksage-outage-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgresql.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.dir, postgres.pw_uid, postgres.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/asksage_outage"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self.as_user, *args],
            check=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def create(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        self.start()
        self._run(
            str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "asksage_outage"
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c full_page_writes=off"
        )
        pg_ctl = str(self.bin / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        """What a crash does: no checkpoint, every backend killed, connections cut."""
        pg_ctl = str(self.bin / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def django_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="asksage_admin.settings",
        DATABASE_URL=url,
        DEBUG="0",
        SECRET_KEY="outage-test-" + uuid.uuid4().hex * 2,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        MFA_REQUIRED="0",
        LOG_LEVEL="WARNING",
    )
    return env


# One Django start-up for all of it: migrations; the static files' manifest, which DEBUG off
# serves the hashed names of, as deployed; the cast, an API key and a signed-in session.
SET_UP = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("collectstatic", interactive=False, verbosity=0)
from django.test import Client
from tests.factories import MembershipFactory, OrganizationFactory, PurchaseFactory
from tokens.services import api_keys as api_key_services
org = OrganizationFactory(name="Outage Agency", slug="outage-agency")
PurchaseFactory(organization=org, kind="inference", tokens_per_month=4_000_000)
alice = MembershipFactory(user__email="alice@example.com", organization=org, role="admin").user
MembershipFactory(user__email="bob@example.com", organization=org)
key = api_key_services.api_key_create(actor=alice, org=org, name="Gateway")[1]
client = Client()
client.force_login(alice)
print(json.dumps({"key": key, "session": client.cookies["sessionid"].value}))
"""


class Server:
    """The app as deployed, one worker; its output in a log file shown when a test fails."""

    # gunicorn's arguments before the bind address; how long it may take to answer.
    ARGS = ["asksage_admin.asgi:application", "-k", "uvicorn_worker.UvicornWorker"]
    WORKERS = 1
    START_SECONDS = 30

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), *self.ARGS]
            + ["--workers", str(self.WORKERS), "--bind", f"127.0.0.1:{self.port}"]
            + ["--graceful-timeout", "2"]
            + ["--no-control-socket"],  # one per user by default: other servers may hold it
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the workers too
        )
        deadline = time.monotonic() + self.START_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.ready():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the app server did not start:\n{self.log_tail()}")

    def ready(self) -> bool:
        """Any answer will do: the database may be down on purpose."""
        self.request("GET", "/api/v1/openapi.json", timeout=1)
        return True

    def request(
        self, method: str, path: str, *, body: bytes | None = None, headers=None, timeout=15
    ) -> tuple[int, dict[str, str], bytes, float]:
        """Status, headers (lowercase names), body and seconds taken, on a new connection."""
        started = time.monotonic()
        connection = HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        answer = {k.lower(): v for k, v in response.getheaders()}
        return response.status, answer, data, time.monotonic() - started

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


class App:
    """The requests the test makes, as the gateway, a signed-in admin and a visitor do."""

    def __init__(self, server: Server, key: str, session: str):
        self.server = server
        self.key = key
        self.session = session
        status, headers, _, _ = server.request("GET", "/accounts/login/")
        assert status == 200, f"login page: {status}\n{server.log_tail()}"
        cookie = headers["set-cookie"]
        self.csrf = cookie.split("csrftoken=", 1)[1].split(";", 1)[0]

    def usage(self):
        body = json.dumps(
            {"user": "bob@example.com", "kind": "inference", "tokens": 10, "model": "gpt-4o"}
        ).encode()
        return self.server.request(
            "POST",
            "/api/v1/usage",
            body=body,
            headers={
                "Authorization": f"Bearer {self.key}",
                "Content-Type": "application/json",
                "Idempotency-Key": uuid.uuid4().hex,
            },
        )

    def panel(self):
        return self.server.request(
            "GET", "/panel/users/", headers={"Cookie": f"sessionid={self.session}"}
        )

    def sign_in(self):
        form = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": self.csrf, "username": "bob@example.com", "password": "x"}
        ).encode()
        return self.server.request(
            "POST",
            "/accounts/login/",
            body=form,
            headers={
                "Cookie": f"csrftoken={self.csrf}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Referer": f"http://127.0.0.1:{self.server.port}/accounts/login/",
            },
        )

    def readyz(self):
        return self.server.request("GET", "/readyz")

    def login_page_signed_in(self):
        return self.server.request(
            "GET", "/accounts/login/", headers={"Cookie": f"sessionid={self.session}"}
        )


@pytest.fixture(scope="module")
def outage_app(tmp_path_factory):
    """A cluster, migrated and seeded, and the app serving from it; both gone afterwards,
    whatever happened."""
    cluster = Cluster()
    server = None
    try:
        cluster.create()
        env = django_env(cluster.url)
        seeded = subprocess.run(
            [sys.executable, "-c", SET_UP],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        secrets = json.loads(seeded.stdout.strip().splitlines()[-1])
        server = Server(env, tmp_path_factory.mktemp("outage") / "server.log")
        yield cluster, App(server, secrets["key"], secrets["session"])
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()


def serving_again(app: App, back: float) -> dict[str, float]:
    """Seconds from the database's return to the first 200 of the fast path, of a page and of
    the load balancer's readiness probe."""
    probes = (("usage API", app.usage), ("panel page", app.panel), ("readyz", app.readyz))
    resumed: dict[str, float] = {}
    while len(resumed) < len(probes) and time.monotonic() - back < 30:
        for name, probe in probes:
            if name not in resumed and probe()[0] == 200:
                resumed[name] = round(time.monotonic() - back, 3)
        time.sleep(0.05)
    return resumed


def test_after_an_outage_no_request_saw_the_first_report_and_page_are_served(outage_app):
    """The connections the pools kept idle died with the server: none may fail a request."""
    cluster, app = outage_app
    for _ in range(3):
        assert app.usage()[0] == 200 and app.panel()[0] == 200
    cluster.stop()
    time.sleep(2)
    cluster.start()
    status, _, body, took = app.usage()
    assert status == 200, f"the first report after the return: {status} {body[:300]!r}"
    status, _, body, took_page = app.panel()
    assert status == 200, f"the first page after the return: {status} {body[:300]!r}"
    print(f"\nafter a quiet outage: first report {took:.3f} s, first page {took_page:.3f} s")
    assert took <= RESUME_WITHIN and took_page <= RESUME_WITHIN


def test_a_database_outage_answers_503_quickly_and_service_resumes_within_2_s(outage_app):
    cluster, app = outage_app
    probes = {
        "usage API": app.usage,
        "panel page": app.panel,
        "sign-in": app.sign_in,
        "login page, signed in": app.login_page_signed_in,
        "readyz": app.readyz,  # the balancer takes the node out, quickly
    }
    for name, probe in (
        ("usage API", app.usage),
        ("panel page", app.panel),
        ("readyz", app.readyz),
    ):
        status, _, body, _ = probe()
        assert status == 200, f"{name} before the outage: {status} {body[:300]!r}"

    cluster.stop()
    slowest: dict[str, float] = dict.fromkeys(probes, 0.0)
    wrong = []
    down_since = time.monotonic()
    while time.monotonic() - down_since < OUTAGE_SECONDS:
        for name, probe in probes.items():
            try:
                status, headers, body, took = probe()
            except OSError as exc:  # a hang past the client's timeout, or a dropped connection
                wrong.append((name, repr(exc)))
                continue
            slowest[name] = max(slowest[name], round(took, 3))
            if status != 503 or took > ANSWER_WITHIN or not headers.get("retry-after"):
                wrong.append((name, status, round(took, 2), body[:200]))
            elif name == "usage API" and json.loads(body)["error"] != "database_unavailable":
                wrong.append((name, status, body[:200]))
        # A page that needs no database (the sign-in form) still serves, as quickly.
        status, _, body, took = app.server.request("GET", "/accounts/login/")
        if status != 200 or took > ANSWER_WITHIN:
            wrong.append(("login form", status, round(took, 2), body[:200]))
        # The process itself is fine: the liveness probe must not have it restarted.
        status, _, body, took = app.server.request("GET", "/healthz")
        if status != 200 or took > ANSWER_WITHIN:
            wrong.append(("healthz", status, round(took, 2), body[:200]))
        time.sleep(PAUSE)

    cluster.start()
    resumed = serving_again(app, time.monotonic())
    print(f"\noutage {OUTAGE_SECONDS:.0f} s; slowest answer while down: {slowest}")
    print(f"serving again after the database's return: {resumed}")
    assert not wrong, f"{len(wrong)} wrong answers, e.g. {wrong[:5]}\n{app.server.log_tail()}"
    assert resumed.get("usage API", 99) <= RESUME_WITHIN, resumed
    assert resumed.get("panel page", 99) <= RESUME_WITHIN, resumed
    assert resumed.get("readyz", 99) <= RESUME_WITHIN, resumed
