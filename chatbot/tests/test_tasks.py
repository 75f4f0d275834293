"""Background tasks that call Meta, against the fake Graph API; and task rows queued under the
tasks' old paths (chatbot/tasks.py) still run."""

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
    inbound.mark_read.call(message.pk)
    assert "could not mark message" in caplog.text


@pytest.mark.parametrize("name", ["handle_inbound_message", "mark_read", "download_media", "apply_pending_statuses"])
def test_rows_queued_under_the_old_paths_still_run(client, fake_graph, run_tasks, name):
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    message = receive(client)
    arguments = {"apply_pending_statuses": [message.wamid, 5]}.get(name, [message.pk])
    row = DBTaskResult.objects.create(task_path=f"chatbot.tasks.{name}", args_kwargs={"args": arguments, "kwargs": {}},
                                      backend_name="default", queue_name="default", run_after=timezone.now())
    assert row.task.func is getattr(tasks, name).func  # the task declared beside its function
    run_tasks()
    row.refresh_from_db()
    assert row.status == "SUCCESSFUL", row.traceback
