"""A campaign sent by real worker processes on PostgreSQL: two workers share it, one is killed
(SIGKILL) mid-campaign and another takes over, and still no recipient is sent twice."""

import os
import signal
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from chatbot import campaigns, failures, outbox
from chatbot.models import Campaign, Contact, Label, Message, Recipient, Template
from chatbot.tests.test_outbox_concurrency import CAP, start_worker

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="worker processes need a shared PostgreSQL"),
]

RECIPIENTS = 200


def wait(condition, workers, seconds=90):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        for worker in workers:
            assert worker.poll() is None or worker.returncode == -signal.SIGKILL, worker.stderr.read()
        time.sleep(0.2)


def test_two_workers_and_a_killed_one_send_each_recipient_at_most_once(fake_graph):
    fake_graph.latency = (50, 150)  # as Meta answers: sends are in flight when the worker dies
    Template.objects.create(name="aviso", language="pt_BR", category="UTILITY", status="APPROVED",
                            components=[{"type": "BODY", "text": "Olá {{1}}!"}])
    label = Label.objects.create(name="todos")
    label.contacts.add(*Contact.objects.bulk_create(
        [Contact(wa_id=f"55119{index:08d}", name=f"Cliente {index}") for index in range(RECIPIENTS)]))
    plan = campaigns.plan(template_name="aviso", language="pt_BR", audience={"labels": ["todos"]},
                          variables={"1": "{first_name|cliente}"})
    campaign = campaigns.create(name="Aviso geral", plan=plan)

    workers = [start_worker(fake_graph, index) for index in range(2)]
    try:
        wait(lambda: Message.objects.filter(status="sent").count() >= RECIPIENTS // 4, workers)
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=10)
        workers.append(start_worker(fake_graph, 2))
        wait(lambda: not Recipient.objects.filter(campaign=campaign, state="pending").exists()
             and not Message.objects.filter(status="queued").exists()
             and Message.objects.filter(status__in=["sent", "sending"]).count() == RECIPIENTS, workers)
        time.sleep(1)  # the last answers recorded
        sent = Message.objects.filter(status="sent").count()
        in_flight = Message.objects.filter(status="sending").count()
        # What the killed worker had at Meta is never sent again: it ends "delivery unknown"
        # after the outbox's sweep, and only then is the campaign finished.
        if in_flight:
            assert Campaign.objects.get(pk=campaign.pk).status == "running"
            outbox.sweep(timezone.now() + outbox.IN_FLIGHT_TIMEOUT + timedelta(seconds=1))
        wait(lambda: Campaign.objects.get(pk=campaign.pk).status == "finished", workers)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=10)

    sends = Counter(body["to"] for body in fake_graph.sent())
    assert sends and max(sends.values()) == 1  # nobody got it twice
    assert max(fake_graph.per_second().values()) <= CAP  # the workers shared the number's cap
    # Every recipient was handed to the outbox once, with one message of its own.
    rows = Recipient.objects.filter(campaign=campaign)
    assert rows.filter(state="queued").count() == RECIPIENTS
    assert rows.values("message").distinct().count() == RECIPIENTS
    # What Meta accepted is recorded, except what was in flight in the killed worker.
    assert sent + in_flight == RECIPIENTS
    assert sent <= len(sends) <= sent + in_flight
    assert Message.objects.filter(status="failed", error_title=failures.UNKNOWN_DELIVERY).count() == in_flight
