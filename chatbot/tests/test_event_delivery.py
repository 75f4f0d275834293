"""Event webhooks posted to a real receiver on 127.0.0.1 (chatbot/event_delivery.py, design.md
"Event webhooks"): the signed contract, retries on their schedule, timeouts and the watchdog, no
redirects, bounded answers, giving up after 24 h, replay, disabling, and private addresses refused
when the connection is made, not only when the endpoint was saved."""

import functools
import http.client
import json
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from chatbot import campaign_sending, event_delivery, event_http, events, webhook_endpoints
from chatbot.models import Campaign, Contact, EventDelivery, PhoneNumber, WebhookEndpoint
from chatbot.tests.receiver import Receiver
from chatbot.tests.test_readme_receiver import snippet

pytestmark = pytest.mark.django_db



@pytest.fixture(autouse=True)
def _deliveries(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver is on 127.0.0.1
    events.forget_endpoints()  # nor the endpoints cached by the test before
    yield
    # Nor this thread's kept-alive connections (to a receiver now gone, made with another TIMEOUT).
    for key in list(getattr(event_http._local, "connections", {})):
        event_http.drop(key)


@pytest.fixture
def clock(monkeypatch):
    """Time stopped: `clock.now` is what timezone.now() answers; move it by hand."""
    class Clock:
        now = timezone.now()

        def move(self, **delta):
            self.now += timedelta(**delta)

    stopped = Clock()
    monkeypatch.setattr(timezone, "now", lambda: stopped.now)
    return stopped


def record(event_type="message.received", data=None, contact=None):
    """One event, recorded as a change records it; returns its id."""
    with transaction.atomic():
        return events.emit(event_type, data if data is not None else {"text": "Olá! Pedido nº 42 ✓"},
                           contact=contact)


def rows():
    return list(EventDelivery.objects.order_by("pk"))


def due_now():
    """The time travel of a retry: what waits is due at once."""
    EventDelivery.objects.filter(status="pending").update(next_attempt_at=timezone.now())


@functools.cache
def documented_verify():
    """`verify(secret, header, body)` of the README's receiver snippet, as written there."""
    return snippet()["verify"]


def verified(secret, request):
    """The receiver's check, with the README's recipe: HMAC-SHA256(secret, "<t>." + raw body), t recent."""
    return documented_verify()(secret, request["headers"]["X-Hoztech-Signature"], request["body"])


def delivery_ids(receiver):
    return [request["headers"]["X-Hoztech-Delivery"] for request in receiver.requests]


# --- The contract: body, headers, signature ---------------------------------------------------------------


def test_an_event_is_posted_as_signed_json_with_its_id_in_the_headers(receiver):
    endpoint = webhook_endpoints.add(receiver.url)
    event_id = record("message.received", {"text": "Olá! Pedido nº 42 ✓"})
    assert event_delivery.drain() == 1

    [request] = receiver.requests
    body = json.loads(request["body"])
    assert body["id"] == event_id and event_id.startswith("evt_")
    assert body["type"] == "message.received" and body["data"] == {"text": "Olá! Pedido nº 42 ✓"}
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    headers = request["headers"]
    assert headers["X-Hoztech-Event"] == "message.received"
    assert headers["X-Hoztech-Delivery"] == body["id"]
    assert headers["Content-Type"] == "application/json"
    assert request["path"] == "/hooks"
    assert "Olá! Pedido nº 42 ✓".encode() in request["body"]  # UTF-8, not \u escapes
    assert verified(endpoint.secret, request)
    # The check is not vacuous: another secret, or a byte changed, fails it.
    assert not verified("whsec_other", request)
    assert not verified(endpoint.secret, {**request, "body": request["body"].replace(b"42", b"43")})

    [row] = rows()
    assert (row.status, row.attempts, row.response_status, row.response_body, row.error) == (
        "delivered", 1, 200, "ok", "")
    assert row.delivered_at is not None and row.next_attempt_at is None and row.duration_ms is not None
    assert event_delivery.drain() == 0  # delivered: never sent again


@pytest.mark.parametrize("event_type", events.TYPES)
def test_every_event_type_is_delivered_with_its_type(receiver, event_type):
    endpoint = webhook_endpoints.add(receiver.url, types=[event_type])
    event_id = record(event_type, {"example": event_type})
    event_delivery.drain()
    [request] = receiver.requests
    assert request["headers"]["X-Hoztech-Event"] == event_type
    assert json.loads(request["body"]) | {"created_at": None} == {
        "id": event_id, "type": event_type, "created_at": None, "data": {"example": event_type}}
    assert verified(endpoint.secret, request)


def test_an_endpoint_gets_only_the_types_it_subscribed_to_and_two_endpoints_the_same_id():
    with Receiver() as shop, Receiver() as crm:
        only_opt_outs = webhook_endpoints.add(shop.url, types=["contact.opted_out"])
        everything = webhook_endpoints.add(crm.url)
        received = record("message.received")
        opted_out = record("contact.opted_out", {"wa_id": "5511987654321", "name": "Joana"})
        event_delivery.drain()

        assert delivery_ids(shop) == [opted_out]
        assert sorted(delivery_ids(crm)) == sorted([received, opted_out])
        [to_shop] = shop.requests
        [to_crm] = [request for request in crm.requests if request["headers"]["X-Hoztech-Delivery"] == opted_out]
        assert to_shop["body"] == to_crm["body"]  # one event, the same bytes to each
        assert verified(only_opt_outs.secret, to_shop) and verified(everything.secret, to_crm)
        assert not verified(everything.secret, to_shop)  # each endpoint its own secret
    assert EventDelivery.objects.filter(status="delivered").count() == 3


def test_retries_and_replay_send_the_same_id_and_the_same_bytes(receiver):
    endpoint = webhook_endpoints.add(receiver.url)
    event_id = record()
    receiver.answer(500, 503)
    for _ in range(3):
        event_delivery.drain()
        due_now()
    [row] = rows()
    assert row.status == "delivered" and row.attempts == 3
    webhook_endpoints.replay(EventDelivery.objects.filter(pk=row.pk))
    assert event_delivery.drain() == 1

    assert delivery_ids(receiver) == [event_id] * 4
    assert len({request["body"] for request in receiver.requests}) == 1
    assert all(verified(endpoint.secret, request) for request in receiver.requests)
    row.refresh_from_db()
    assert row.status == "delivered" and row.attempts == 4


def test_a_campaign_that_finished_sends_campaign_finished(receiver):
    webhook_endpoints.add(receiver.url, types=["campaign.finished"])
    now = timezone.now()
    campaign = Campaign.objects.create(name="Aviso", phone_number=PhoneNumber.objects.default(),
                                       template_name="aviso", template_language="pt_BR", scheduled_at=now,
                                       started_at=now, status=Campaign.Status.RUNNING)
    with transaction.atomic():
        campaign_sending.finish_if_done(campaign, now)
    event_delivery.drain()
    [body] = receiver.events()
    assert body["type"] == "campaign.finished"
    assert (body["data"]["id"], body["data"]["status"]) == (campaign.pk, "finished")


# --- Retries: the schedule, giving up after 24 h, replay --------------------------------------------------


def test_500s_are_retried_after_10_s_30_s_2_min_10_min_then_hourly(receiver, clock):
    webhook_endpoints.add(receiver.url)
    event_id = record()
    receiver.answer(*[(500, 0.0, b"down for maintenance")] * 6)
    for attempt, delay in enumerate([10, 30, 120, 600, 3600, 3600], start=1):
        assert event_delivery.drain() == 1
        [row] = rows()
        assert (row.status, row.attempts, row.response_status, row.error) == ("pending", attempt, 500, "HTTP 500")
        assert row.response_body == "down for maintenance"
        waits = (row.next_attempt_at - clock.now).total_seconds()
        assert delay * 0.9 <= waits <= delay * 1.1, (attempt, waits)  # with its jitter
        clock.move(seconds=waits - 1)
        assert event_delivery.drain() == 0  # not before its time
        clock.move(seconds=1)
    assert event_delivery.drain() == 1
    [row] = rows()
    assert (row.status, row.attempts, row.response_status, row.error) == ("delivered", 7, 200, "")
    assert delivery_ids(receiver) == [event_id] * 7


def test_an_event_is_given_up_after_24_h_and_can_be_replayed(receiver, clock):
    endpoint = webhook_endpoints.add(receiver.url)
    refused = record()
    receiver.answer(400)  # the receiver refuses this one event, and keeps refusing it
    event_delivery.drain()
    clock.move(hours=23)
    accepted = record()
    receiver.answer(400, 200)  # ... while it takes the others: the endpoint is not failing
    event_delivery.drain()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None

    clock.move(hours=1, seconds=1)
    receiver.answer(400)
    assert event_delivery.drain() == 1
    row = EventDelivery.objects.get(event_id=refused)
    assert (row.status, row.next_attempt_at, row.response_status) == ("failed", None, 400)
    clock.move(hours=2)
    assert event_delivery.drain() == 0  # failed: no more attempts

    endpoint.refresh_from_db()
    assert endpoint.active  # one event failing is not the endpoint failing
    assert webhook_endpoints.replay(EventDelivery.objects.filter(pk=row.pk)) == 1
    assert event_delivery.drain() == 1
    row.refresh_from_db()
    assert row.status == "delivered" and row.delivered_at == clock.now
    assert delivery_ids(receiver) == [refused, refused, accepted, refused, refused]
    assert len({request["body"] for request in receiver.requests
                if request["headers"]["X-Hoztech-Delivery"] == refused}) == 1


# --- Disabling after 24 h of failures ------------------------------------------------------------------


def test_24_h_of_failures_disable_the_endpoint_until_it_is_enabled_again(receiver, clock):
    endpoint = webhook_endpoints.add(receiver.url)
    receiver.default = (500, 0.0, b"")
    first = record()
    event_delivery.drain()
    endpoint.refresh_from_db()
    assert endpoint.failing_since == clock.now and endpoint.active
    started_failing = clock.now

    clock.move(hours=12)
    second = record()
    event_delivery.drain()
    clock.move(hours=11, minutes=59)
    due_now()
    event_delivery.drain()
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.failing_since == started_failing  # 23 h 59 min: not yet

    clock.move(minutes=1, seconds=1)
    due_now()
    event_delivery.drain()
    endpoint.refresh_from_db()
    assert not endpoint.active
    assert (endpoint.disabled_reason, endpoint.disabled_at) == (WebhookEndpoint.DISABLED_FAILING, clock.now)
    assert EventDelivery.objects.get(event_id=first).status == "failed"
    assert EventDelivery.objects.get(event_id=second).status == "pending"

    posted = len(receiver.requests)
    receiver.default = (200, 0.0, b"ok")
    clock.move(hours=2)
    due_now()
    assert event_delivery.drain() == 0  # disabled: its rows wait
    assert len(receiver.requests) == posted

    webhook_endpoints.set_active(endpoint, True)
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.failing_since is None and endpoint.disabled_reason == ""
    assert event_delivery.drain() == 1
    assert EventDelivery.objects.get(event_id=second).status == "delivered"
    assert delivery_ids(receiver)[-1] == second


def test_a_success_ends_the_failing_streak(receiver, clock):
    endpoint = webhook_endpoints.add(receiver.url)
    receiver.answer(500)
    record()
    event_delivery.drain()
    clock.move(hours=1)
    due_now()
    event_delivery.drain()  # delivered this time
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None

    clock.move(hours=1)
    receiver.default = (500, 0.0, b"")
    record()
    event_delivery.drain()
    restarted = clock.now
    clock.move(hours=23)  # 25 h after the first failure, 23 h after the last success
    due_now()
    event_delivery.drain()
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.failing_since == restarted


# --- Timeouts, the watchdog, redirects, bounded answers --------------------------------------------------


def test_a_timeout_is_a_failure_and_the_endpoints_next_row_waits(receiver, monkeypatch):
    monkeypatch.setattr(event_http, "TIMEOUT", 1)
    webhook_endpoints.add(receiver.url)
    ids = [record() for _ in range(2)]
    receiver.answer((200, 2.0, b"too late"))
    started = time.monotonic()
    assert event_delivery.drain() == 2
    assert time.monotonic() - started < 2  # neither the receiver's 2 s nor 2 × 1 s
    time.sleep(0.3)
    assert len(receiver.requests) == 1  # the other one was not tried

    timed_out, waiting = sorted(rows(), key=lambda row: -row.attempts)
    assert (timed_out.status, timed_out.attempts, timed_out.response_status) == ("pending", 1, None)
    assert timed_out.error == "no answer within 1 s" and timed_out.duration_ms >= 1000
    assert 9 <= (timed_out.next_attempt_at - timed_out.last_attempt_at).total_seconds() <= 11
    # Back with it, not counted as tried.
    assert (waiting.status, waiting.attempts, waiting.error) == ("pending", 0, "")
    assert waiting.next_attempt_at == timed_out.next_attempt_at

    due_now()
    assert event_delivery.drain() == 2  # on a fresh connection, not the one that timed out
    assert {row.status for row in rows()} == {"delivered"}
    assert Counter(delivery_ids(receiver)) == Counter([timed_out.event_id, *ids])


def test_an_unreachable_endpoint_with_many_rows_waiting_is_recorded():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again: nothing listens there
    endpoint = webhook_endpoints.add(f"http://127.0.0.1:{port}/hooks")
    for _ in range(5):
        record()
    event_delivery.drain()
    tried, *waiting = sorted(rows(), key=lambda row: -row.attempts)
    assert tried.attempts == 1 and "ConnectionRefusedError" in tried.error
    assert all(row.attempts == 0 and row.next_attempt_at == tried.next_attempt_at for row in waiting)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None


def test_a_refused_connection_is_a_failure_and_the_next_row_waits():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    webhook_endpoints.add(f"http://127.0.0.1:{port}/hooks")
    record(), record()
    event_delivery.drain()
    tried, waiting = sorted(rows(), key=lambda row: -row.attempts)
    assert tried.attempts == 1 and "ConnectionRefusedError" in tried.error
    assert waiting.attempts == 0 and waiting.next_attempt_at == tried.next_attempt_at


class RawReceiver:
    """A receiver written on a bare socket, for answers no HTTP server would give: each request on
    a connection (kept alive) is answered by `script(n)` (n counts from 0 across connections), a
    list of (bytes, pause after them)."""

    def __init__(self, script):
        self.script, self.count, self.lock = script, 0, threading.Lock()
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hooks"

    def __enter__(self):
        threading.Thread(target=self.accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.close()

    def accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def serve(self, client):
        with client, client.makefile("rb") as incoming:
            try:
                while True:
                    head = [incoming.readline()]
                    while head[-1] not in (b"\r\n", b""):
                        head.append(incoming.readline())
                    if head[-1] == b"":
                        return
                    length = next((int(line.split(b":")[1]) for line in head
                                   if line.lower().startswith(b"content-length:")), 0)
                    incoming.read(length)
                    with self.lock:
                        number, self.count = self.count, self.count + 1
                    for data, pause in self.script(number):
                        client.sendall(data)
                        time.sleep(pause)
            except OSError:
                return  # the sender hung up


def drip(data, every=0.3):
    return [(bytes([byte]), every) for byte in data]


@pytest.mark.parametrize("answer", [
    pytest.param(drip(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), id="status line"),
    pytest.param([(b"HTTP/1.1 200 OK\r\n", 0), *drip(b"X-Slow: " + b"a" * 10 + b"\r\n")], id="headers"),
    pytest.param([(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", 0), *drip(b"a" * 12)],
                 id="body without length"),
])
def test_a_receiver_dripping_its_answer_is_cut_at_timeout(monkeypatch, answer):
    monkeypatch.setattr(event_http, "TIMEOUT", 1)
    with RawReceiver(lambda number: answer) as dripping:
        webhook_endpoints.add(dripping.url)
        record()
        started = time.monotonic()
        event_delivery.drain()
        took = time.monotonic() - started
    [row] = rows()
    assert row.status == "pending" and row.error == "no answer within 1 s"
    assert took < 1 + 1.5  # TIMEOUT and the watchdog's half-second look, not the whole drip


def test_an_interim_1xx_answer_does_not_shift_the_answers_of_the_next_events():
    answers = {
        # Early hints at once, the answer once the event is handled.
        0: [(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n", 0.2),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0)],
        1: [(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail", 0)],
    }
    with RawReceiver(lambda number: answers.get(number, answers[0])) as early_hints:
        webhook_endpoints.add(early_hints.url)
        first, second = record(), record()
        event_delivery.drain()
    assert EventDelivery.objects.get(event_id=second).status == "pending"  # it answered 500
    assert EventDelivery.objects.get(event_id=second).response_status == 500
    assert EventDelivery.objects.get(event_id=first).status in ("pending", "delivered")


def test_a_redirect_is_not_followed_and_counts_as_a_failure(receiver):
    webhook_endpoints.add(receiver.url)
    event_id = record()
    receiver.answer(302)  # to http://127.0.0.1:9/elsewhere: followed, it would be refused there
    event_delivery.drain()
    [row] = rows()
    assert (row.status, row.attempts, row.response_status) == ("pending", 1, 302)
    assert row.error == "redirected (HTTP 302); redirects are not followed"
    assert delivery_ids(receiver) == [event_id]
    due_now()
    event_delivery.drain()
    row.refresh_from_db()
    assert row.status == "delivered"


def test_a_huge_answer_is_read_only_up_to_read_at_most_and_its_first_kilobyte_kept(receiver, monkeypatch):
    reads = []
    real_read = http.client.HTTPResponse.read

    def read(response, amt=None):
        data = real_read(response, amt)
        reads.append((amt, len(data)))
        return data

    monkeypatch.setattr(http.client.HTTPResponse, "read", read)
    webhook_endpoints.add(receiver.url)
    receiver.answer((200, 0.0, b"x" * 1_000_000))
    record(), record()
    event_delivery.drain()

    assert reads and all(amt is not None and amt <= event_http.READ_AT_MOST + 1 for amt, _ in reads)
    assert sum(size for _, size in reads) <= event_http.READ_AT_MOST + 1 + len(b"ok")
    huge, after = rows()
    assert huge.status == "delivered" and huge.response_body == "x" * event_http.KEEP_ANSWER
    # The connection left with 900 KB unread is not used again: the next answer is its own.
    assert after.status == "delivered" and after.response_body == "ok"


def test_the_first_kilobyte_of_an_error_answer_is_kept(receiver):
    webhook_endpoints.add(receiver.url)
    receiver.answer((422, 0.0, ("é" * 700).encode()))  # 1,400 bytes, cut inside a character
    record()
    event_delivery.drain()
    [row] = rows()
    assert row.response_status == 422 and row.error == "HTTP 422"
    assert row.response_body.startswith("é" * 512) and len(row.response_body.encode()) <= 1024 + 2


# --- Private addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hooks", "http://localhost:8000/hooks", "http://127.1/hooks", "http://10.1.2.3/hooks",
    "http://192.168.0.10/hooks", "http://169.254.169.254/latest/meta-data/", "http://0.0.0.0/hooks",
    "http://[::1]/hooks", "http://[::ffff:127.0.0.1]/hooks", "http://[::ffff:169.254.169.254]/hooks",
    "http://[fe80::1]/hooks", "http://[fd00::1]/hooks", "https://100.64.0.1/hooks",
])
def test_a_private_address_is_refused_when_the_endpoint_is_added(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(webhook_endpoints.EndpointRefused, match="privado"):
        webhook_endpoints.add(url)
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", [
    "http://[64:ff9b::a00:1]/hooks", "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "http://[2002:a00:1::1]/hooks",
])
def test_an_ipv6_address_carrying_a_private_ipv4_address_is_refused(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(webhook_endpoints.EndpointRefused, match="privado"):
        webhook_endpoints.add(url)


def test_a_public_address_is_accepted(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    assert webhook_endpoints.add("https://93.184.216.34/hooks").url == "https://93.184.216.34/hooks"


def test_an_endpoint_no_longer_allowed_is_refused_at_connect_time_even_on_a_kept_connection(receiver, settings):
    webhook_endpoints.add(receiver.url)
    record()
    event_delivery.drain()  # allowed then: delivered, its connection kept alive
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    record()
    event_delivery.drain()
    assert len(receiver.requests) == 1
    refused = EventDelivery.objects.get(status="pending")
    assert refused.attempts == 1 and "127.0.0.1" in refused.error and "private address" in refused.error
    assert refused.response_status is None


@pytest.fixture
def dns(monkeypatch):
    """hooks.shop.example resolves to `dns.address` (an IPv4 or IPv6 literal) on the receiver's port."""
    real = socket.getaddrinfo

    class Zone:
        address = "93.184.216.34"

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "hooks.shop.example":
            return real(host, port, *args, **kwargs)
        if ":" in Zone.address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (Zone.address, port, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (Zone.address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return Zone


@pytest.mark.parametrize("rebound_to", ["127.0.0.1", "::ffff:127.0.0.1"])
def test_a_host_rebound_to_a_private_address_is_refused_at_connect_time(receiver, settings, dns, rebound_to):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    port = receiver.url.split(":")[2].split("/")[0]
    endpoint = webhook_endpoints.add(f"http://hooks.shop.example:{port}/hooks")  # public when saved
    dns.address = rebound_to  # ... and now the receiver on this machine
    event_id = record()
    event_delivery.drain()
    assert receiver.requests == []  # nothing sent
    [row] = rows()
    assert row.status == "pending" and "private address" in row.error and rebound_to in row.error

    # The same name, allowed, does reach the receiver: the refusal above was the check, not the fake DNS.
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    due_now()
    event_delivery.drain()
    assert delivery_ids(receiver) == [event_id]
    assert verified(endpoint.secret, receiver.requests[0])


def test_a_host_name_that_cannot_be_looked_up_is_refused_with_a_reason(settings):
    with pytest.raises(webhook_endpoints.EndpointRefused):
        webhook_endpoints.add("https://" + "a" * 64 + ".example/hooks")


def test_post_never_raises_on_a_host_name_that_cannot_be_encoded(receiver):
    WebhookEndpoint.objects.create(url="https://" + "a" * 64 + ".example/hooks", secret="whsec_x")  # the admin
    webhook_endpoints.add(receiver.url)
    record()
    event_delivery.drain()
    assert len(receiver.requests) == 1
    assert EventDelivery.objects.filter(attempts=1).count() == 2


# --- The worker's pipeline, and the lease ----------------------------------------------------------------


def run_pipeline(threads, until, seconds=15):
    """The worker's events thread (`Deliveries`), here: steps until `until()` or `seconds`."""
    pool = ThreadPoolExecutor(threads, thread_name_prefix="deliver-test")
    pipeline = event_delivery.Pipeline(pool, threads, threading.Event())
    deadline = time.monotonic() + seconds
    try:
        while not until() and time.monotonic() < deadline:
            if not pipeline.step():
                time.sleep(0.02)
        return pipeline
    finally:
        pipeline.close()
        pool.shutdown(wait=True)


def test_the_pipeline_delivers_every_event_once_over_kept_alive_connections(receiver):
    with Receiver() as other:
        webhook_endpoints.add(receiver.url)
        webhook_endpoints.add(other.url, types=["contact.opted_out"])
        with transaction.atomic():
            ids = events.emit_many("message.received", [({"n": n}, None) for n in range(120)])
            ids += events.emit_many("contact.opted_out", [({"n": n}, None) for n in range(30)])
        run_pipeline(4, lambda: not EventDelivery.objects.filter(status="pending").exists())
        assert Counter(delivery_ids(receiver)) == Counter(ids)
        assert Counter(delivery_ids(other)) == Counter(ids[120:])
    assert EventDelivery.objects.filter(status="delivered").count() == 180


def test_an_endpoint_never_holds_more_than_its_share_of_the_threads(receiver, monkeypatch):
    monkeypatch.setattr(event_delivery, "THREADS_PER_ENDPOINT", 2)
    receiver.default = (200, 0.3, b"ok")
    webhook_endpoints.add(receiver.url)
    with transaction.atomic():
        events.emit_many("message.received", [({"n": n}, None) for n in range(8)])
    pool = ThreadPoolExecutor(4)
    pipeline = event_delivery.Pipeline(pool, 4, threading.Event())
    try:
        pipeline.step()
        held = len(pipeline.in_flight)
    finally:
        pipeline.close()
        pool.shutdown(wait=True)
    assert held <= 2, f"one slow endpoint took {held} of the 4 threads"


@pytest.mark.django_db(transaction=True)
def test_rows_being_posted_to_a_slow_receiver_are_not_claimed_again(receiver, monkeypatch):
    # At scale: 60 s of lease for 25 rows answered in 2.4 s each, as 1 s for 6 rows in 0.4 s.
    monkeypatch.setattr(event_delivery, "LEASE", timedelta(seconds=1))
    receiver.default = (200, 0.4, b"ok")
    webhook_endpoints.add(receiver.url)
    with transaction.atomic():
        events.emit_many("message.received", [({"n": n}, None) for n in range(6)])

    def first_worker():
        try:
            event_delivery.drain()
        finally:
            connection.close()

    def second_worker():  # polls as a worker does, while the first one posts
        try:
            while first.is_alive():
                event_delivery.drain()
                time.sleep(0.05)
        finally:
            connection.close()

    first = threading.Thread(target=first_worker)
    first.start()
    receiver.wait_for(1)  # the first worker claimed them all and is posting
    second = threading.Thread(target=second_worker)
    second.start()
    first.join(15), second.join(15)
    assert EventDelivery.objects.filter(status="delivered").count() == 6
    assert max(Counter(delivery_ids(receiver)).values()) == 1, Counter(delivery_ids(receiver))


# --- Recording ------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_removed_by_another_process_does_not_fail_the_change(receiver, monkeypatch):
    monkeypatch.setattr(events, "ENDPOINTS_SECONDS", 60)  # this process looked a moment ago
    endpoint = webhook_endpoints.add(receiver.url)
    assert events.wanted("contact.opted_out")
    # The dashboard's process removes it; this one still has it in its second-old list.
    seen = events.active_endpoints()
    webhook_endpoints.remove(endpoint)
    events._endpoints.update(list=seen, at=time.monotonic())
    try:
        with transaction.atomic():
            contact = Contact.objects.create(wa_id="5511987654321", name="Joana", opted_out=True)
            events.emit("contact.opted_out", events.contact_data(contact), contact=contact)
    except IntegrityError:
        pass
    assert Contact.objects.filter(wa_id="5511987654321").exists()  # the change itself was kept
    event_delivery.drain()
    assert receiver.requests == []  # and nothing goes to a removed endpoint


def test_deliveries_claimed_as_the_process_ends_go_back_at_once(receiver):
    webhook_endpoints.add(receiver.url)
    record()
    pool = ThreadPoolExecutor(1)
    pool.shutdown()  # as at the interpreter's end: the pool takes no more work
    stopping = threading.Event()

    event_delivery.Pipeline(pool, 4, stopping).step()

    [row] = rows()
    assert (row.status, row.attempts) == ("pending", 0) and row.next_attempt_at <= timezone.now()
    assert stopping.is_set() and receiver.requests == []
