"""A system receiving our event webhooks, on 127.0.0.1: it records every POST (headers and raw
body) and answers as told (a status, a delay, a redirect), so tests see what a real receiver would."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self):
        self.requests = []
        self.answers = []  # (status, delay seconds, body) used one per request, then `default`
        self.default = (200, 0.0, b"ok")
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    status, delay, answer = receiver.answers.pop(0) if receiver.answers else receiver.default
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "at": time.time()})
                    receiver.arrived.notify_all()
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def answer(self, *answers):
        """Queue answers: each a status, or (status, delay) or (status, delay, body)."""
        with self.lock:
            for answer in answers:
                answer = answer if isinstance(answer, tuple) else (answer,)
                status, delay, body = (*answer, 0.0, b"")[:3]
                self.answers.append((status, delay, body))

    def events(self):
        """The JSON bodies received, in order."""
        with self.lock:
            return [json.loads(request["body"]) for request in self.requests]

    def wait_for(self, count, timeout=15):
        """Block until `count` requests arrived; returns them."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < count and time.monotonic() < deadline:
                self.arrived.wait(deadline - time.monotonic())
            return list(self.requests)
