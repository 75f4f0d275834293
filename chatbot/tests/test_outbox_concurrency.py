"""Two real worker processes on PostgreSQL share the outbox and the number's throughput cap."""

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from chatbot import sending
from chatbot.models import Contact, Message, PhoneNumber, WorkerBeat

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="worker processes need a shared PostgreSQL"),
]

ROOT = Path(__file__).resolve().parents[2]
CAP = 20
MESSAGES = 100


def database_url():
    config = connection.settings_dict
    return f"postgres://{config['USER']}@{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}/{config['NAME']}"


def start_worker(fake_graph, index):
    env = {
        **os.environ, "ENV_FILE": "", "DEBUG": "true", "DATABASE_URL": database_url(),
        "WHATSAPP_GRAPH_URL": fake_graph.url, "WHATSAPP_ACCESS_TOKEN": fake_graph.token,
        "WHATSAPP_MESSAGES_PER_SECOND": str(CAP), "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--queue-name", "*", "--worker-id", f"w{index}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def test_two_workers_keep_the_cap_and_send_each_message_once(fake_graph):
    number = PhoneNumber.objects.default()
    for index in range(MESSAGES):
        customer = Contact.objects.create(wa_id=f"55119{index:08d}", last_inbound_at=timezone.now())
        sending.queue(phone_number=number, contact=customer, message={"type": "text", "text": {"body": f"#{index}"}},
                       source=Message.Source.API)
    workers = [start_worker(fake_graph, index) for index in range(2)]
    try:
        deadline = time.monotonic() + 60
        while Message.objects.exclude(status="sent").exists():
            assert time.monotonic() < deadline, "not all messages were sent within 60 s"
            assert all(worker.poll() is None for worker in workers), workers[0].stderr.read()
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=10)

    sent = fake_graph.sent()
    assert len(sent) == MESSAGES
    assert Counter(body["to"] for body in sent).most_common(1)[0][1] == 1  # each message exactly once
    assert len(set(Message.objects.values_list("wamid", flat=True))) == MESSAGES
    per_second = fake_graph.per_second()
    assert max(per_second.values()) <= CAP, per_second
    times = [request.time for request in fake_graph.requests if request.path.endswith("/messages")]
    assert max(times) - min(times) >= (MESSAGES - 1) / CAP  # the cap held on average too
    assert WorkerBeat.objects.count() == 2
