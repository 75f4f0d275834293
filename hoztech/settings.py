"""The one settings file: everything that differs between machines comes from the environment.

Each variable of the configuration contract (shared design.md, "Configuration") is read here with
its documented default. A malformed value stops start-up with ImproperlyConfigured naming the
variable, never a silent fallback: a typo in production must be loud.
"""

import os
import re
import secrets
import tempfile
import zoneinfo
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent

# The real environment wins over .env (override=False), so a platform's variables are never
# shadowed by a file left in the image. ENV_FILE names another file; empty reads none (tests).
ENV_FILE = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE:
    load_dotenv(ENV_FILE, override=False)


def _raw(name):
    return os.environ.get(name, "").strip()


def _fail(name, reason):
    # The value itself is never echoed: it may be a secret.
    raise ImproperlyConfigured(f"Environment variable {name} is malformed: {reason}.")


def env_str(name, default=""):
    return _raw(name) or default


def env_bool(name, default):
    value = _raw(name).lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    _fail(name, "expected true or false")


def env_int(name, default, minimum=0):
    value = _raw(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        _fail(name, "expected a whole number")
    if number < minimum:
        _fail(name, f"must be at least {minimum}")
    return number


def env_list(name, default):
    value = _raw(name)
    if not value:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_database(name, default):
    url = _raw(name) or default
    try:
        config = environ.Env.db_url_config(url)
    except (ValueError, TypeError, KeyError) as exc:
        _fail(name, str(exc))
    engine = config.get("ENGINE", "")
    if engine == "django.db.backends.sqlite3":
        if not config.get("NAME"):
            _fail(name, "a sqlite URL needs a file name, e.g. sqlite:///db.sqlite3")
        path = Path(config["NAME"])
        config["NAME"] = str(path if path.is_absolute() else BASE_DIR / path)
        config["OPTIONS"] = {
            # WAL lets the web server read while the worker writes; IMMEDIATE takes the write
            # lock at BEGIN, so two writers queue on the timeout instead of failing with
            # "database is locked" halfway through a transaction.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        # Tests get a file too: an in-memory database shared between threads fails with "table is
        # locked" at once instead of waiting, and the worker's threads are tested for real.
        config["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"hoztech-test-{os.getpid()}.sqlite3")}
    elif engine == "django.db.backends.postgresql":
        if not config.get("NAME"):
            _fail(name, "a postgres URL needs a database name, e.g. postgres://user@host:5432/db")
        config["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60)
        # No health check by default (a round trip before every request's first query: a third of the
        # webhook's database time). A connection that died is dropped when the request that met it
        # ends; the webhook answers that request 503, so Meta sends it again. Turn it on where
        # connections die often (a database that fails over, a proxy that cuts idle connections).
        config["CONN_HEALTH_CHECKS"] = env_bool("CONN_HEALTH_CHECKS", False)
        config.setdefault("OPTIONS", {})["connect_timeout"] = 5
    else:
        _fail(name, "expected a sqlite:/// or postgres:// URL")
    return config


# --- Core -------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = _raw("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Environment variable SECRET_KEY is required when DEBUG is off.")
    SECRET_KEY = secrets.token_urlsafe(50)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    # Before django_tasks_db, so that our `db_worker` (which also drains webhook events) wins.
    "chatbot",
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "hoztech.urls"
WSGI_APPLICATION = "hoztech.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", "sqlite:///db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = _raw("REDIS_URL")
if REDIS_URL:
    if urlsplit(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
        _fail("REDIS_URL", "expected a redis:// URL")
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Background work: Django's tasks API on the ORM-backed queue, so a task is enqueued in the same
# transaction as the rows it is about (workers: `python manage.py db_worker`).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- Internationalisation ---------------------------------------------------------------------

LANGUAGE_CODE = env_str("LANGUAGE_CODE", "pt-br").lower()
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English")]
if LANGUAGE_CODE not in dict(LANGUAGES):
    _fail("LANGUAGE_CODE", "expected pt-br or en")
LOCALE_PATHS = [BASE_DIR / "locale"]

TIME_ZONE = env_str("TIME_ZONE", "America/Sao_Paulo")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    _fail("TIME_ZONE", "expected an IANA zone name such as America/Sao_Paulo")
USE_I18N = True
USE_TZ = True

# --- Files ------------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))

MAX_FILE_SIZE = env_int("MAX_FILE_SIZE", 20 * 1024 * 1024, minimum=1)
ALLOWED_EXTENSIONS = [
    ext.lower().lstrip(".")
    for ext in env_list(
        "ALLOWED_EXTENSIONS",
        ["jpg", "jpeg", "png", "gif", "mp4", "mp3", "ogg", "pdf", "doc", "docx", "xls", "xlsx"],
    )
]
# Meta's webhook payloads are at most 3 MB (cloud-api.md §3); the webhook view answers 413 above.
WEBHOOK_MAX_BODY = 3 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BODY

# --- WhatsApp Cloud API -----------------------------------------------------------------------

WHATSAPP_ACCESS_TOKEN = _raw("WHATSAPP_ACCESS_TOKEN")
WHATSAPP_PHONE_NUMBER_ID = _raw("WHATSAPP_PHONE_NUMBER_ID")
WHATSAPP_BUSINESS_ACCOUNT_ID = _raw("WHATSAPP_BUSINESS_ACCOUNT_ID")
WHATSAPP_APP_SECRET = _raw("WHATSAPP_APP_SECRET")
# The default is design.md's, hence public: `check --deploy` and `whatsapp_chatbot check` say so
# in live mode (chatbot/checks.py).
WEBHOOK_VERIFY_TOKEN = env_str("WEBHOOK_VERIFY_TOKEN", "hoz_tech_secure_token_2024")

WHATSAPP_API_VERSION = env_str("WHATSAPP_API_VERSION", "v25.0")
if not re.fullmatch(r"v\d+\.\d+", WHATSAPP_API_VERSION):
    _fail("WHATSAPP_API_VERSION", "expected a Graph API version such as v25.0")

WHATSAPP_GRAPH_URL = env_str("WHATSAPP_GRAPH_URL", "https://graph.facebook.com").rstrip("/")
if urlsplit(WHATSAPP_GRAPH_URL).scheme not in {"http", "https"} or not urlsplit(WHATSAPP_GRAPH_URL).netloc:
    _fail("WHATSAPP_GRAPH_URL", "expected an http(s):// URL")

WHATSAPP_MESSAGES_PER_SECOND = env_int("WHATSAPP_MESSAGES_PER_SECOND", 80, minimum=1)
MESSAGES_PER_MINUTE = env_int("MESSAGES_PER_MINUTE", 30, minimum=1)
# Milliseconds between two messages of one campaign (0: the number's cap alone, conversations first).
BULK_MESSAGE_DELAY = env_int("BULK_MESSAGE_DELAY", 0, minimum=0)
# Blue ticks for the customer as soon as a message is stored (cloud-api.md §7, "Mark read").
WHATSAPP_MARK_READ = env_bool("WHATSAPP_MARK_READ", True)
# Event webhooks may go to private, loopback and link-local addresses (tests, an intranet's own systems).
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# Send and read API calls per token; a short burst of a tenth of it is allowed.
API_REQUESTS_PER_MINUTE = env_int("API_REQUESTS_PER_MINUTE", 600, minimum=1)
STORE_MESSAGE_UP_TO = env_int("STORE_MESSAGE_UP_TO", 90, minimum=1)

# --- The team: presence (chatbot/presence.py) -------------------------------------------------

# Away after this long without a key, click, touch or mouse move in any dashboard tab (each tab
# tells its 2-second pulse whether there was input): long enough for reading a long conversation
# or a phone call, short enough that customers are not handed to someone who left the desk.
PRESENCE_AWAY_AFTER = timedelta(minutes=10)
# Offline after this long without a poll from any dashboard tab. A visible tab polls every 2 s and
# a hidden one every 30 s (browsers slow a hidden tab's timers to once a minute at worst): two
# minutes survive a missed beat, and a closed laptop stops receiving customers soon after.
PRESENCE_OFFLINE_AFTER = timedelta(minutes=2)

# --- Security ---------------------------------------------------------------------------------

LOGIN_URL = "login"
# Operators' passwords (set in the dashboard's settings, changepassword, the admin).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_REDIRECT_URL = "chatbot:dashboard"
LOGOUT_REDIRECT_URL = "login"

# Scripts, styles, images and media from our own origin only: no inline script or style (the
# dashboard's JS and CSS are static files), no plugins, no framing, no <base>, forms post here.
# The media view narrows it further (views.media_file).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "media-src": ["'self'"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
    },
}

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

if not DEBUG:
    # Behind a TLS-terminating proxy (Render, Heroku, nginx) the original scheme arrives in
    # X-Forwarded-Proto; the proxy must overwrite that header, never pass the client's.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load balancers probe health over plain HTTP from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^chatbot/health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Logging ----------------------------------------------------------------------------------

LOG_DIR = Path(env_str("LOG_DIR", str(BASE_DIR / "logs")))
LOG_DIR.mkdir(parents=True, exist_ok=True)
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    _fail("LOG_LEVEL", "expected DEBUG, INFO, WARNING, ERROR or CRITICAL")

# LOG_FORMAT=json writes one JSON object per line (for log collectors), with the request id.
LOG_FORMAT = env_str("LOG_FORMAT", "plain").lower()
if LOG_FORMAT not in {"plain", "json"}:
    _fail("LOG_FORMAT", "expected plain or json")

# Every handler redacts secrets (tokens, the app secret, Authorization headers, signatures) and
# stamps the request id (chatbot/logs.py), whatever logger the record comes from.
_LOG_FILTERS = ["redact", "request_id"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "chatbot.logs.RedactFilter"},
        "request_id": {"()": "chatbot.logs.RequestIdFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "chatbot.logs.JsonFormatter"},
        "server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": _LOG_FILTERS},
        "console_warnings": {
            "class": "logging.StreamHandler", "formatter": LOG_FORMAT, "level": "WARNING", "filters": _LOG_FILTERS,
        },
        # runserver's request lines, whose query strings may carry hub.verify_token.
        "server": {
            "class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "server",
            "filters": _LOG_FILTERS,
        },
        "webhook_file": {
            "class": "logging.handlers.RotatingFileHandler",
            "filename": LOG_DIR / "webhook.log",
            "maxBytes": 10 * 1024 * 1024,
            "backupCount": 5,
            "formatter": LOG_FORMAT,
            "filters": _LOG_FILTERS,
            "encoding": "utf-8",
            # Opened on first write, so importing settings never creates files it does not need.
            "delay": True,
        },
    },
    "loggers": {
        "chatbot": {"handlers": ["console", "webhook_file"], "level": LOG_LEVEL, "propagate": False},
        # One line per POST goes to the file; the console, shared with everything else, gets refusals.
        "chatbot.webhook": {"handlers": ["console_warnings", "webhook_file"], "level": LOG_LEVEL, "propagate": False},
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
        # Anything else (gunicorn's error log, requests, django_tasks) also passes the redaction.
        "": {"handlers": ["console"], "level": "WARNING"},
    },
}
