"""Logging helpers wired in by the LOGGING setting: secrets (and the customers' numbers that URLs
and database errors carry) redacted from every record, a request id on every record, and a JSON
formatter for `LOG_FORMAT=json`. gunicorn's access log uses `redact_path` (gunicorn.conf.py).

The redaction is a handler filter, not a rule for callers: a token can reach a log line through an
exception message, a library's debug output or a header dump, and log files get copied around.
Nothing here imports models: this module is loaded while logging is configured, before the apps.
"""

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

from django.core.signals import request_finished, request_started, setting_changed

REDACTED = "[REDACTED]"

# Shapes of secrets, whatever their value: header values, signatures, query parameters, Meta's
# access tokens (EAA…) and our API tokens (hzt_…). Each comes with a lowercase word that must be in
# the line for the pattern to match at all: checking it first keeps a plain line cheap (the webhook
# logs one per request).
PATTERNS = [
    (("authorization",), re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,}]+"), r"\1" + REDACTED),
    (("bearer",), re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
    (("x-hub-signature",), re.compile(r"(?i)(x-hub-signature(?:-256)?[\"']?\s*[:=]\s*[\"']?)[^\"'\s,}]+"),
     r"\1" + REDACTED),
    (("sha1=", "sha256="), re.compile(r"(?i)\b(sha(?:1|256)=)[0-9a-f]{16,}"), r"\1" + REDACTED),
    (("access_token", "appsecret_proof", "client_secret", "verify_token"),
     re.compile(r"(?i)\b((?:access_token|appsecret_proof|client_secret|hub\.verify_token)=)[^&\s\"']+"),
     r"\1" + REDACTED),
    (("eaa",), re.compile(r"\bEAA[A-Za-z0-9]{20,}"), REDACTED),
    (("hzt_",), re.compile(r"\bhzt_[A-Za-z0-9_-]{16,}"), "hzt_" + REDACTED),
]
# Personal data that reaches log lines by way of URLs and database errors: the customer's number
# in the contact API's path, query strings of request lines (a dashboard search by number), and
# the values a PostgreSQL error quotes ("Key (wa_id)=(5511…) already exists").
PERSONAL_PATTERNS = [
    (("/api/contacts/",), re.compile(r"(/api/contacts/)[^/\s\"'?]+"), r"\1" + REDACTED),
    ((" http/",), re.compile(r"(\"[A-Z]+ [^\s?\"]*)\?[^\s\"]*"), r"\1"),
    (("key (",), re.compile(r"(?i)(\bkey \([^)]*\)=\()[^\n]*?(\)( already exists| is not present|\.|$))"),
     r"\1" + REDACTED + r"\2"),
]
# Settings whose values are secrets, removed wherever they appear (short ones would match too much).
SECRET_SETTINGS = ["WHATSAPP_ACCESS_TOKEN", "WHATSAPP_APP_SECRET", "SECRET_KEY", "WEBHOOK_VERIFY_TOKEN"]
MIN_SECRET_LENGTH = 8


def redact(text):
    """`text` with every known secret and secret-shaped value replaced by [REDACTED]."""
    for secret in _secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    lower = text.lower()
    for words, pattern, replacement in PATTERNS + PERSONAL_PATTERNS:
        if any(word in lower for word in words):
            text = pattern.sub(replacement, text)
    return text


def redact_path(path):
    """A request path as an access log may keep it: the contact API's number redacted."""
    return redact(path) if "/api/contacts/" in path else path


def _secrets():
    """The secret values of the settings, longest first (a secret containing another goes whole)."""
    if _secret_cache is None:
        from django.conf import settings

        if not settings.configured:
            return []
        values = (str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS)
        globals()["_secret_cache"] = sorted(
            (value for value in values if len(value) >= MIN_SECRET_LENGTH), key=len, reverse=True
        )
    return _secret_cache


_secret_cache = None


def _forget_secrets(setting, **kwargs):
    # Settings change only in tests (override_settings); production reads them once.
    if setting in SECRET_SETTINGS:
        globals()["_secret_cache"] = None


setting_changed.connect(_forget_secrets, dispatch_uid="chatbot.logs.forget_secrets")


class RedactFilter(logging.Filter):
    """Rewrites the record's message (and traceback) with secrets redacted; never drops a record."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# --- Request id ----------------------------------------------------------------------------------

_request_id = contextvars.ContextVar("request_id", default="-")


def request_id():
    return _request_id.get()


def _started(sender, environ=None, **kwargs):
    # A proxy's id (nginx $request_id, Heroku's X-Request-ID) ties our lines to its access log.
    given = (environ or {}).get("HTTP_X_REQUEST_ID", "")
    valid = given and len(given) <= 200 and given.isprintable() and " " not in given
    _request_id.set(given if valid else uuid.uuid4().hex)


def _finished(sender, **kwargs):
    _request_id.set("-")


# Signals rather than a middleware: the webhook runs with a reduced middleware list (hoztech/wsgi.py).
request_started.connect(_started, dispatch_uid="chatbot.logs.request_started")
request_finished.connect(_finished, dispatch_uid="chatbot.logs.request_finished")


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id`: the current request's id, or "-" outside a request (worker, commands)."""

    def filter(self, record):
        record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and the traceback if any."""

    def format(self, record):
        document = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = record.stack_info
        return json.dumps(document, ensure_ascii=False)
