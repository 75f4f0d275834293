"""The one module that talks to Meta's Graph API (cloud-api.md §7-13).

Every call goes through `_request`: a pooled `requests.Session`, explicit timeouts, the bearer
token, and one error type, `GraphError`, carrying Meta's code, details, HTTP status and whether
retrying can help. Callers decide what to do with a failure; this module never retries.
"""

import functools
import http.client
import json
import logging
import select
import ssl
import threading
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

logger = logging.getLogger(__name__)

# (connect, read) seconds. A send that times out after the request left us may have been accepted.
TIMEOUT = (3.05, 20)
MEDIA_TIMEOUT = (3.05, 60)

_session = requests.Session()
# With trust_env, requests reads the proxy variables and ~/.netrc again on every call: a third of
# its CPU per send. Proxies from the environment are read once here instead.
_session.trust_env = False
_session.proxies.update(urllib.request.getproxies())
_session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=64))
_session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=64))


@dataclass(frozen=True)
class ErrorInfo:
    retry: bool
    explanation: str


# Meta's error codes (cloud-api.md §12) with whether a retry can help and what to tell a person.
# Meta's advice: decide by `code` and `error_data.details`, never by title or HTTP status.
ERRORS = {
    0: ErrorInfo(False, _("The access token is invalid or was revoked: generate a new system-user token.")),
    190: ErrorInfo(False, _("The access token expired: generate a new permanent system-user token.")),
    1: ErrorInfo(True, _("Meta reported an unknown error; it will be tried again.")),
    2: ErrorInfo(True, _("Meta's service is temporarily down; it will be tried again.")),
    3: ErrorInfo(False, _("The app lacks the capability for this call: check the app's permissions.")),
    4: ErrorInfo(True, _("The app reached Meta's call rate limit; sending slows down and retries.")),
    10: ErrorInfo(False, _("Permission denied: the token lacks whatsapp_business_messaging.")),
    100: ErrorInfo(False, _("Meta refused a parameter of the message: check its content.")),
    368: ErrorInfo(False, _("The account is temporarily blocked for policy violations.")),
    80007: ErrorInfo(True, _("The WhatsApp account reached Meta's rate limit; it will be tried again.")),
    130429: ErrorInfo(True, _("The number's throughput limit was reached; sending slows down and retries.")),
    130472: ErrorInfo(False, _("The customer is part of a Meta marketing experiment; the message was not sent.")),
    130497: ErrorInfo(False, _("The business cannot message customers in this country.")),
    131000: ErrorInfo(True, _("Meta had an unexpected error; it will be tried again.")),
    131005: ErrorInfo(False, _("Access denied: check the token's permissions.")),
    131008: ErrorInfo(False, _("A required parameter is missing from the message.")),
    131009: ErrorInfo(False, _("A parameter value is invalid (or the reacted message is too old or deleted).")),
    131016: ErrorInfo(True, _("Meta's service is overloaded; it will be tried again.")),
    131021: ErrorInfo(False, _("The recipient is the sending number itself.")),
    131026: ErrorInfo(False, _("The message could not be delivered: the number may not use WhatsApp, or the "
                               "customer's app is outdated or has not accepted the terms.")),
    131030: ErrorInfo(False, _("The recipient is not among the test number's allowed recipients.")),
    131031: ErrorInfo(False, _("The business account is locked: contact Meta support.")),
    131042: ErrorInfo(False, _("There is a payment problem on the WhatsApp account: check billing.")),
    131045: ErrorInfo(False, _("The number's certificate is invalid: register the number again.")),
    131047: ErrorInfo(False, _("More than 24 hours since the customer's last message: send a template.")),
    131048: ErrorInfo(False, _("Meta limited sending because of spam reports: send less and improve quality.")),
    131049: ErrorInfo(False, _("Meta did not deliver this marketing message to protect the customer's "
                               "experience; try again in a day or more.")),
    131050: ErrorInfo(False, _("The customer stopped marketing messages from this business.")),
    131051: ErrorInfo(False, _("This message type is not supported.")),
    131052: ErrorInfo(False, _("The customer's media could not be downloaded: ask them to send it again.")),
    131053: ErrorInfo(False, _("The media could not be uploaded: check its type and size.")),
    131056: ErrorInfo(True, _("Too many messages to this customer in a short time; it will be tried again.")),
    131057: ErrorInfo(True, _("The account is under maintenance; it will be tried again in a minute.")),
    132000: ErrorInfo(False, _("The number of template parameters does not match the template.")),
    132001: ErrorInfo(False, _("The template does not exist in this language or is not approved.")),
    132005: ErrorInfo(False, _("The template text is too long once its parameters are filled in.")),
    132007: ErrorInfo(False, _("The template content violates a WhatsApp policy.")),
    132012: ErrorInfo(False, _("A template parameter has the wrong format.")),
    132015: ErrorInfo(False, _("The template is paused for low quality: edit it or wait.")),
    132016: ErrorInfo(False, _("The template was disabled for good: create a new one.")),
    133004: ErrorInfo(True, _("Meta's server is unavailable; it will be tried again.")),
    133010: ErrorInfo(False, _("The phone number is not registered on the Cloud API.")),
    135000: ErrorInfo(False, _("Meta refused the message because of a parameter error.")),
}
TOKEN_ERRORS = {0, 190}
PAIR_RATE_LIMIT = 131056
THROUGHPUT_LIMIT = 130429


