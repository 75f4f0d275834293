"""The one module that talks to Meta's Graph API (cloud-api.md §7-13).

Every call goes through `_request`: the standard library's `http.client` on a kept-alive
connection per thread and host, explicit timeouts, the bearer token, and one error type,
`GraphError`, carrying Meta's code, details, HTTP status, whether retrying can help and whether
the request may have reached Meta. Callers decide what to do with a failure; this module never
retries.

Why http.client: on the send path, the busiest, `requests` cost 0.54 ms of CPU per call (hooks,
adapters, header merging, cookie jars), urllib3 0.23-0.29 ms, http.client 0.13 ms
(`bench/graph_client.py`); at 1,000 messages/s the difference is half a core. The few things
`requests` did for us are done here: keep-alive per thread, proxies from the environment (an
http:// proxy, tunnelling HTTPS), multipart uploads, streamed downloads with a size cap, and the
one question that matters after a failure, whether Meta may have received the request.
"""

import base64
import functools
import http.client
import ipaddress
import json
import select
import socket
import ssl
import threading
import urllib.request
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlencode, urlsplit

from django.conf import settings
from django.utils.translation import gettext_lazy as _

# (connect, read) seconds. A send that times out after the request left us may have been accepted.
TIMEOUT = (3.05, 20)
MEDIA_TIMEOUT = (3.05, 60)
CHUNK = 64 * 1024
# The environment's proxies, read once (as `requests` did on every call, at a third of its cost).
PROXIES = urllib.request.getproxies()


@dataclass(frozen=True)
class ErrorInfo:
    retry: bool
    explanation: str


# The customer stopped the business's marketing messages (Meta's own "stop" button): an opt-out.
MARKETING_STOPPED = 131050

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


# --- The one HTTP stack ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    status_code: int
    content_type: str
    content: bytes

    def json(self):
        return json.loads(self.content)


@dataclass(frozen=True)
class _Target:
    """Where a connection goes: the origin, and the proxy it goes through, if any."""

    scheme: str
    host: str
    port: int | None
    proxy: tuple | None = None  # (host, port, Proxy-Authorization value or "")

    @property
    def absolute_paths(self):
        """A plain-HTTP request through a proxy names the whole URL; a tunnel only the path."""
        return self.proxy is not None and self.scheme == "http"


_local = threading.local()


def _target(url):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GraphError(f"not an http(s) URL: {url[:100]}")
    proxy = PROXIES.get(parts.scheme) or PROXIES.get("all")
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        auth = ""
        if proxy_parts.username:
            pair = f"{unquote(proxy_parts.username)}:{unquote(proxy_parts.password or '')}"
            auth = "Basic " + base64.b64encode(pair.encode()).decode()
        return _Target(parts.scheme, parts.hostname, parts.port, (proxy_parts.hostname, proxy_parts.port or 8080,
                                                                  auth))
    return _Target(parts.scheme, parts.hostname, parts.port)


@functools.cache
def _tls():
    """Certificates checked against the system's trusted authorities, host names too."""
    return ssl.create_default_context()


def _open(target, timeout):
    host, port = (target.proxy[0], target.proxy[1]) if target.proxy else (target.host, target.port)
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout[0], context=_tls())
        if target.proxy:
            conn.set_tunnel(target.host, target.port, headers={"Proxy-Authorization": target.proxy[2]}
                            if target.proxy[2] else None)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout[0])
    try:
        conn.connect()
    except TimeoutError as exc:
        raise GraphError("connection to Meta timed out", retry=True) from exc
    except OSError as exc:
        raise GraphError("connection to Meta failed", retry=True) from exc
    return conn


def _connection(target, timeout):
    """This thread's connection to `target`, connected: a new one when it has none, or when the
    server closed it (a kept-alive socket that reads as ready holds only the server's end of
    file). Failing here is before anything was sent."""
    connections = _local.__dict__.setdefault("connections", {})
    conn = connections.get(target)
    if conn is not None and (conn.sock is None or select.select([conn.sock], [], [], 0)[0]):
        _drop(target)
        conn = None
    if conn is None:
        conn = connections[target] = _open(target, timeout)
    conn.sock.settimeout(timeout[1])
    return conn


def _drop(target):
    conn = _local.__dict__.setdefault("connections", {}).pop(target, None)
    if conn is not None:
        conn.close()


def _read(target, response, max_bytes):
    if max_bytes is None:
        return response.read()
    chunks, size = [], 0
    while chunk := response.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            _drop(target)  # the rest of the body is not wanted: the connection cannot be reused
            raise GraphError(f"media larger than {max_bytes} bytes", code=131052)
        chunks.append(chunk)
    if response.length:  # read in pieces, a body cut short ends quietly: bytes were still due
        raise http.client.IncompleteRead(b"".join(chunks), response.length)
    return b"".join(chunks)


