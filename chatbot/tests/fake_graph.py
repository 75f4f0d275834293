"""A fake of Meta's Graph API, served over real HTTP on 127.0.0.1, that answers like Meta.

Tests use it in process (the `fake_graph` fixture); multi-process tests and benchmarks run it alone:

    python -m chatbot.tests.fake_graph --port 0 --token T [--latency-ms 100-300]

which prints its URL as the first line and serves until SIGTERM or Ctrl-C; `GET /_fake/stats` and
`POST /_fake/reset` (no token needed) let the other process read and clear its counts,
`GET /_fake/sends?since=N` lists each message send from the Nth on, and `POST /_fake/fail_next`,
`POST /_fake/drop_next` (a JSON object of the methods' keyword arguments) and
`POST /_fake/clear_scripts` script failures from the other process. Answers follow
/work/shared/cloud-api.md §7-12. Standard library only, so it runs wherever the tests run.
"""

import argparse
import base64
import contextlib
import hashlib
import itertools
import json
import random
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

# Meta's wording for the codes tests script most often; any other code gets a generic "(#code)" message.
MESSAGES = {
    0: "(#0) Authentication Error",
    1: "(#1) An unknown error occurred",
    2: "(#2) Service temporarily unavailable",
    4: "(#4) Application request limit reached",
    100: "(#100) Invalid parameter",
    190: "Error validating access token: Session has expired on Tuesday, 06-Jan-26 10:00:00 PST.",
    80007: "(#80007) Rate limit issues",
    130429: "(#130429) Rate limit hit",
    131000: "(#131000) Something went wrong",
    131016: "(#131016) Service unavailable",
    131026: "(#131026) Message undeliverable",
    131047: "(#131047) Re-engagement message",
    131049: "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
    131050: "(#131050) User has stopped receiving marketing messages",
    131056: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    131057: "(#131057) Business Account is in maintenance mode",
    132000: "(#132000) Number of parameters does not match the expected number of params",
    132001: "(#132001) Template name does not exist in the translation",
    133004: "(#133004) Server temporarily unavailable",
}

PHONE_NUMBER = {
    "display_phone_number": "+55 11 3456-7890",
    "verified_name": "HOZ TECH",
    "quality_rating": "GREEN",
    "status": "CONNECTED",
    "throughput": {"level": "STANDARD"},
    "whatsapp_business_manager_messaging_limit": "TIER_250",
    "code_verification_status": "VERIFIED",
    "name_status": "APPROVED",
    "platform_type": "CLOUD_API",
    "health_status": {"can_send_message": "AVAILABLE", "entities": []},
}

TOKEN = "test-token"

SUBSCRIBED_APP = {"id": "1234567890123456", "name": "HOZ TECH", "link": "https://hoztech.example/"}


class File(NamedTuple):
    filename: str
    content_type: str
    content: bytes


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict
    headers: dict
    json: object = None
    form: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    time: float = field(default_factory=time.monotonic)


class Answer(NamedTuple):
    status: int
    content_type: str
    body: bytes


def _json_answer(status, payload):
    return Answer(status, "application/json", json.dumps(payload).encode())


def _trace():
    return "A" + secrets.token_urlsafe(16)


def error_answer(code, http_status=400, details="", message=None, subcode=None, error_type="OAuthException"):
    """An answer in the shape of Meta's synchronous errors (cloud-api.md §12)."""
    error = {"message": message or MESSAGES.get(code, f"(#{code}) Fake Graph error"), "type": error_type,
             "code": code}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = _trace()
    return _json_answer(http_status, {"error": error})


def _unsupported(method, node):
    message = (f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, cannot be loaded "
               "due to missing permissions, or does not support this operation. Please read the Graph API "
               "documentation at https://developers.facebook.com/docs/graph-api")
    return error_answer(100, 400, message=message, subcode=33, error_type="GraphMethodException")


def _missing(name):
    return error_answer(100, 400, message=f"(#100) The parameter {name} is required.")


