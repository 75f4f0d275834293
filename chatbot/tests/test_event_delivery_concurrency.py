"""Event webhooks posted by real worker processes on PostgreSQL: a worker killed (SIGKILL) while its
posts are at the receiver loses no event (another posts them once the lease is over), and two live
workers share the deliveries without posting any twice."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.db import connection, transaction
from django.utils import timezone

from chatbot import events, webhook_endpoints
from chatbot.models import EventDelivery, WorkerBeat
from chatbot.tests.receiver import Receiver
from chatbot.tests.test_outbox_concurrency import ROOT, database_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="worker processes need a shared PostgreSQL"),
]


@pytest.fixture(autouse=True)
def _allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver is on 127.0.0.1
    events.forget_endpoints()


@pytest.fixture
def workers():
    """start(name): a `db_worker` process; every one started is stopped after the test."""
    started = []

    def start(name):
        env = {
            **os.environ, "ENV_FILE": "", "DEBUG": "true", "DATABASE_URL": database_url(),
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            # Nothing here sends to Meta; were it to, nothing answers there.
            "WHATSAPP_GRAPH_URL": "http://127.0.0.1:9", "WHATSAPP_ACCESS_TOKEN": "test-token",
        }
        process = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--no-reload", "--queue-name", "*", "--worker-id", name],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()  # nothing to hand back: what it held comes back after the lease
        process.wait(timeout=10)
        process.stderr.close()


def wait(condition, processes, seconds=20):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        for process in processes:
            assert process.poll() is None or process.returncode == -signal.SIGKILL, process.stderr.read().decode()
        time.sleep(0.1)


def record(count):
    with transaction.atomic():
        return events.emit_many("message.received", [({"n": n}, None) for n in range(count)])


def delivery_ids(receiver):
    return Counter(request["headers"]["X-Hoztech-Delivery"] for request in receiver.requests)


def test_a_worker_killed_mid_delivery_loses_no_event(workers):
    with Receiver() as receiver:
        receiver.default = (200, 5.0, b"ok")  # holds every post: they are at the receiver when A dies
        webhook_endpoints.add(receiver.url)
        ids = record(50)
        first = workers("a")
        assert len(receiver.wait_for(1)) >= 1, "worker A posted nothing within 15 s"
        time.sleep(0.3)  # its other threads' posts on their way
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        at_the_receiver = len(receiver.requests)
        leased = EventDelivery.objects.filter(status="pending", next_attempt_at__gt=timezone.now())
        assert EventDelivery.objects.filter(status="delivered").count() == 0  # no answer came back to A
        assert leased.count() > 0  # what A claimed waits for its lease to end

        receiver.default = (200, 0.0, b"ok")
        second = workers("b")
        wait(lambda: WorkerBeat.objects.filter(worker_id="b").exists(), [second])
        time.sleep(1)
        assert len(receiver.requests) == at_the_receiver  # B leaves A's leased rows alone ...
        # ... until the lease ends: moved here to now.
        EventDelivery.objects.filter(status="pending").update(next_attempt_at=timezone.now())
        wait(lambda: not EventDelivery.objects.exclude(status="delivered").exists(), [second])

    posted = delivery_ids(receiver)
    assert set(posted) == set(ids)  # every event arrived, at least once
    # Posted twice: only what A had at the receiver when it died (receivers dedupe by id).
    assert sum(posted.values()) - len(ids) <= at_the_receiver
    assert max(posted.values()) <= 2
    assert EventDelivery.objects.filter(status="delivered").count() == 50


def test_two_workers_share_the_deliveries_and_post_each_event_once(workers):
    with Receiver() as receiver:
        webhook_endpoints.add(receiver.url)
        running = [workers("a"), workers("b")]
        wait(lambda: WorkerBeat.objects.count() == 2, running)
        ids = []
        for _ in range(10):  # recorded while both look for work
            ids += record(50)
            time.sleep(0.05)
        wait(lambda: not EventDelivery.objects.exclude(status="delivered").exists(), running)

    posted = delivery_ids(receiver)
    assert set(posted) == set(ids) and len(ids) == 500
    duplicates = sum(posted.values()) - len(ids)
    assert duplicates == 0, f"{duplicates} events posted twice with no worker dying"
    assert set(EventDelivery.objects.values_list("attempts", flat=True)) == {1}
