"""Settings, all from the environment; without any, the app refuses to start (fail closed).

Production: SECRET_KEY=<long random>, ALLOWED_HOSTS=admin.example.gov, DATABASE_URL=postgres://...
(DEBUG is off unless DEBUG=1), and `manage.py check --deploy` reports nothing. Development:
DEBUG=1, which `make run` and the tests set.
"""

import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import dj_email_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from asksage_admin.lib.http import trusted_proxy_networks
from asksage_admin.ops.logging import LOG_FORMATS, LOG_LEVELS, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """An integer of at least `minimum`; anything else stops the start with the name in words."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be {minimum} or more, not {value}.")
    return value


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from None
    if not value >= minimum:  # also refuses nan
        raise ImproperlyConfigured(f"{name} must be {minimum} or more, not {raw!r}.")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}.")
    return value


# Fail closed: without a DEBUG variable the app runs as in production (DEBUG off, a real
# SECRET_KEY required, the demo's switches ignored). `make run` and the tests set DEBUG=1.
DEBUG = env_bool("DEBUG", False)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me"
SECRET_KEY = os.environ.get("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off. For development set DEBUG=1 (make run does)."
    )
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured("SECRET_KEY is the public development key: set a secret one.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "axes",
    "django_tables2",
    "django_filters",
    "ninja",  # the admin API's Swagger UI from ninja's own static files, not its CDN template
    "accounts",
    "audit",
    "tokens",
    "analytics",
    "asksage_admin.ops",
    "django_tasks_db",
    "crontask",
]

MIDDLEWARE = [
    # First: the request id is on every line logged below it, each request gets an access
    # line and is counted, and /healthz, /readyz, /metrics are answered before host checks.
    "asksage_admin.ops.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After MessageMiddleware: it tells the banned user why they were logged out.
    "accounts.middleware.BannedUserLogoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "accounts.middleware.StaffSecondFactorMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After HtmxMiddleware: an htmx request is sent to the terms page as a whole page.
    "accounts.middleware.TermsRequiredMiddleware",
]

ROOT_URLCONF = "asksage_admin.urls"
WSGI_APPLICATION = "asksage_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "tokens.context_processors.shell",
            ],
        },
    },
]

# Embedded SQLite unless DATABASE_URL says otherwise (postgres://... uses psycopg 3).
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# DATABASE_POOLER=transaction: DATABASE_URL points at PgBouncer (or another pooler) in
# transaction mode, which hands each transaction whichever server connection is free. Nothing
# may then rely on a connection's session: no startup options (PgBouncer refuses them), no
# server-side cursors or prepared statements, no pool of our own in front of it; the usage
# statement's settings are set per transaction instead (tokens/usage_api/pool.py).
DATABASE_POOLER = env_choice("DATABASE_POOLER", "none", ("none", "transaction"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    if DATABASE_POOLER == "none":
        # No JIT compilation: every query here is short. Once a table's growth pushes a
        # plan's estimated cost past jit_above_cost, PostgreSQL compiles it on each
        # execution: 60 ms for the usage statement (measured), a hundred times what running
        # it costs. Behind a pooler: `ALTER DATABASE … SET jit = off` (docs/environment.md).
        _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
    else:
        # A named cursor (QuerySet.iterator) lives in its session: the next fetch may come on
        # another server connection. Django then reads the whole result at once.
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    # A server that does not answer (a host down, packets dropped) fails a connection attempt
    # within seconds; libpq's default is to wait as long as the kernel does, minutes. Not
    # less than 4 s: a burst of 50 new connections on a busy 2-core host took over 2 s to be
    # accepted (measured: a concurrency test answered 503), and a refused connection (the
    # server stopped) fails at once whatever this says.
    _options.setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 4, minimum=1))
    # Behind a pooler its connections are cheap to get again and already pooled: no pool
    # here (asksage_admin/asgi.py asks for one by default, which is then ignored).
    if env_bool("DATABASE_POOL", False) and DATABASE_POOLER == "none":
        # Under ASGI each request runs in a thread of its own: persistent connections would
        # be one per thread. A pool per process instead (asksage_admin/asgi.py turns it on).
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        _pool_size = env_int("DATABASE_POOL_SIZE", 4, minimum=1)
        _options["pool"] = {
            "min_size": min(env_int("DATABASE_POOL_MIN_SIZE", 1), _pool_size),
            "max_size": _pool_size,
            # While the database is down a request waits this long for a connection, then
            # answers 503 with Retry-After (asksage_admin/lib/db_unavailable.py); psycopg_pool's
            # default is 30 s, and then Django answered 500.
            "timeout": env_float("DATABASE_POOL_TIMEOUT", 2.0, minimum=0.1),
            # psycopg_pool retries a lost connection with a delay doubling from 1 s for up to
            # reconnect_timeout (5 minutes by default): after a 35 s outage its next attempt
            # came up to 30 s after the database's return. It gives up after 2 s instead, and
            # the next request that finds no connection starts a new attempt at once.
            "reconnect_timeout": 2.0,
        }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a writer instead of failing with "database is locked"; IMMEDIATE makes
    # select_for_update-style critical sections serialize on SQLite too.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, for the test database: the browser tests' live server answers
    # concurrent requests from several threads, each needing its own connection.
    # One file per test process, so parallel runs never share it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"asksage-test-{os.getpid()}.sqlite3")
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out accounts and addresses first
    "accounts.backends.EmailBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "member:home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Mail: EMAIL_URL (smtp://user:password@host:587/?tls=True, the password URL-quoted), or the
# EMAIL_HOST/PORT/HOST_USER/HOST_PASSWORD/USE_TLS/USE_SSL variables; with neither, mail goes
# to the console. An SMTP server that does not answer fails a send after EMAIL_TIMEOUT
# seconds (Django's default is to wait for ever, holding the worker).
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = "localhost", 25, "", ""
EMAIL_USE_TLS = EMAIL_USE_SSL = False
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0, minimum=0.1)
if os.environ.get("EMAIL_URL"):
    try:
        _email = dj_email_url.parse(os.environ["EMAIL_URL"])
    except Exception as exc:  # its errors vary by what is wrong; none may leak the password
        raise ImproperlyConfigured(f"EMAIL_URL is not a mail URL ({type(exc).__name__}).") from None
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST, EMAIL_PORT = _email["EMAIL_HOST"], _email["EMAIL_PORT"]
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_USER"], _email["EMAIL_HOST_PASSWORD"]
    EMAIL_USE_TLS, EMAIL_USE_SSL = _email["EMAIL_USE_TLS"], _email["EMAIL_USE_SSL"]
    EMAIL_TIMEOUT = _email["EMAIL_TIMEOUT"] or EMAIL_TIMEOUT
elif os.environ.get("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = os.environ["EMAIL_HOST"]
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", EMAIL_PORT == 587)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", EMAIL_PORT == 465)
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", EMAIL_BACKEND)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured(
        "Mail: set EMAIL_USE_TLS (STARTTLS, port 587) or EMAIL_USE_SSL, not both."
    )
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "admin-console@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# The address people open the console at, for links in emails ("See your limits at ...").
# Required in production: `check --deploy` fails without an https one (asksage_admin.ops.checks).
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000" if DEBUG else "").strip()
if SITE_URL and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", SITE_URL):
    raise ImproperlyConfigured(f"SITE_URL must be an absolute http(s) URL, not {SITE_URL!r}.")
SITE_URL = SITE_URL.rstrip("/")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
SESSION_SAVE_EVERY_REQUEST = True  # inactivity expiry: each request extends the session
X_FRAME_OPTIONS = "DENY"
# Everything is served by the app itself; scripts only from our origin or with this
# response's nonce, never inline, never eval (htmx runs with allowEval off).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "style-src-attr": [CSP.UNSAFE_INLINE],  # Django admin widgets set a few style attributes
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

DJANGO_TABLES2_TEMPLATE = "django_tables2/table.html"

# Second factor (TOTP) for org admins, auditors and sales staff. DEMO_SKIP_MFA only ever
# works with DEBUG on, so a demo can be shown without a phone.
MFA_REQUIRED = env_bool("MFA_REQUIRED", True)
DEMO_SKIP_MFA = DEBUG and env_bool("DEMO_SKIP_MFA", False)
OTP_TOTP_ISSUER = "Enterprise Admin"

# Passkeys / security keys (django-otp-webauthn) as a second factor beside TOTP. The relying
# party id is a host name, by default SITE_URL's; a passkey only works on that host and its
# subdomains. Browsers refuse IP addresses and plain http except on localhost, so a plain-http
# SITE_URL (DEBUG's 127.0.0.1:8000) means http://localhost on the same port.
_site = urlsplit(SITE_URL or "http://localhost")
_site_host = _site.hostname or "localhost"
if _site.scheme != "https":
    _site_host = "localhost"
WEBAUTHN_RP_ID = os.environ.get("WEBAUTHN_RP_ID", "").strip() or _site_host
WEBAUTHN_RP_NAME = os.environ.get("WEBAUTHN_RP_NAME", "").strip() or "Enterprise Admin"
OTP_WEBAUTHN_RP_ID = WEBAUTHN_RP_ID
OTP_WEBAUTHN_RP_NAME = WEBAUTHN_RP_NAME
# The one origin a browser may sign from.
OTP_WEBAUTHN_ALLOWED_ORIGINS = [
    f"{_site.scheme}://{_site_host}{f':{_site.port}' if _site.port else ''}"
]
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False

# The client's address (audit rows, login throttling) is REMOTE_ADDR. Behind reverse proxies
# of ours, TRUSTED_PROXY_COUNT says how many: the client is then the entry that many places
# from the right of X-Forwarded-For (asksage_admin.lib.http.client_ip). Set it only when the
# app cannot be reached except through those proxies; by default X-Forwarded-For is ignored.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# Optional, and better: the proxies' addresses or networks (comma separated). X-Forwarded-For
# is then read only from a request that comes from one of them, so a client reaching the app
# around the proxies cannot choose its address.
TRUSTED_PROXY_ADDRESSES = env_list("TRUSTED_PROXY_ADDRESSES", "")
try:
    trusted_proxy_networks(tuple(TRUSTED_PROXY_ADDRESSES))
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_ADDRESSES: {exc}.") from None

# Login throttling (django-axes): AXES_FAILURE_LIMIT failures against one account, from any
# number of addresses, lock that account for AXES_COOLOFF_MINUTES. Never by address alone:
# behind one office NAT that would lock out everyone of an agency. Attempts while locked out
# are refused and keep the lock fresh.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username"], ["username", "ip_address"]]
# The login forms post the email as `username`; axes records it lower-cased, so that
# "Bob@Example.com" and "bob@example.com" count against one account.
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "accounts.backends.axes_username"
AXES_CLIENT_IP_CALLABLE = "asksage_admin.lib.http.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
# Every failed attempt, locked-out ones included, is kept in axes' failure log (capped per
# account by axes), outside the organizations' audit chains (see accounts.signals).
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_VERBOSE = False

# Second-factor throttling (django-otp): after n wrong codes the next try waits
# factor × 2^(n-1) seconds, for the authenticator and the recovery codes alike.
OTP_TOTP_THROTTLE_FACTOR = env_int("OTP_THROTTLE_FACTOR", 1, minimum=0)
OTP_STATIC_THROTTLE_FACTOR = OTP_TOTP_THROTTLE_FACTOR

# The usage API's fast path (tokens/usage_api/fastpath.py), served by the ASGI application on
# PostgreSQL. Per worker process: batches of up to USAGE_API_BATCH_SIZE reports,
# USAGE_API_BATCH_CONCURRENCY of them in flight (a second one only once
# USAGE_API_BATCH_MIN_FILL reports wait), USAGE_API_POOL_SIZE connections, and
# USAGE_API_POOL_TIMEOUT seconds to get one before answering 503.
USAGE_FAST_PATH = env_bool("USAGE_FAST_PATH", True)
USAGE_API_BATCH_SIZE = env_int("USAGE_API_BATCH_SIZE", 64, minimum=1)
USAGE_API_BATCH_CONCURRENCY = env_int("USAGE_API_BATCH_CONCURRENCY", 2, minimum=1)
USAGE_API_BATCH_MIN_FILL = env_int("USAGE_API_BATCH_MIN_FILL", 8, minimum=1)
USAGE_API_POOL_SIZE = env_int("USAGE_API_POOL_SIZE", 6, minimum=1)
USAGE_API_POOL_TIMEOUT = env_float("USAGE_API_POOL_TIMEOUT", 2.0, minimum=0.1)

# The admin API (asksage_admin/admin_api.py): calls per API key per minute, counted in
# Django's cache (per worker process with the default local-memory cache).
ADMIN_API_RATE = f"{env_int('ADMIN_API_RATE_PER_MINUTE', 120, minimum=1)}/m"

# Single sign-on (tokens.sso): what the app accepts from an identity provider. Each call to
# it (discovery, JWKS, token endpoint) ends within SSO_IDP_TIMEOUT seconds in all, follows no
# redirect and reads at most SSO_IDP_MAX_BYTES; a failed discovery or JWKS fetch is not tried
# again for SSO_IDP_RETRY_AFTER seconds (counted in Django's cache). /sso/start/ answers 429
# past SSO_START_RATE sign-ins per client address (a sliding minute, in Django's cache too).
SSO_IDP_TIMEOUT = env_float("SSO_IDP_TIMEOUT", 10.0, minimum=0.1)
SSO_IDP_MAX_BYTES = env_int("SSO_IDP_MAX_BYTES", 1024 * 1024, minimum=1024)
SSO_IDP_RETRY_AFTER = env_int("SSO_IDP_RETRY_AFTER", 30, minimum=0)
SSO_START_RATE = f"{env_int('SSO_START_RATE_PER_MINUTE', 20, minimum=1)}/m"

# Domain settings.
PLATFORM_MIN_INFERENCE_TOKENS = env_int("PLATFORM_MIN_INFERENCE_TOKENS", 200000, minimum=0)
PLATFORM_MIN_EMBEDDING_TOKENS = env_int("PLATFORM_MIN_EMBEDDING_TOKENS", 0, minimum=0)
# How long an invitation link to join an organization stays valid (Admin Panel → Users).
INVITATION_TTL_HOURS = env_int("INVITATION_TTL_HOURS", 72, minimum=1)
PURCHASE_BLOCK_TOKENS = 2_000_000
# CSV/XLSX import of allocations (User Management → Import): the largest file and the most
# rows one upload may carry; a larger one is refused with a message before it is parsed.
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 4 * 1024 * 1024, minimum=1024)
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 20000, minimum=1)

# Logs: one line per event on stderr, JSON in production (LOG_FORMAT=json, the default with
# DEBUG off) and text in development, each with the request id (asksage_admin.ops.logging).
# ACCESS_LOG: one line per request ("asksage.access", at INFO; probes at DEBUG).
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", LOG_LEVELS)
LOG_FORMAT = env_choice("LOG_FORMAT", "console" if DEBUG else "json", LOG_FORMATS)
LOGGING = logging_config(level=LOG_LEVEL, log_format=LOG_FORMAT)
ACCESS_LOG = env_bool("ACCESS_LOG", True)

# /metrics answers only a request bearing this token (Authorization: Bearer ...); unset, it
# answers 404 to everyone. PROMETHEUS_MULTIPROC_DIR: see asksage_admin.lib.metrics.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 24:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 24 characters (or unset).")

# Email is unique case-insensitively through a UniqueConstraint on Lower("email"), which this
# check does not see; the backend looks users up with iexact.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]

# Background work: Django's task framework with django-tasks-db's database backend. Tasks are
# rows in this database, run by `manage.py db_worker` (N of them, on any number of machines);
# the periodic ones are enqueued by `manage.py crontask` (django-crontask) and run once per
# period however many schedulers enqueue them (tokens/periodic.py). See README.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# An email that fails is retried EMAIL_MAX_ATTEMPTS times in all, waiting
# EMAIL_RETRY_BASE_SECONDS × 2^(attempt-1) between tries; then it shows as failed in /staff/.
EMAIL_MAX_ATTEMPTS = env_int("EMAIL_MAX_ATTEMPTS", 5, minimum=1)
EMAIL_RETRY_BASE_SECONDS = env_int("EMAIL_RETRY_BASE_SECONDS", 60, minimum=1)
# Finished task results (the queue's rows, not the outbox) are pruned nightly after this.
TASK_RESULTS_KEEP_DAYS = env_int("TASK_RESULTS_KEEP_DAYS", 14, minimum=1)
# Raw usage events are kept for the current month and this many before it, then dropped a
# month at a time (tokens/retention.py; the rollups stay); 0 keeps them all.
USAGE_RETENTION_MONTHS = env_int("USAGE_RETENTION_MONTHS", 36)
# The statistics page's "users at risk" list is a snapshot: the periodic task refreshes one
# older than this (analytics.snapshots).
FORECAST_SNAPSHOT_MAX_AGE_MINUTES = env_int("FORECAST_SNAPSHOT_MAX_AGE_MINUTES", 60, minimum=5)
# /readyz fails once a due task has waited this long (no worker running?); 0 turns it off.
TASK_QUEUE_STALL_SECONDS = env_int("TASK_QUEUE_STALL_SECONDS", 900)
