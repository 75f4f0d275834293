"""Meta delivers the same webhook to several connections at once; on PostgreSQL they really race."""

import pytest
from django.db import connection
from django.test import Client
from django_tasks_db.models import DBTaskResult

from chatbot import inbound
from chatbot.models import Contact, Message, WebhookEvent
from chatbot.tests.helpers import concurrently, payload_bytes, post_signed

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrent transactions need PostgreSQL"),
]


def deliver_concurrently(body, copies):
    """Meta's copies arrive together on several web workers, then several workers drain them at once."""
    statuses = concurrently(lambda _: post_signed(Client(), body).status_code, range(copies))
    applied = concurrently(lambda _: inbound.drain(), range(copies))
    assert sum(applied) == copies  # each event applied by exactly one worker
    assert set(WebhookEvent.objects.values_list("result", flat=True)) == {"processed"}
    return statuses


def test_three_concurrent_deliveries_store_one_message_and_one_task():
    assert deliver_concurrently(payload_bytes("text"), 3) == [200, 200, 200]
    assert WebhookEvent.objects.count() == 3
    assert Message.objects.filter(direction="in").count() == 1
    assert Contact.objects.count() == 1
    assert Message.objects.filter(direction="in", session__isnull=False).count() == 1
    assert DBTaskResult.objects.filter(task_path="chatbot.conversation.handle_inbound_message").count() == 0


def test_concurrent_batches_store_each_message_once():
    assert deliver_concurrently(payload_bytes("batch"), 4) == [200] * 4
    wamids = list(Message.objects.filter(direction="in").values_list("wamid", flat=True))
    assert len(wamids) == len(set(wamids)) > 0
    assert Message.objects.filter(direction="in", session__isnull=False).count() == len(wamids)
    assert DBTaskResult.objects.filter(task_path="chatbot.conversation.handle_inbound_message").count() == 0