def _request(method, url, *, body=None, content_type="application/json", timeout=None, max_bytes=None):
    """One call; returns the `_Answer` of a 2xx or raises GraphError (`sent_unknown` once the
    request may have left). `body`: a JSON-able value, or bytes sent as `content_type`."""
    target = _target(url)
    conn = _connection(target, timeout or TIMEOUT)  # TIMEOUT read per call: tests shorten it
    parts = urlsplit(url)
    path = url if target.absolute_paths else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Authorization": f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}", "Accept": "application/json",
               "User-Agent": "hoztech-chatbot"}
    if target.absolute_paths and target.proxy[2]:
        headers["Proxy-Authorization"] = target.proxy[2]
    if body is not None:
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        answer = _Answer(response.status, response.getheader("Content-Type", "application/octet-stream"),
                         _read(target, response, max_bytes))
        if response.will_close:
            _drop(target)
    except GraphError:
        raise
    except TimeoutError as exc:
        _drop(target)
        raise GraphError("Meta did not answer in time", retry=True, sent_unknown=True) from exc
    except (OSError, http.client.HTTPException) as exc:
        # Sent, or partly: whether Meta got it is not known.
        _drop(target)
        raise GraphError("connection to Meta failed", retry=True, sent_unknown=True) from exc
    if answer.status_code >= 400:
        raise _error_from(answer)
    return answer


def _url(path, **params):
    url = f"{settings.WHATSAPP_GRAPH_URL}/{settings.WHATSAPP_API_VERSION}/{path.lstrip('/')}"
    return f"{url}?{urlencode(params)}" if params else url


def _from_meta(url):
    """`url`, taken from one of Meta's answers (a media file, the next page of a list), when we may
    fetch it with our token: on the Graph API's own origin, or over HTTPS on a host whose every
    address is public. Never a private, loopback or link-local address."""
    parts, graph = urlsplit(url), urlsplit(settings.WHATSAPP_GRAPH_URL)
    if (parts.scheme, parts.hostname, parts.port) == (graph.scheme, graph.hostname, graph.port):
        return url
    if parts.scheme != "https" or not parts.hostname:
        raise GraphError(f"Meta's answer named a URL that is not https: {url[:100]}")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443,
                                                                 proto=socket.IPPROTO_TCP)}
    except OSError as exc:
        raise GraphError(f"{parts.hostname} could not be resolved", retry=True) from exc
    if not all(ipaddress.ip_address(address.split("%")[0]).is_global for address in addresses):
        raise GraphError(f"Meta's answer named a private address ({parts.hostname}); not fetched")
    return url


def _error_from(answer):
    try:
        error = answer.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
    info = ERRORS.get(code)
    retry = info.retry if info else (answer.status_code >= 500 or answer.status_code == 429)
    return GraphError(
        str(error.get("message") or f"HTTP {answer.status_code}"),
        code=code,
        title=str(error.get("error_user_title") or error.get("type") or ""),
        details=str(data.get("details") or error.get("error_user_msg") or ""),
        http_status=answer.status_code,
        retry=retry,
    )


def _json(answer):
    try:
        return answer.json()
    except ValueError as exc:
        raise GraphError("Meta answered with something that is not JSON", http_status=answer.status_code,
                         retry=True, sent_unknown=True) from exc


def _multipart(fields, filename, content, mime_type):
    """A multipart/form-data body (RFC 7578) of text `fields` and one file; (body, content type)."""
    boundary = uuid.uuid4().hex
    # The file name is the uploader's: it must not end the header line or the quoted string.
    safe_name = "".join(ch for ch in filename if ch.isprintable() and ch not in '"\\') or "file"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
                 f"Content-Type: {mime_type}\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# --- Messages (cloud-api.md §7) ---


def send_message(phone_number_id, message):
    """Send a Cloud API message object; returns (wamid, wa_id Meta resolved for the recipient)."""
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", **message}
    answer = _json(_request("POST", _url(f"{phone_number_id}/messages"), body=body))
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
    _request("POST", _url(f"{phone_number_id}/messages"), body=body)


# --- Media (cloud-api.md §8) ---


def upload_media(phone_number_id, content, mime_type, filename):
    body, content_type = _multipart({"messaging_product": "whatsapp", "type": mime_type}, filename, content,
                                    mime_type)
    answer = _json(_request("POST", _url(f"{phone_number_id}/media"), body=body, content_type=content_type,
                            timeout=MEDIA_TIMEOUT))
    return answer["id"]


def media_info(media_id):
    """{url, mime_type, sha256, file_size, id}; the URL expires after 5 minutes."""
    return _json(_request("GET", _url(media_id)))


def download_media(url, max_bytes):
    """The bytes and Content-Type at a media URL (needs the bearer token); refuses files over max_bytes."""
    try:
        answer = _request("GET", _from_meta(url), timeout=MEDIA_TIMEOUT, max_bytes=max_bytes)
    except GraphError as error:
        # Nothing is sent twice by downloading again: a cut download can always be retried.
        if error.sent_unknown:
            raise GraphError(f"download from Meta broke off: {error.message}", retry=True) from error
        raise
    return answer.content, answer.content_type


def delete_media(media_id):
    _request("DELETE", _url(media_id))


# --- Account (cloud-api.md §9-10) ---


def list_templates(waba_id, page_size=100):
    """Every template of the WhatsApp account, following `paging.next` to the last page."""
    answer = _json(_request("GET", _url(f"{waba_id}/message_templates", limit=page_size)))
    while True:
        yield from answer.get("data", [])
        next_url = (answer.get("paging") or {}).get("next")
        if not next_url:
            return
        answer = _json(_request("GET", _from_meta(next_url)))


PHONE_FIELDS = (
    "display_phone_number,verified_name,quality_rating,status,throughput,"
    "whatsapp_business_manager_messaging_limit,code_verification_status,name_status,platform_type"
)


def phone_number(phone_number_id):
    return _json(_request("GET", _url(phone_number_id, fields=PHONE_FIELDS)))


def subscribed_apps(waba_id):
    return _json(_request("GET", _url(f"{waba_id}/subscribed_apps"))).get("data", [])
