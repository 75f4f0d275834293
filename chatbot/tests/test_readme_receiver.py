"""The README's receiver (section "Webhooks de eventos"), run as written: its signature check
accepts what the workers really post and refuses a changed body, another secret and an old or
missing timestamp, and its HTTP handler, serving on 127.0.0.1, takes a real delivery."""

import json
import re
import threading
import time
from http.client import HTTPConnection
from http.server import HTTPServer
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest

from chatbot import event_delivery, event_http, events, webhook_endpoints
from chatbot.models import EventDelivery
from chatbot.tests.receiver import Receiver

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- receiver snippet: run by chatbot/tests/test_readme_receiver.py -->"
OPTED_OUT = {"wa_id": "5511987654321", "name": "João"}

pytestmark = pytest.mark.django_db


def snippet():
    """The README's receiver, run as a module (not as __main__: it does not serve on port 8080)."""
    text = README.read_text()
    assert MARKER in text, "the README lost the receiver snippet's marker"
    code = re.match(r"\s*```python\n(.*?)\n```", text.split(MARKER, 1)[1], re.S).group(1)
    namespace = {"__name__": "readme_receiver"}
    exec(compile(code, "README.md (receiver snippet)", "exec"), namespace)  # noqa: S102 - our own README
    return namespace


@pytest.fixture
def private_targets(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def delivered(url):
    """One real event posted by the workers' code to `url`; returns the endpoint."""
    endpoint = webhook_endpoints.add(url, types=["contact.opted_out"])
    events.emit("contact.opted_out", OPTED_OUT)
    assert event_delivery.drain() == 1
    return endpoint


def test_the_signature_check_accepts_a_real_delivery_and_refuses_the_rest(private_targets):
    verify = snippet()["verify"]
    with Receiver() as receiver:
        endpoint = delivered(receiver.url)
        (request,) = receiver.wait_for(1)
    header, body = request["headers"]["X-Hoztech-Signature"], request["body"]
    assert json.loads(body)["data"] == OPTED_OUT  # the raw bytes, non-ASCII and all
    assert verify(endpoint.secret, header, body)
    # A changed body, another secret, no signature or a mangled one.
    assert not verify(endpoint.secret, header, body.replace(b"5511987654321", b"5511987654322"))
    assert not verify(endpoint.secret, header, body + b" ")
    assert not verify(webhook_endpoints.new_secret(), header, body)
    for broken in ["", "v1=" + header.split("v1=")[1], header.split(",")[0], "t=abc," + header.split(",")[1],
                   header.replace("v1=", "v0=")]:
        assert not verify(endpoint.secret, broken, body), broken
    # The same request played again more than 5 minutes later, or signed with an old timestamp.
    stamp = int(header.split(",")[0].removeprefix("t="))
    with mock.patch("time.time", return_value=stamp + 5 * 60 + 1):
        assert not verify(endpoint.secret, header, body)
    with mock.patch("time.time", return_value=stamp + 5 * 60 - 1):
        assert verify(endpoint.secret, header, body)
    old = int(time.time()) - 6 * 60
    assert not verify(endpoint.secret, event_http.signature(endpoint.secret, old, body), body)


def test_the_receivers_handler_takes_a_real_delivery_and_refuses_forgeries(private_targets):
    namespace = snippet()
    server = HTTPServer(("127.0.0.1", 0), namespace["Receiver"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        with Receiver() as spy:  # the same event to a second endpoint, which keeps the request
            endpoint = webhook_endpoints.add(url, types=["contact.opted_out"])
            webhook_endpoints.add(spy.url, types=["contact.opted_out"])
            namespace["SECRET"] = endpoint.secret
            events.emit("contact.opted_out", OPTED_OUT)
            assert event_delivery.drain() == 2
            (request,) = spy.wait_for(1)
        row = EventDelivery.objects.get(endpoint=endpoint)
        assert (row.status, row.response_status) == ("delivered", 200)
        assert namespace["seen"] == {row.event_id}
        body = request["body"]  # the same event (id and bytes) as the one the README's receiver took
        assert post(url, body, request["headers"]["X-Hoztech-Signature"]) == 401  # another endpoint's secret
        now = int(time.time())
        assert post(url, body, event_http.signature(endpoint.secret, now, body)) == 200
        assert post(url, body.replace(b"Jo", b"Ze"), event_http.signature(endpoint.secret, now, body)) == 401
        assert post(url, body, event_http.signature(endpoint.secret, now - 6 * 60, body)) == 401
        assert post(url, body, "") == 401
        # Posted again (a replay; at least once): accepted, handled once.
        webhook_endpoints.replay(EventDelivery.objects.filter(pk=row.pk))
        assert event_delivery.drain() == 1
        assert EventDelivery.objects.get(pk=row.pk).response_status == 200
        assert namespace["seen"] == {row.event_id}
    finally:
        server.shutdown()
        server.server_close()


def post(url, body, signature):
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("POST", parts.path, body=body, headers={"X-Hoztech-Signature": signature})
        return conn.getresponse().status
    finally:
        conn.close()