class GraphError(Exception):
    """A failed Graph API call.

    `retry` says whether trying again can help; `sent_unknown` says the request may have reached
    Meta (a read timeout or a dropped answer), so a retry could deliver a second copy.
    """

    def __init__(self, message, *, code=None, title="", details="", http_status=None, retry=False,
                 sent_unknown=False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.title = title
        self.details = details
        self.http_status = http_status
        self.retry = retry
        self.sent_unknown = sent_unknown

    @property
    def token_invalid(self):
        return self.code in TOKEN_ERRORS

    @property
    def explanation(self):
        info = ERRORS.get(self.code)
        if info:
            return str(info.explanation)
        return str(_("Meta could not process the request: %(message)s") % {"message": self.message})


def explain(code):
    """The plain explanation of one of Meta's error codes, or ''."""
    info = ERRORS.get(code)
    return str(info.explanation) if info else ""


def _url(path):
    return f"{settings.WHATSAPP_GRAPH_URL}/{settings.WHATSAPP_API_VERSION}/{path.lstrip('/')}"


def _error_from(response):
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
    info = ERRORS.get(code)
    retry = info.retry if info else (response.status_code >= 500 or response.status_code == 429)
    return GraphError(
        str(error.get("message") or f"HTTP {response.status_code}"),
        code=code,
        title=str(error.get("error_user_title") or error.get("type") or ""),
        details=str(data.get("details") or error.get("error_user_msg") or ""),
        http_status=response.status_code,
        retry=retry,
    )


def _request(method, path, *, url=None, timeout=None, stream=False, **kwargs):
    """One Graph API call; returns the `requests.Response` of a 2xx answer or raises GraphError."""
    headers = {"Authorization": f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}"}
    # TIMEOUT is read per call, not bound as a default argument, so tests can shorten it.
    try:
        response = _session.request(method, url or _url(path), headers=headers, timeout=timeout or TIMEOUT,
                                    stream=stream, **kwargs)
    except requests.ConnectTimeout as exc:
        raise GraphError("connection to Meta timed out", retry=True) from exc
    except requests.ConnectionError as exc:
        # Refused before sending is safe to repeat; a connection dropped mid-answer is not known.
        # requests wraps a refusal as ConnectionError(MaxRetryError(reason=NewConnectionError)).
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        refused = isinstance(reason, NewConnectionError)
        raise GraphError("connection to Meta failed", retry=True, sent_unknown=not refused) from exc
    except requests.Timeout as exc:
        raise GraphError("Meta did not answer in time", retry=True, sent_unknown=True) from exc
    except requests.RequestException as exc:
        raise GraphError(f"request to Meta failed: {type(exc).__name__}", retry=True, sent_unknown=True) from exc
    if response.status_code >= 400:
        raise _error_from(response)
    return response


def _json(response):
    try:
        return response.json()
    except ValueError as exc:
        raise GraphError("Meta answered with something that is not JSON", http_status=response.status_code,
                         retry=True, sent_unknown=True) from exc


# --- The send path: http.client on a kept-alive connection per thread ---
# `requests` costs about 1 ms of CPU per call (hooks, adapters, header merging, cookie jars), as
# much as the rest of a send: at 1,000 messages/s that is half a core. Sends, the hot path, use the
# standard library's http.client on one kept-alive connection per sending thread, with the same
# timeouts as `_request` and the same answer to the question that matters, whether the request
# may have reached Meta. Every other call goes through `_request`, and so do sends when a proxy
# applies or a response hook is installed on the session.

_local = threading.local()
_targets = {}


@dataclass(frozen=True)
class _Answer:
    status_code: int
    content: bytes

    def json(self):
        return json.loads(self.content)


def _target(base):
    """(scheme, host, port, path prefix) of the Graph URL; None when a proxy applies."""
    if base not in _targets:
        parts = urlsplit(base)
        proxied = (parts.scheme in _session.proxies or "all" in _session.proxies) and not (
            urllib.request.proxy_bypass(parts.hostname or ""))
        _targets[base] = None if proxied or parts.scheme not in ("http", "https") else (
            parts.scheme, parts.hostname, parts.port, parts.path.rstrip("/"))
    return _targets[base]


def _connection(target, timeout):
    """This thread's connection to `target`, connected: a new one when it has none, or when the
    server closed it (a kept-alive socket that reads as ready holds only the server's end of
    file). Failing here is before anything was sent."""
    conn = getattr(_local, "conn", None)
    if conn is not None and (_local.target != target or conn.sock is None
                             or select.select([conn.sock], [], [], 0)[0]):
        _close()
        conn = None
    if conn is None:
        scheme, host, port, _prefix = target
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout[0], context=_tls())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout[0])
        try:
            conn.connect()
        except TimeoutError as exc:
            raise GraphError("connection to Meta timed out", retry=True) from exc
        except OSError as exc:
            raise GraphError("connection to Meta failed", retry=True) from exc
        _local.conn, _local.target = conn, target
    conn.sock.settimeout(timeout[1])
    return conn