def _parse_multipart(content_type, raw):
    """(fields, files) of a multipart/form-data body, byte-exact (the email parser may rewrite line ends)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        return {}, {}
    fields, files = {}, {}
    for part in raw.split(b"--" + match.group(1).encode())[1:-1]:
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if not name:
            continue
        if filename:
            files[name.group(1)] = File(filename.group(1), headers.get("content-type", ""), content)
        else:
            fields[name.group(1)] = content.decode()
    return fields, files


def _cursor(index):
    return base64.urlsafe_b64encode(str(index).encode()).decode()


def _index(cursor):
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        return None


class FakeGraph:
    """A Graph API on 127.0.0.1 that records what it receives and answers like Meta.

    Configure by attribute: `wa_ids` (to → wa_id, e.g. Brazil's ninth digit), `templates`,
    `phone` (phone number fields), `subscribed`, `delay` (seconds before each answer). Script
    failures with `fail_next` and lost answers with `drop_next`. With `record=False` (the CLI),
    only counts are kept, so a long benchmark does not grow the request log without limit.
    """

    def __init__(self, token=TOKEN, version="v25.0", record=True):
        self.token = token
        self.version = version
        self.record = record
        self.wa_ids = {}
        self.templates = []
        self.phone = dict(PHONE_NUMBER)
        self.subscribed = [{"whatsapp_business_api_data": dict(SUBSCRIBED_APP)}]
        self.delay = 0.0
        self.latency = None  # (low, high) milliseconds: each answer takes a random time between, as Meta's do
        self.requests = []
        self.media = {}  # id -> File
        self.wamids = []
        self._per_second = Counter()
        # When each recipient got its first message (time.monotonic(), which every process on the
        # machine shares): the reply-latency benchmark reads it.
        self._first_send_to = {}
        # Every message send, answered or not: [biz_opaque_callback_data, to, HTTP status, wamid
        # or None, dropped, time]; the crash and fault benchmarks count copies per message from it.
        self._sends = []
        self._failures = []
        self._drops = []
        # Never reset: a reset between benchmark runs must not hand out a wamid the app already
        # stored, and the random part keeps wamids unique across fake processes sharing one database.
        self._ids = itertools.count(1)
        self._instance = secrets.token_hex(4).upper()
        self._lock = threading.Lock()
        self._connections = set()
        self.connections_seen = 0  # connections opened by clients, over the fake's life
        self._server = None
        self.url = None

    # --- lifecycle ---

    def start(self, port=0):
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval so stop() (which waits for the loop) does not add half a second per test.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self):
        if not self._server:
            return
        self._server.shutdown()
        self._server.server_close()
        # Kept-alive connections would leave handler threads waiting for a next request forever.
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- scripting ---

    def fail_next(self, code=None, http_status=400, times=1, details="", path_contains="/messages", message=None,
                  raw_status=None, body=b""):
        """Answer the next `times` matching requests with Meta's error `code`, or, with `raw_status`,
        with a raw non-JSON `body` (what a proxy in front of Meta sends on a 502)."""
        if raw_status is not None:
            answer = Answer(raw_status, "text/html", body)
        elif code is not None:
            answer = error_answer(code, http_status, details, message)
        else:
            raise ValueError("fail_next needs a Meta error code or a raw_status")
        with self._lock:
            self._failures.append([path_contains, times, answer])

    def drop_next(self, times=1, path_contains=None, midway=False):
        """Process the next matching request, then close the connection without answering: it
        reached Meta, the answer was lost. `midway` sends the headers and half the body first."""
        with self._lock:
            self._drops.append([path_contains, times, "midway" if midway else "all"])

    def add_media(self, media_id, content, mime_type):
        """Seed media, as a customer's image or voice note waiting to be downloaded."""
        with self._lock:
            self.media[str(media_id)] = File("", mime_type, content)

    # --- inspection ---

    def sent(self):
        """JSON bodies of every message send POSTed (answered or not), mark-read bodies excluded."""
        with self._lock:
            return [r.json for r in self.requests if self._is_send(r.method, r.path, r.json)]

    def per_second(self):
        """Message sends received per second of time.monotonic(), for rate-cap tests."""
        with self._lock:
            return dict(self._per_second)

    def stats(self):
        """What `GET /_fake/stats` answers: accepted sends, sends received per second, wamids issued."""
        with self._lock:
            return {"messages": len(self.wamids), "per_second": {str(k): v for k, v in self._per_second.items()},
                    "wamids": list(self.wamids), "first_send_to": dict(self._first_send_to)}

    def sends(self, since=0):
        """What `GET /_fake/sends?since=N` answers: the message sends from the Nth on."""
        with self._lock:
            return {"total": len(self._sends), "sends": self._sends[since:]}

    def clear_scripts(self):
        """What `POST /_fake/clear_scripts` does: forget scripted failures and drops not yet used."""
        with self._lock:
            self._failures.clear()
            self._drops.clear()

    def reset(self):
        """What `POST /_fake/reset` does: forget requests, counts and scripts (ids keep counting)."""
        with self._lock:
            self._sends.clear()
            self.requests.clear()
            self.wamids.clear()
            self._per_second.clear()
            self._first_send_to.clear()
            self._failures.clear()
            self._drops.clear()

    # --- answering ---

    def _is_send(self, method, path, body):
        parts = path.strip("/").split("/")
        return (method == "POST" and len(parts) == 3 and parts[0] == self.version and parts[2] == "messages"
                and isinstance(body, dict) and body.get("status") != "read")

    def _answer(self, method, target, headers, raw):
        """(Answer, drop) for one request; `drop` is None, "all" or "midway"."""
        split = urlsplit(target)
        path, query = split.path, dict(parse_qsl(split.query))
        if path.startswith("/_fake/"):
            return self._control(method, path, query, raw), None
        request = self._parse(method, path, query, headers, raw)
        with self._lock:
            if self.record:
                self.requests.append(request)
            is_send = self._is_send(method, path, request.json)
            if is_send:
                self._per_second[int(request.time)] += 1
                self._first_send_to.setdefault(str(request.json.get("to")), request.time)
            drop = self._take(self._drops, path)
        if headers.get("Authorization") != f"Bearer {self.token}":
            answer = error_answer(190, 401, subcode=463)
        else:
            with self._lock:
                answer = self._take(self._failures, path)
            answer = answer or self._route(request)
        if is_send:
            self._log_send(request, answer, drop)
        if self.latency:
            time.sleep(random.uniform(*self.latency) / 1000)  # noqa: S311 (not security)
        elif self.delay:
            time.sleep(self.delay)
        return answer, drop

    def _log_send(self, request, answer, drop):
        wamid = None
        if answer.status == 200:
            with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
                wamid = json.loads(answer.body)["messages"][0]["id"]
        with self._lock:
            self._sends.append([str(request.json.get("biz_opaque_callback_data", "")), str(request.json.get("to")),
                                answer.status, wamid, drop is not None, request.time])

    def _control(self, method, path, query, raw):
        """The `/_fake/…` endpoints, for a test or benchmark in another process (no token needed)."""
        if path == "/_fake/sends":
            try:
                since = max(0, int(query.get("since", 0)))
            except ValueError:
                since = 0
            return _json_answer(200, self.sends(since))
        if method == "POST" and path in ("/_fake/fail_next", "/_fake/drop_next"):
            try:
                options = json.loads(raw or b"{}")
                if "body" in options:
                    options["body"] = options["body"].encode()
                (self.fail_next if path == "/_fake/fail_next" else self.drop_next)(**options)
            except (ValueError, TypeError, AttributeError) as error:
                return _json_answer(400, {"error": str(error)})
            return _json_answer(200, {"scripted": True})
        if method == "POST" and path == "/_fake/clear_scripts":
            self.clear_scripts()
            return _json_answer(200, {"cleared": True})
        if path == "/_fake/reset" and method == "POST":
            self.reset()
        return _json_answer(200, self.stats())

    @staticmethod
    def _take(queue, path):
        """The payload of the first queued script whose path matches, using up one of its times."""
        for item in queue:
            path_contains, times, payload = item
            if path_contains is None or path_contains in path:
                if times <= 1:
                    queue.remove(item)
                else:
                    item[1] -= 1
                return payload
        return None

    def _parse(self, method, path, query, headers, raw):
        content_type = headers.get("Content-Type", "")
        request = Request(method, path, query, dict(headers.items()))
        if content_type.startswith("application/json"):
            try:
                request.json = json.loads(raw)
            except ValueError:
                request.json = None
        elif content_type.startswith("multipart/form-data"):
            request.form, request.files = _parse_multipart(content_type, raw)
        elif content_type.startswith("application/x-www-form-urlencoded"):
            request.form = dict(parse_qsl(raw.decode()))
        return request

    def _route(self, request):
        if request.path.startswith("/media-download/"):
            return self._download(request.path.removeprefix("/media-download/"))
        version, _, rest = request.path.strip("/").partition("/")
        parts = rest.split("/") if rest else []
        node = parts[0] if parts else version
        if version != self.version or not 1 <= len(parts) <= 2:
            return _unsupported(request.method, node)
        key = (request.method, parts[1] if len(parts) == 2 else None)
        if key == ("POST", "messages"):
            return self._messages(request.json)
        if key == ("POST", "media"):
            return self._upload(request)
        if key == ("GET", "message_templates"):
            return self._templates(request, node)
        if key == ("GET", "subscribed_apps"):
            return _json_answer(200, {"data": self.subscribed})
        if key == ("GET", None):
            if node in self.media:
                return self._media_info(node)
            if "fields" in request.query:
                return self._phone_number(node, request.query["fields"])
            return self._no_media(node)
        if key == ("DELETE", None):
            return self._delete(node)
        return _unsupported(request.method, node)

    def _messages(self, body):
        if not isinstance(body, dict):
            return error_answer(100, 400, message="(#100) Invalid JSON for postbody")
        if body.get("messaging_product") != "whatsapp":
            return _missing("messaging_product")
        if body.get("status") == "read":
            if not body.get("message_id"):
                return _missing("message_id")
            return _json_answer(200, {"success": True})
        to = body.get("to")
        if not to:
            return _missing("to")
        digits = str(to).removeprefix("+")
        with self._lock:
            wamid = f"wamid.FAKE{next(self._ids)}.{self._instance}"
            self.wamids.append(wamid)
        return _json_answer(200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": self.wa_ids.get(digits, digits)}],
            "messages": [{"id": wamid}],
        })

    def _upload(self, request):
        if request.form.get("messaging_product") != "whatsapp":
            return _missing("messaging_product")
        upload = request.files.get("file")
        if upload is None:
            return _missing("file")
        with self._lock:
            media_id = str(10**15 + next(self._ids))
            self.media[media_id] = upload
        return _json_answer(200, {"id": media_id})

    def _no_media(self, media_id):
        return error_answer(100, 404, message=f"(#100) Media ID {media_id} does not exist or has expired", subcode=33)

    def _media_info(self, media_id):
        media = self.media[media_id]
        return _json_answer(200, {
            "messaging_product": "whatsapp",
            # Like Meta's lookaside URL: another path, a signature in the query, the bearer token still required.
            "url": f"{self.url}/media-download/{media_id}?token={secrets.token_urlsafe(12)}",
            "mime_type": media.content_type,
            "sha256": hashlib.sha256(media.content).hexdigest(),
            "file_size": len(media.content),
            "id": media_id,
        })

    def _download(self, media_id):
        media = self.media.get(media_id)
        if media is None:
            return Answer(404, "text/plain", b"Not Found")
        return Answer(200, media.content_type or "application/octet-stream", media.content)

    def _delete(self, media_id):
        with self._lock:
            if self.media.pop(media_id, None) is None:
                return self._no_media(media_id)
        return _json_answer(200, {"success": True})

    def _templates(self, request, waba_id):
        try:
            limit = int(request.query.get("limit", 25))
        except ValueError:
            return error_answer(100, 400, message="(#100) Param limit must be a number")
        start = 0
        if "after" in request.query:
            after = _index(request.query["after"])
            if after is None:
                return error_answer(100, 400, message="(#100) Invalid cursor")
            start = after + 1
        page = self.templates[start:start + max(limit, 1)]
        if not page:
            return _json_answer(200, {"data": []})
        end = start + len(page) - 1
        paging = {"cursors": {"before": _cursor(start), "after": _cursor(end)}}
        if end + 1 < len(self.templates):
            query = {**request.query, "limit": limit, "after": _cursor(end)}
            paging["next"] = f"{self.url}/{self.version}/{waba_id}/message_templates?{urlencode(query)}"
        return _json_answer(200, {"data": page, "paging": paging})

    def _phone_number(self, phone_number_id, fields):
        wanted = [name.strip() for name in fields.split(",") if name.strip()]
        return _json_answer(200, {**{k: self.phone[k] for k in wanted if k in self.phone}, "id": phone_number_id})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Workers open dozens of pooled connections at once; the default backlog of 5 resets some of
    # them after the request went out, which looks like a send with an unknown outcome.
    request_queue_size = 256
    fake = None

    def handle_error(self, request, client_address):
        # A client that timed out or went away is what several tests cause on purpose; not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as Meta does: graph.py pools connections, and benchmarks need the reuse.
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle's algorithm the body waits for the client's
    # delayed ACK (40 ms) on every kept-alive request.
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        with self.server.fake._lock:
            self.server.fake._connections.add(self.connection)
            self.server.fake.connections_seen += 1

    def finish(self):
        with self.server.fake._lock:
            self.server.fake._connections.discard(self.connection)
        super().finish()

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        answer, drop = self.server.fake._answer(self.command, self.path, self.headers, raw)
        if drop == "all":
            self.close_connection = True
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if drop == "midway":
            self.wfile.write(answer.body[: len(answer.body) // 2])
            self.close_connection = True
            return
        self.wfile.write(answer.body)

    do_GET = do_POST = do_DELETE = _handle

    def log_message(self, format, *args):
        pass  # the request log is on the fake; stderr noise would bury test output


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=TOKEN)
    parser.add_argument("--version", default="v25.0")
    parser.add_argument("--latency-ms", default="", help="answer each request after LOW-HIGH ms, e.g. 100-300")
    args = parser.parse_args(argv)
    fake = FakeGraph(token=args.token, version=args.version, record=False)
    if args.latency_ms:
        low, _, high = args.latency_ms.partition("-")
        fake.latency = (float(low), float(high or low))
    fake.start(args.port)
    print(fake.url, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
