"""Events for other systems (chatbot/events.py), each made the way it happens in the product (a
signed webhook, an operator's action, a campaign) and delivered to a receiver on 127.0.0.1."""

import json
from unittest import mock

import pytest

from chatbot import (
    campaign_sending,
    campaigns,
    conversation,
    event_delivery,
    events,
    handling,
    inbound,
    outbox,
    webhook_endpoints,
)
from chatbot.models import Department, EventDelivery, Message, Session
from chatbot.tests.helpers import customers, make_session, post_signed
from chatbot.whatsapp.webhook import customer_message

pytestmark = pytest.mark.django_db

PNID = "106540352242922"
WA_ID = "5511987654321"


@pytest.fixture
def endpoint(receiver):
    return webhook_endpoints.add(receiver.url)


@pytest.fixture
def says(client, fake_graph, run_tasks):
    counter = iter(range(10**6))

    def send(text="", choice="", wa_id=WA_ID):
        body = customer_message(phone_number_id=PNID, wa_id=wa_id, name="Maria Souza",
                                wamid=f"wamid.IN{wa_id}{next(counter)}", text=text, choice=choice)
        assert post_signed(client, body).status_code == 200
        run_tasks()

    return send


def delivered(receiver):
    """Every event the receiver got after the workers posted what is due, by type."""
    event_delivery.drain()
    found = {}
    for event in receiver.events():
        found.setdefault(event["type"], []).append(event)
    return found


def status_body(wamid, status, errors=None):
    item = {"id": wamid, "status": status, "timestamp": "1700000005", "recipient_id": WA_ID}
    if errors:
        item["errors"] = errors
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": PNID, "phone_number_id": PNID},
             "statuses": [item]}
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "0", "changes": [{"field": "messages", "value": value}]}]}).encode()


def test_a_customers_first_message_tells_of_the_message_the_conversation_and_the_bots_replies(
        says, receiver, endpoint):
    says("oi")

    found = delivered(receiver)
    [received] = found["message.received"]
    assert received["data"]["text"] == "oi" and received["data"]["contact"] == WA_ID
    assert received["data"]["direction"] == "in" and received["data"]["wamid"].startswith("wamid.IN")
    [created] = found["conversation.created"]
    assert created["data"]["contact"] == {"wa_id": WA_ID, "name": "Maria Souza"}
    assert created["data"]["status"] == "bot" and created["data"]["operator"] is None
    sent = found["message.sent"]
    assert [event["data"]["text"] for event in sent] == [
        "Olá, Maria! 👋 Bem-vindo(a) ao nosso atendimento.", "Como podemos ajudar? Escolha uma opção:"]
    assert all(event["data"]["status"] == "sent" and event["data"]["direction"] == "out" for event in sent)
    # Each event once, with its own id, in the order it happened.
    ids = [event["id"] for event in receiver.events()]
    assert len(set(ids)) == len(ids) == 4
    assert [event["type"] for event in receiver.events()][:2] == ["message.received", "conversation.created"]


def test_statuses_tell_delivered_read_and_failed_once_each_forward_only(client, says, receiver, endpoint):
    says("oi")
    greeting, menu = Message.objects.filter(direction="out").order_by("pk")
    for body in (status_body(greeting.wamid, "delivered"), status_body(greeting.wamid, "read"),
                 status_body(greeting.wamid, "delivered"),  # late and duplicate: nothing moves
                 status_body(menu.wamid, "failed", [{"code": 131026, "title": "Message undeliverable"}])):
        assert post_signed(client, body).status_code == 200
    delivered(receiver)  # what the first turn told
    receiver.requests.clear()
    inbound.drain(limit=None)

    found = delivered(receiver)
    assert sorted(found) == ["message.delivered", "message.failed", "message.read"]
    [read] = found["message.read"]
    assert read["data"]["id"] == greeting.pk and read["data"]["status"] == "read"
    assert read["data"]["status_at"]["delivered"] and read["data"]["status_at"]["read"]
    [failed] = found["message.failed"]
    assert failed["data"]["id"] == menu.pk
    assert failed["data"]["error"]["code"] == 131026 and failed["data"]["error"]["explanation"]


def test_a_send_meta_refuses_tells_message_failed(fake_graph, receiver, endpoint):
    session = make_session()
    fake_graph.fail_next(code=131047, http_status=400)
    conversation.send(session, {"type": "text", "text": {"body": "Olá"}})
    outbox.drain()

    [failed] = delivered(receiver)["message.failed"]
    assert failed["data"]["text"] == "Olá" and failed["data"]["error"]["code"] == 131047


