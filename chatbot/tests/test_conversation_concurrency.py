"""Two messages of one customer handled at the same instant by two workers on PostgreSQL."""

from unittest import mock

import pytest
from django.db import connection
from django.test import Client

from chatbot import conversation, inbound
from chatbot.models import Department, Message, Session
from chatbot.tests.helpers import concurrently, post_signed
from chatbot.whatsapp.webhook import customer_message

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrent transactions need PostgreSQL"),
]


def text_webhook(index, body):
    return customer_message(phone_number_id="106540352242922", wa_id="5511987654321", name="Maria",
                            wamid=f"wamid.RACE{index}", text=body)


@pytest.mark.parametrize("run", range(3))
def test_two_racing_messages_get_one_turn_each_in_order(run):
    Department.objects.create(name="Vendas")
    for index, body in enumerate(["oi", "atendente"]):
        assert post_signed(Client(), text_webhook(index, body)).status_code == 200
    with mock.patch("chatbot.conversation.follow_up"):  # keep the turns for the race below
        inbound.drain()
    incoming = list(Message.objects.filter(direction="in").order_by("pk").values_list("pk", flat=True))

    concurrently(conversation.handle_inbound_message.call, list(reversed(incoming)))

    replies = list(Message.objects.filter(direction="out").order_by("pk").values_list("text", flat=True))
    assert replies[0].startswith("Olá, Maria!")  # "oi" answered first: greeting and menu,
    assert replies[1] == "Como podemos ajudar? Escolha uma opção:"
    assert "fila de *Vendas*" in replies[2]  # then "atendente": the only department takes it
    assert len(replies) == 3  # one turn each, never a second greeting
    assert Session.objects.get().status == "waiting"
    assert Message.objects.filter(direction="in", session__isnull=True).count() == 0


@pytest.mark.parametrize("run", range(3))
def test_two_workers_applying_one_customers_messages_at_once_give_one_turn_each(run):
    # The turn runs in the transaction that applies the message: two workers each apply one of the
    # customer's messages at the same instant (a new customer: both insert the contact).
    Department.objects.create(name="Vendas")
    for index, body in enumerate(["oi", "atendente"]):
        assert post_signed(Client(), text_webhook(index, body)).status_code == 200

    assert sum(concurrently(lambda _: inbound.drain(limit=1), range(2))) == 2

    # Whichever committed first was answered first: "oi" (greeting, menu, then the handoff) or
    # "atendente" (the handoff; "oi" then waits for a person). Never two turns at once: one
    # session, at most one greeting, exactly one handoff.
    replies = list(Message.objects.filter(direction="out").order_by("pk").values_list("text", flat=True))
    assert len(replies) in (1, 3) and "fila de *Vendas*" in replies[-1]
    assert sum(reply.startswith("Olá, Maria!") for reply in replies) == len(replies) // 3
    assert Session.objects.get().status == "waiting"
    assert Message.objects.filter(direction="in", session__isnull=True).count() == 0
