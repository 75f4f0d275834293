"""Background tasks (chatbot/tasks.py) that call Meta, against the fake Graph API."""

import pytest

from chatbot import inbound, tasks
from chatbot.models import Message
from chatbot.tests.helpers import payload_bytes, post_signed

pytestmark = pytest.mark.django_db


def receive(client, name="text"):
    post_signed(client, payload_bytes(name))
    inbound.drain()
    return Message.objects.get()


def test_inbound_messages_are_marked_read_at_meta(client, fake_graph, run_tasks):
    message = receive(client)
    run_tasks()
    marks = [request.json for request in fake_graph.requests if (request.json or {}).get("status") == "read"]
    assert marks == [{"messaging_product": "whatsapp", "status": "read", "message_id": message.wamid}]
    assert marks and fake_graph.requests[-1].path == "/v25.0/106540352242922/messages"


def test_read_receipts_can_be_turned_off(client, fake_graph, run_tasks, settings):
    settings.WHATSAPP_MARK_READ = False
    receive(client)
    run_tasks()
    assert fake_graph.requests == []


def test_no_read_receipt_in_sandbox_mode(client, run_tasks, settings):
    settings.WHATSAPP_ACCESS_TOKEN = ""
    receive(client)
    run_tasks()  # nothing to call, nothing fails
    assert Message.objects.get().status == "received"


def test_a_refused_read_receipt_is_only_logged(client, fake_graph, caplog):
    message = receive(client)
    fake_graph.fail_next(code=131000, http_status=500)
    tasks.mark_read.call(message.pk)
    assert "could not mark message" in caplog.text