def test_handoff_taking_closing_and_the_survey_tell_of_the_conversation(says, receiver, endpoint, ana):
    support = Department.objects.create(name="Suporte")
    says("oi")
    says("Suporte", choice=f"d{support.pk}")
    session = Session.objects.get(contact__wa_id=WA_ID)
    handling.take(session, ana)
    conversation.close(session)
    says("5 – Ótimo", choice="csat:5")

    found = delivered(receiver)
    [waiting] = found["conversation.waiting"]
    assert waiting["data"]["status"] == "waiting" and waiting["data"]["queue"] == "Suporte"
    [assigned] = found["conversation.assigned"]
    assert assigned["data"]["operator"] == {"id": ana.pk, "username": "ana", "name": ana.get_full_name() or "ana"}
    assert assigned["data"]["status"] == "open"
    closed, answered = found["conversation.closed"]
    assert closed["data"]["status"] == "closed" and closed["data"]["csat"] is None
    assert answered["data"]["id"] == session.pk and answered["data"]["csat"]["score"] == 5
    assert closed["id"] != answered["id"]


def test_taking_a_conversation_one_already_has_tells_nothing_new(says, receiver, endpoint, ana):
    says("oi")
    session = Session.objects.get(contact__wa_id=WA_ID)
    handling.take(session, ana)
    handling.take(session, ana)

    assert len(delivered(receiver)["conversation.assigned"]) == 1


def test_opting_out_and_in_tell_of_the_contact(client, says, receiver, endpoint):
    says("oi")
    for value in ("stop", "resume"):
        value_body = {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": PNID, "phone_number_id": PNID},
                      "user_preferences": [{"wa_id": WA_ID, "detail": "", "category": "marketing_messages",
                                            "value": value, "timestamp": 1700000000}]}
        body = json.dumps({"object": "whatsapp_business_account",
                           "entry": [{"id": "0", "changes": [{"field": "user_preferences", "value": value_body}]}]})
        assert post_signed(client, body.encode()).status_code == 200
    inbound.drain(limit=None)

    found = delivered(receiver)
    assert [event["data"] for event in found["contact.opted_out"]] == [{"wa_id": WA_ID, "name": "Maria Souza"}]
    assert [event["data"] for event in found["contact.opted_in"]] == [{"wa_id": WA_ID, "name": "Maria Souza"}]


def test_a_finished_campaign_tells_its_figures(client, fake_graph, receiver, endpoint, aviso):
    customers(2)
    plan = campaigns.plan(template_name="aviso", language="pt_BR", audience={"labels": ["clientes"]},
                          variables={"1": "{first_name|cliente}", "2": "123"})
    campaign = campaigns.create(name="Aviso", plan=plan)
    for _round in range(3):  # fed, sent, then seen finished
        campaign_sending.wake()
        outbox.drain()

    [finished] = delivered(receiver)["campaign.finished"]
    assert finished["data"]["id"] == campaign.pk and finished["data"]["status"] == "finished"
    assert finished["data"]["counts"]["sent"] == 2 and finished["data"]["finished_at"]


def test_an_endpoint_gets_only_the_types_it_asked_for(says, receiver):
    webhook_endpoints.add(receiver.url, types=["conversation.created"])
    says("oi")

    assert [event["type"] for event in delivered(receiver).get("conversation.created", [])] == [
        "conversation.created"]
    assert len(receiver.events()) == 1


def test_without_endpoints_nothing_is_recorded(says):
    says("oi")

    assert not EventDelivery.objects.exists()


def test_an_event_is_recorded_with_its_change_or_not_at_all(client, fake_graph, receiver, endpoint):
    body = customer_message(phone_number_id=PNID, wa_id=WA_ID, name="Maria", wamid="wamid.ROLLBACK", text="oi")
    assert post_signed(client, body).status_code == 200
    with mock.patch.object(inbound, "follow_up_target", side_effect=RuntimeError("a bug after the message")):
        inbound.drain(limit=None)

    # The message was not kept (the webhook is applied again later), and neither was its event.
    assert not Message.objects.filter(wamid="wamid.ROLLBACK").exists()
    assert not EventDelivery.objects.exists()


def test_every_type_of_the_contract_is_made_somewhere():
    assert set(events.TYPES) == {
        "message.received", "message.sent", "message.delivered", "message.read", "message.failed",
        "conversation.created", "conversation.waiting", "conversation.assigned", "conversation.closed",
        "contact.opted_out", "contact.opted_in", "campaign.finished"}


def test_an_operator_opting_a_customer_out_and_in_tells_of_it(as_operator, receiver, endpoint):
    from django.urls import reverse

    [contact] = customers(1)
    url = reverse("chatbot:dashboard-contact-update", args=[contact.pk])
    for value in ("true", "false"):
        assert as_operator.post(url, {"field": "opted_out", "value": value}).status_code == 302

    found = delivered(receiver)
    assert [event["data"]["wa_id"] for event in found["contact.opted_out"]] == [contact.wa_id]
    assert [event["data"]["wa_id"] for event in found["contact.opted_in"]] == [contact.wa_id]