@functools.cache
def _tls():
    """The TLS settings of every send connection: certificates checked against requests' CA bundle."""
    return ssl.create_default_context(cafile=requests.certs.where())


def _close():
    conn, _local.conn = getattr(_local, "conn", None), None
    if conn is not None:
        conn.close()


def _post(path, body):
    """POST `body` as JSON; returns the answer of a 2xx or raises GraphError, like `_request`."""
    target = _target(settings.WHATSAPP_GRAPH_URL)
    if target is None or _session.hooks["response"]:  # a proxy, or a debugging hook that sees every call
        return _request("POST", path, json=body)
    conn = _connection(target, TIMEOUT)  # TIMEOUT read per call: tests shorten it
    headers = {"Authorization": f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}", "Content-Type": "application/json",
               "Accept": "application/json", "User-Agent": "hoztech-chatbot"}
    try:
        conn.request("POST", f"{target[3]}/{settings.WHATSAPP_API_VERSION}/{path}", body=json.dumps(body).encode(),
                     headers=headers)
        response = conn.getresponse()
        answer = _Answer(response.status, response.read())
        if response.will_close:
            _close()
    except TimeoutError as exc:
        _close()
        raise GraphError("Meta did not answer in time", retry=True, sent_unknown=True) from exc
    except (OSError, http.client.HTTPException) as exc:
        # Sent, or partly: whether Meta got it is not known.
        _close()
        raise GraphError("connection to Meta failed", retry=True, sent_unknown=True) from exc
    if answer.status_code >= 400:
        raise _error_from(answer)
    return answer


# --- Messages (cloud-api.md §7) ---


def send_message(phone_number_id, message):
    """Send a Cloud API message object; returns (wamid, wa_id Meta resolved for the recipient)."""
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", **message}
    answer = _json(_post(f"{phone_number_id}/messages", body))
    try:
        wamid = answer["messages"][0]["id"]
    except (KeyError, IndexError, TypeError) as exc:
        raise GraphError("Meta accepted the message without an ID", sent_unknown=True) from exc
    contacts = answer.get("contacts") or [{}]
    return wamid, (contacts[0] or {}).get("wa_id", "")


def mark_read(phone_number_id, wamid, typing=False):
    """Mark an inbound message read (blue ticks), optionally showing 'typing…' to the customer."""
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    if typing:
        body["typing_indicator"] = {"type": "text"}
    _request("POST", f"{phone_number_id}/messages", json=body)


# --- Media (cloud-api.md §8) ---


def upload_media(phone_number_id, content, mime_type, filename):
    files = {"file": (filename, content, mime_type)}
    data = {"messaging_product": "whatsapp", "type": mime_type}
    answer = _json(_request("POST", f"{phone_number_id}/media", files=files, data=data, timeout=MEDIA_TIMEOUT))
    return answer["id"]


def media_info(media_id):
    """{url, mime_type, sha256, file_size, id}; the URL expires after 5 minutes."""
    return _json(_request("GET", media_id))


def download_media(url, max_bytes):
    """The bytes and Content-Type at a media URL (needs the bearer token); refuses files over max_bytes."""
    response = _request("GET", "", url=url, timeout=MEDIA_TIMEOUT, stream=True)
    chunks, size = [], 0
    # The body streams after `_request` returned, so a cut or stalled download must be turned into
    # a GraphError here, or it escapes as a requests exception callers do not catch.
    try:
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                response.close()
                raise GraphError(f"media larger than {max_bytes} bytes", code=131052)
            chunks.append(chunk)
    except requests.RequestException as exc:
        response.close()
        raise GraphError(f"download from Meta broke off: {type(exc).__name__}", retry=True) from exc
    return b"".join(chunks), response.headers.get("Content-Type", "application/octet-stream")


def delete_media(media_id):
    _request("DELETE", media_id)


# --- Account (cloud-api.md §9-10) ---


def list_templates(waba_id, page_size=100):
    """Every template of the WhatsApp account, following `paging.next` to the last page."""
    answer = _json(_request("GET", f"{waba_id}/message_templates", params={"limit": page_size}))
    while True:
        yield from answer.get("data", [])
        next_url = (answer.get("paging") or {}).get("next")
        if not next_url:
            return
        answer = _json(_request("GET", "", url=next_url))


PHONE_FIELDS = (
    "display_phone_number,verified_name,quality_rating,status,throughput,"
    "whatsapp_business_manager_messaging_limit,code_verification_status,name_status,platform_type"
)


def phone_number(phone_number_id):
    return _json(_request("GET", phone_number_id, params={"fields": PHONE_FIELDS}))


def subscribed_apps(waba_id):
    return _json(_request("GET", f"{waba_id}/subscribed_apps")).get("data", [])
