"""Settings, all read from the environment here and nowhere else."""

from __future__ import annotations

import os
import secrets
import zoneinfo
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DASHBOARD_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_str(name).lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept under var/.

    The generated key keeps a laptop install working across restarts; production sets its own.
    """
    key = env_str("SECRET_KEY")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG")
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")

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
    "dashboard",
    # Simulator, demo, benchmarks: commands for laptops and measurements (never imported by
    # the product).
    "dashboard.devtools",
]

# "login" (default): Django's own users and the login page. "remote-user": trust the user
# name an SSO proxy puts in DASHBOARD_REMOTE_USER_HEADER (only safe when nothing but that proxy
# can reach the dashboard, see the README).
DASHBOARD_AUTH = env_str("DASHBOARD_AUTH", "login")
if DASHBOARD_AUTH not in ("login", "remote-user"):
    raise ImproperlyConfigured("DASHBOARD_AUTH must be login or remote-user")
DASHBOARD_REMOTE_USER_HEADER = env_str("DASHBOARD_REMOTE_USER_HEADER", "X-Forwarded-User")
# Who may read /healthz: "public" (load balancers cannot log in) or "login".
DASHBOARD_HEALTHZ_ACCESS = env_str("DASHBOARD_HEALTHZ_ACCESS", "public")
if DASHBOARD_HEALTHZ_ACCESS not in ("public", "login"):
    raise ImproperlyConfigured("DASHBOARD_HEALTHZ_ACCESS must be public or login")
# Who may read /metrics: "public" (Prometheus cannot sign in) or "login" (a signed-in user, or
# the bearer token). With DASHBOARD_METRICS_TOKEN set, Prometheus must send it as a Bearer token.
DASHBOARD_METRICS_ACCESS = env_str("DASHBOARD_METRICS_ACCESS", "public")
if DASHBOARD_METRICS_ACCESS not in ("public", "login"):
    raise ImproperlyConfigured("DASHBOARD_METRICS_ACCESS must be public or login")
DASHBOARD_METRICS_TOKEN = env_str("DASHBOARD_METRICS_TOKEN")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "dashboard.web.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the cookie the switch sets, else the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    *(["dashboard.web.security.ProxyUserMiddleware"] if DASHBOARD_AUTH == "remote-user" else []),
    # A signed-in user's saved language wins over the cookie and the browser's.
    "dashboard.web.language.UserLanguageMiddleware",
    # Every page needs a login unless its view says otherwise (login, /healthz).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
AUTHENTICATION_BACKENDS = [
    *(["dashboard.web.security.ProxyUserBackend"] if DASHBOARD_AUTH == "remote-user" else []),
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
# Failed logins allowed per user name and per client address within the window.
LOGIN_FAILURES_PER_USER = env_int("DASHBOARD_LOGIN_FAILURES_PER_USER", 5, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = env_int("DASHBOARD_LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
LOGIN_FAILURE_WINDOW = env_int("DASHBOARD_LOGIN_FAILURE_WINDOW", 900, minimum=1)

# Served over HTTPS (directly or behind a proxy that sets X-Forwarded-Proto): secure cookies,
# HSTS and a redirect from http. Off for a laptop's http://127.0.0.1.
DASHBOARD_HTTPS = env_bool("DASHBOARD_HTTPS")
if DASHBOARD_HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env_int("DASHBOARD_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("DASHBOARD_HSTS_PRELOAD", default=True)
    if env_bool("DASHBOARD_BEHIND_PROXY"):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # pages carry the token; no script needs the cookie
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

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
                "dashboard.web.context.navigation",
            ],
        },
    },
]


def _database() -> dict:
    url = env_str("DATABASE_URL")
    if url:
        config = dj_database_url.parse(url)
    else:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "dashboard.sqlite3"}
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers go on while the poller writes; IMMEDIATE takes the write lock at
        # BEGIN so two writers queue on the busy timeout instead of failing to upgrade a lock.
        # The timeout is SQLite's busy timeout: a web request that writes (a login, a session)
        # waits that long for a poll's transaction to commit before "database is locked".
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": env_int("DASHBOARD_SQLITE_BUSY_TIMEOUT", 20, minimum=1),
        }
    if config["ENGINE"] == "django.db.backends.postgresql":
        # No JIT: PostgreSQL compiles a statement it guesses is costly, as the poller's bulk
        # statements are, and spent 0.3 s doing so per statement, more than it ever won back.
        # Options given in DATABASE_URL come after, so they win.
        options = config.setdefault("OPTIONS", {})
        options["options"] = f"-c jit=off {options.get('options', '')}".strip()
    # A web worker keeps its connection between requests (a new PostgreSQL connection costs a
    # few ms, an SQLite one its PRAGMAs); a connection that died is noticed before it is used.
    config["CONN_MAX_AGE"] = env_int("DASHBOARD_CONN_MAX_AGE", 60)
    config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Each process's own memory: what is cached (the status tiles' counts) is keyed by the
# snapshot it counted, so every worker answers the same without a shared cache to run.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

TIME_ZONE = "UTC"
USE_TZ = True
# The zone pages show times in unless a reader picks UTC or their browser's (Preferences): an
# IANA name such as Asia/Shanghai. The server still renders and stores UTC; pages convert.
DASHBOARD_TIME_ZONE = env_str("DASHBOARD_TIME_ZONE", "UTC") or "UTC"
try:
    zoneinfo.ZoneInfo(DASHBOARD_TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        "DASHBOARD_TIME_ZONE must be an IANA time zone such as Asia/Shanghai or UTC, "
        f"not {DASHBOARD_TIME_ZONE!r}"
    ) from None
# Pages speak the language a person chose (the header's switch: saved for a signed-in user,
# a cookie otherwise), else the browser's; LANGUAGE_CODE is the fallback, and the language of
# alert messages, which go to channels rather than to one person.
USE_I18N = True
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LANGUAGE_CODE = env_str("DASHBOARD_LANGUAGE", "en").lower()
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured(
        f"DASHBOARD_LANGUAGE must be one of {', '.join(dict(LANGUAGES))}, not {LANGUAGE_CODE!r}"
    )
LOCALE_PATHS = [BASE_DIR / "locale"]
# Number formats that differ from Django's own for a language (see the module).
FORMAT_MODULE_PATH = ["dashboard.web.formats"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_HTTPONLY = True  # read by the server only
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = DASHBOARD_HTTPS

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every start without it
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production (`make serve`): `collectstatic` writes content-hashed, gzip- and brotli-compressed
# copies to STATIC_ROOT, and pages link to the hashed names, which browsers may cache for a
# year. Off by default, so the demo, the tests and a fresh checkout need no collectstatic step
# (and can never serve a stale copy): then the source folders are served as they are.
DASHBOARD_HASHED_STATIC = env_bool("DASHBOARD_HASHED_STATIC")
_serve_collected = DASHBOARD_HASHED_STATIC and not DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if _serve_collected
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Without collected files, serve the source folders (the demo needs no collectstatic).
WHITENOISE_USE_FINDERS = not _serve_collected

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    # Request URLs can carry signed query strings; urllib3's debug lines are not wanted.
    "loggers": {"urllib3": {"level": "WARNING"}},
}

# The single source configured by environment (more sources are rows in the admin).
MODELARTS_ENDPOINT = env_str("MODELARTS_ENDPOINT")
MODELARTS_PROJECT_ID = env_str("MODELARTS_PROJECT_ID")
MODELARTS_WORKSPACE_ID = env_str("MODELARTS_WORKSPACE_ID")
MODELARTS_SOURCE_NAME = env_str("MODELARTS_SOURCE_NAME", "default")
MODELARTS_POLL_INTERVAL = env_int("MODELARTS_POLL_INTERVAL", 30, minimum=5)
MODELARTS_OFFSET_MODE = env_str("MODELARTS_OFFSET_MODE", "page")
if MODELARTS_OFFSET_MODE not in ("page", "record"):
    raise ImproperlyConfigured("MODELARTS_OFFSET_MODE must be page or record")
MODELARTS_REGION = env_str("MODELARTS_REGION")
HUAWEICLOUD_IAM_ENDPOINT = env_str("HUAWEICLOUD_IAM_ENDPOINT") or (
    f"https://iam.{MODELARTS_REGION}.myhuaweicloud.com" if MODELARTS_REGION else ""
)
HUAWEICLOUD_DOMAIN = env_str("HUAWEICLOUD_DOMAIN")
HUAWEICLOUD_USERNAME = env_str("HUAWEICLOUD_USERNAME")
# How the environment's source authenticates, by which secrets are set; their values stay in the
# environment and are read when a poll starts. AK/SK wins over a token, a token over a password.
if env_str("MODELARTS_AK") and env_str("MODELARTS_SK"):
    MODELARTS_AUTH = "aksk"
elif env_str("MODELARTS_TOKEN"):
    MODELARTS_AUTH = "token"
elif env_str("HUAWEICLOUD_PASSWORD"):
    MODELARTS_AUTH = "iam-password"
else:
    MODELARTS_AUTH = "token"  # and its poll says MODELARTS_TOKEN is missing
MODELARTS_TIMEOUT = env_int("MODELARTS_TIMEOUT", 30, minimum=1)

# History (samples, status changes, poll runs) is kept this many days; the poller prunes it.
DASHBOARD_HISTORY_DAYS = env_int("DASHBOARD_HISTORY_DAYS", 30, minimum=1)
# Samples older than this many hours are thinned to one per service per hour.
DASHBOARD_FULL_RESOLUTION_HOURS = env_int("DASHBOARD_FULL_RESOLUTION_HOURS", 24, minimum=1)

# How often an open page refreshes its table, in seconds.
DASHBOARD_REFRESH_SECONDS = env_int("DASHBOARD_REFRESH_SECONDS", 15, minimum=2)

# Detectors (badges and ?detect= filters on the table), in minutes and status changes.
# Stuck: deploying with no progress (no new sample) for this long.
DASHBOARD_STUCK_MINUTES = env_int("DASHBOARD_STUCK_MINUTES", 15, minimum=1)
# Idle: running with no new calls for this long.
DASHBOARD_IDLE_MINUTES = env_int("DASHBOARD_IDLE_MINUTES", 60, minimum=1)
# Flapping: at least this many status changes within DASHBOARD_FLAP_MINUTES.
DASHBOARD_FLAP_CHANGES = env_int("DASHBOARD_FLAP_CHANGES", 3, minimum=2)
DASHBOARD_FLAP_MINUTES = env_int("DASHBOARD_FLAP_MINUTES", 60, minimum=1)
# "Failing now" (?window=) ranks a windowed failure rate only over at least this many calls.
DASHBOARD_RATE_MIN_CALLS = env_int("DASHBOARD_RATE_MIN_CALLS", 20, minimum=1)

# Alerts: links in messages point here (e.g. https://dashboard.example.com); a provisioning
# file of channels and rules may be applied when the poller starts.
DASHBOARD_BASE_URL = env_str("DASHBOARD_BASE_URL").rstrip("/")
if DASHBOARD_BASE_URL and not DASHBOARD_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("DASHBOARD_BASE_URL must start with http:// or https://")
DASHBOARD_ALERTS_FILE = env_str("DASHBOARD_ALERTS_FILE")
# Email alerts: Django's standard mail settings.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("set EMAIL_USE_TLS or EMAIL_USE_SSL, not both")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "modelarts-dashboard@localhost")

# Each service's detail (why it failed, its instances, events): the poller fetches it for
# unhealthy services, at most this many API calls per source and poll, spread over polls.
DASHBOARD_DETAIL_CALLS_PER_POLL = env_int("DASHBOARD_DETAIL_CALLS_PER_POLL", 50, minimum=0)
# A detail older than this is fetched again (for a page that shows it, or an unhealthy service).
DASHBOARD_DETAIL_MAX_AGE = env_int("DASHBOARD_DETAIL_MAX_AGE", 60, minimum=10)
# The ModelArts console page of a service: {region} and {service_id} are filled in.
DASHBOARD_CONSOLE_URL = env_str(
    "DASHBOARD_CONSOLE_URL",
    "https://console.huaweicloud.com/modelarts/?region={region}#/dashboard/realtime/{service_id}",
)
