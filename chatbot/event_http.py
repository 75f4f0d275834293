"""One attempt at posting an event (event_delivery's threads call `post`): the connection made
only to an address checked at that moment (private, loopback, link-local, multicast and reserved
ones refused unless WEBHOOK_ALLOW_PRIVATE_TARGETS; IPv4 inside IPv6 unwrapped), kept alive per
thread and endpoint, signed, ended after TIMEOUT seconds whatever the receiver does (a watchdog),
no redirect followed, at most READ_AT_MOST bytes of the answer read."""

import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

TIMEOUT = 10
KEEP_ANSWER = 1024
READ_AT_MOST = 64 * 1024
USER_AGENT = "Hoztech-Webhooks/1.0"


class TargetRefused(OSError):
    """The endpoint's host resolved to an address events may not go to."""


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def public(address):
    """Whether events may go to `address`: a global one, also once the IPv4 address an IPv6 one
    carries (mapped, 6to4, NAT64) is taken out of it."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6:
        ip = ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else ip)
    return ip.is_global and not ip.is_multicast


def resolve(host, port):
    """The addresses to try for `host`: all of them allowed, or TargetRefused."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for *_rest, sockaddr in infos:
            if not public(sockaddr[0]):
                raise TargetRefused(f"{host} resolves to {sockaddr[0]}, a private address; "
                                    "set WEBHOOK_ALLOW_PRIVATE_TARGETS to allow it")
    return infos


def connect_checked(address, timeout=None, source_address=None):
    """socket.create_connection, to an address `resolve` allowed: the one checked is the one used."""
    last = OSError(f"no address for {address[0]}")
    for family, kind, proto, _name, sockaddr in resolve(*address):
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last


class CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = connect_checked


class CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = connect_checked


# --- One attempt ----------------------------------------------------------------------------------


@dataclass
class Attempt:
    ok: bool
    status: int | None = None
    duration_ms: int = 0
    answer: str = ""
    error: str = ""
    # The endpoint could not be reached (refused, timeout, no route): its next rows wait.
    unreachable: bool = False


def signature(secret, timestamp, body):
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


_local = threading.local()
_watched = {}  # token → (socket, deadline): attempts the watchdog ends at TIMEOUT
_watch_lock = threading.Lock()
_watchdog_started = threading.Lock()


def _watchdog():
    """Ends attempts still running after TIMEOUT: a receiver dripping its answer byte by byte
    would pass every socket timeout. Under the lock, so never the next attempt's socket."""
    while True:
        time.sleep(0.5)
        with _watch_lock:
            now = time.monotonic()
            for token, (sock, deadline) in list(_watched.items()):
                if deadline < now:
                    del _watched[token]
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)


def watch(token, sock, deadline):
    if not getattr(_watchdog, "running", False):
        with _watchdog_started:
            if not getattr(_watchdog, "running", False):
                threading.Thread(target=_watchdog, name="event-watchdog", daemon=True).start()
                _watchdog.running = True
    with _watch_lock:
        _watched[token] = (sock, deadline)


def unwatch(token):
    with _watch_lock:
        _watched.pop(token, None)


def connection_for(parts):
    """This thread's kept-alive connection to the endpoint's origin (a new one when the address
    it was made to is no longer allowed)."""
    pool = getattr(_local, "connections", None)
    if pool is None:
        pool = _local.connections = {}
    key = (parts.scheme, parts.hostname, parts.port)
    conn = pool.get(key)
    if conn is not None and conn.sock is not None and not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        try:
            allowed = public(conn.sock.getpeername()[0])
        except OSError:
            allowed = False
        if not allowed:
            drop(key)
            conn = None
    if conn is None:
        kind = CheckedHTTPSConnection if parts.scheme == "https" else CheckedHTTPConnection
        conn = pool[key] = kind(parts.hostname, parts.port, timeout=TIMEOUT)
    return key, conn


def drop(key):
    conn = _local.connections.pop(key, None)
    if conn is not None:
        conn.close()


# A kept-alive connection the receiver closed while it was idle fails this way before any answer.
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


def post(url, secret, *, event_id, event_type, body):
    """POST one event's `body` (str) to `url`, signed with `secret`; never raises."""
    parts = urlsplit(url)
    data = body.encode()
    headers = {
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "X-Hoztech-Event": event_type, "X-Hoztech-Delivery": event_id,
        "X-Hoztech-Signature": signature(secret, int(time.time()), data),
    }
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    try:
        status, answer = exchange(parts, path, data, headers)
    except TargetRefused as exc:
        return Attempt(False, error=str(exc)[:255], unreachable=True)
    except (OSError, http.client.HTTPException, ValueError) as exc:  # UnicodeError: a host's label too long
        took = int((time.monotonic() - started) * 1000)
        timed_out = isinstance(exc, TimeoutError) or took >= TIMEOUT * 1000
        error = f"no answer within {TIMEOUT} s" if timed_out else f"{type(exc).__name__}: {exc}"
        return Attempt(False, duration_ms=took, error=error[:255], unreachable=True)
    took = int((time.monotonic() - started) * 1000)
    text = answer[:KEEP_ANSWER].decode("utf-8", "replace")
    if 200 <= status < 300:
        return Attempt(True, status, took, text)
    error = f"redirected (HTTP {status}); redirects are not followed" if 300 <= status < 400 else f"HTTP {status}"
    return Attempt(False, status, took, text, error)


def exchange(parts, path, data, headers):
    """(status, at most READ_AT_MOST + 1 bytes of the answer), over this thread's connection: once
    more on a new one when a kept-alive connection turns out closed."""
    key, conn = connection_for(parts)
    if conn.sock is None:
        return exchange_on(key, conn, path, data, headers)
    try:
        return exchange_on(key, conn, path, data, headers)
    except STALE:
        key, conn = connection_for(parts)
        return exchange_on(key, conn, path, data, headers)


def exchange_on(key, conn, path, data, headers):
    deadline, token = time.monotonic() + TIMEOUT, object()
    try:
        if conn.sock is None:
            conn.connect()
        # The socket itself: http.client forgets `conn.sock` while reading an answer that closes.
        watch(token, conn.sock, deadline)
        conn.request("POST", path, body=data, headers=headers)
        response = conn.getresponse()
        answer = response.read(READ_AT_MOST + 1)
        if time.monotonic() >= deadline:  # cut by the watchdog: what was read is not the answer
            raise TimeoutError(f"no answer within {TIMEOUT} s")
    except BaseException:
        drop(key)
        raise
    finally:
        unwatch(token)
    # A 1xx other than 100 (103 Early Hints) is no final answer: the real one would come next, on
    # this connection, and be taken for the next event's.
    if response.status < 200 or len(answer) > READ_AT_MOST or response.will_close:
        drop(key)
    return response.status, answer
