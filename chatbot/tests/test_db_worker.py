import time
from unittest import mock

import pytest
from django.core.management import call_command

from chatbot.models import Message, Session, WebhookEvent, WorkerBeat
from chatbot.tests.helpers import payload_bytes, post_signed
from chatbot.worker import Inbox


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.django_db
def test_batch_applies_stored_events_then_runs_their_tasks(client, django_capture_on_commit_callbacks):
    post_signed(client, payload_bytes("text"))
    # The worker closes "old" connections between tasks, which would close the test's own.
    with (mock.patch("django_tasks_db.management.commands.db_worker.close_old_connections"),
          django_capture_on_commit_callbacks(execute=True)):
        call_command("db_worker", "--batch", "--no-reload", "--no-startup-delay", "--queue-name", "*", verbosity=0)
    assert WebhookEvent.objects.get().result == "processed"
    assert Message.objects.get().session == Session.objects.get()


@pytest.mark.django_db(transaction=True)
def test_inbox_thread_applies_events_as_they_arrive_and_beats(client):
    inbox = Inbox("test-worker")
    inbox.start()
    try:
        post_signed(client, payload_bytes("text"))
        wait_for(lambda: WebhookEvent.objects.filter(result="processed").exists())
        post_signed(client, payload_bytes("image"))
        wait_for(lambda: WebhookEvent.objects.filter(result="processed").count() == 2)
    finally:
        inbox.stopping.set()
        inbox.join(timeout=5)
    assert not inbox.is_alive()
    assert Message.objects.count() == 2
    beat = WorkerBeat.objects.get()
    assert beat.worker_id == "test-worker"


@pytest.mark.django_db(transaction=True)
def test_inbox_thread_survives_a_database_error(client):
    inbox = Inbox("test-worker")
    with mock.patch("chatbot.inbound.drain", side_effect=[RuntimeError("database gone"), 0, 0, 0, 0, 0]) as drain:
        inbox.start()
        wait_for(lambda: drain.call_count >= 2)
        inbox.stopping.set()
        inbox.join(timeout=5)
    assert not inbox.is_alive()


@pytest.mark.django_db(transaction=True)
def test_outbox_thread_sends_queued_messages(fake_graph):
    from django.utils import timezone

    from chatbot import sending
    from chatbot.models import Contact, PhoneNumber
    from chatbot.worker import Outbox

    customer = Contact.objects.create(wa_id="5511987654321", last_inbound_at=timezone.now())
    message = sending.queue(phone_number=PhoneNumber.objects.default(), contact=customer,
                            message={"type": "text", "text": {"body": "Oi"}}, source=Message.Source.BOT)
    outbox = Outbox()
    outbox.start()
    try:
        wait_for(lambda: Message.objects.filter(pk=message.pk, status="sent").exists())
    finally:
        outbox.stopping.set()
        outbox.join(timeout=5)
    assert len(fake_graph.sent()) == 1


def test_the_task_loop_outlives_a_database_restart(monkeypatch):
    """django-tasks-db's loop raises on a lost connection; the worker starts it again instead of
    exiting (which took the inbox and outbox threads with it)."""
    from django.db import OperationalError
    from django_tasks_db.management.commands.db_worker import Worker

    from chatbot import worker

    monkeypatch.setattr(worker, "RESTART_SECONDS", 0)
    monkeypatch.setattr(worker, "Inbox", mock.Mock())
    monkeypatch.setattr(worker, "Outbox", mock.Mock())
    monkeypatch.setattr(worker, "Deliveries", mock.Mock())
    monkeypatch.setattr(worker.atexit, "register", mock.Mock())
    runs = mock.Mock(side_effect=[OperationalError("terminating connection due to administrator command"), None])
    monkeypatch.setattr(Worker, "run", runs)
    with mock.patch.object(Worker, "configure_signals"):
        call_command("db_worker", "--no-reload", "--no-startup-delay", "--queue-name", "*", verbosity=0)
    assert runs.call_count == 2
    assert worker.Inbox.return_value.start.call_count == 1  # the threads are not started twice
