"""Meta delivers each webhook at least once, in any order (cloud-api.md §3): a run of webhooks
delivered 1-3 times each, shuffled (and, on PostgreSQL, at the same instant on several connections)
leaves the same data as one in-order delivery (issue 8, "Duplicates and order")."""

import copy
import json
import random
import time
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django_tasks_db.models import DBTaskResult

from chatbot import inbound
from chatbot.models import Contact, Message, PendingStatus, PhoneNumber, RateLimit, Session, WebhookEvent
from chatbot.tests.helpers import concurrently, load_payload, post_signed

NUMBER = "106540352242922"
CUSTOMERS = {"5511911110001": "Ana Souza", "5521922220002": "Bruno Lima", "5531933330003": "Carla Dias"}
ANA, BRUNO, CARLA = CUSTOMERS
# Outbound messages Meta has accepted (wamid known) whose statuses the run reports: to whom.
OUTBOUND = {"wamid.OUT1": ANA, "wamid.OUT2": BRUNO, "wamid.OUT3": CARLA}


def envelope(value):
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": NUMBER}, **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}


def from_file(name, wa_id, wamid, moment, **fields):
    """The one message of payload file `name`, from `wa_id`, with its id, time and type object replaced."""
    message = copy.deepcopy(load_payload(name)["entry"][0]["changes"][0]["value"]["messages"][0])
    message.update({"from": wa_id, "id": wamid, "timestamp": str(moment), **fields})
    return message


def messages_webhook(wa_id, *messages):
    return envelope({"contacts": [{"profile": {"name": CUSTOMERS[wa_id]}, "wa_id": wa_id}],
                     "messages": list(messages)})


def status_webhook(wamid, status, moment):
    name = "status_failed" if status == "failed" else "status_sent"
    item = copy.deepcopy(load_payload(name)["entry"][0]["changes"][0]["value"]["statuses"][0])
    item.update({"id": wamid, "status": status, "timestamp": str(moment), "recipient_id": OUTBOUND[wamid]})
    return envelope({"statuses": [item]})


def run_of_webhooks(t):
    """The webhooks of a minute of traffic from Unix time `t`, in the order Meta produced them
    (each copy of a delivery is the same bytes, as Meta's retries are)."""
    text = lambda body: {"type": "text", "text": {"body": body}}  # noqa: E731
    bodies = [
        messages_webhook(ANA, from_file("text", ANA, "wamid.A1", t, **text("oi"))),
        messages_webhook(BRUNO, from_file("text", BRUNO, "wamid.B1", t + 5, **text("Quero 2 unidades"))),
        status_webhook("wamid.OUT1", "sent", t + 10),
        status_webhook("wamid.OUT2", "sent", t + 11),
        status_webhook("wamid.OUT3", "sent", t + 12),
        # Two messages in one body keep their order inside it.
        messages_webhook(CARLA, from_file("text", CARLA, "wamid.C1", t + 20, **text("bom dia")),
                         from_file("document", CARLA, "wamid.C2", t + 21)),
        status_webhook("wamid.OUT1", "delivered", t + 30),
        status_webhook("wamid.OUT2", "delivered", t + 31),
        status_webhook("wamid.OUT3", "failed", t + 32),
        messages_webhook(ANA, from_file("reaction", ANA, "wamid.A2", t + 40,
                                        reaction={"message_id": "wamid.OUT1", "emoji": "👍"})),
        status_webhook("wamid.OUT1", "read", t + 50),
        messages_webhook(BRUNO, from_file("edit", BRUNO, "wamid.B2", t + 60, edit={
            "original_message_id": "wamid.B1", "message": {"type": "text", "text": {"body": "Quero 3 unidades"}}})),
        status_webhook("wamid.OUT2", "read", t + 70),
    ]
    return [json.dumps(body).encode() for body in bodies]


def prepare(t):
    """The outbound messages the statuses are about, sent to each customer a day before `t`."""
    number = PhoneNumber.objects.default()
    before = datetime.fromtimestamp(t - 86400, tz=UTC)
    for wamid, wa_id in OUTBOUND.items():
        contact, _created = Contact.objects.get_or_create(wa_id=wa_id, defaults={
            "first_seen_at": before, "last_seen_at": before})
        Message.objects.create(phone_number=number, contact=contact, direction="out", source="api", type="text",
                               text=f"aviso {wamid}", payload={"body": f"aviso {wamid}"}, wamid=wamid,
                               status="sent", timestamp=before)


def reset():
    for model in (Message, Session, Contact, WebhookEvent, PendingStatus, RateLimit, DBTaskResult):
        model.objects.all().delete()


def iso(moment):
    return moment.isoformat() if moment else None


def snapshot():
    """The data a delivery leaves, without what differs by nature between runs (row ids, creation
    times, the sandbox wamids of the bot's replies)."""
    known = {}
    for m in Message.objects.exclude(source="bot").select_related("contact", "session"):
        known[m.wamid] = {
            "contact": m.contact.wa_id, "direction": m.direction, "type": m.type, "text": m.text,
            "payload": m.payload, "reply_to": m.reply_to, "target": m.target_wamid, "status": m.status,
            "timestamp": iso(m.timestamp), "edited_at": iso(m.edited_at), "revoked_at": iso(m.revoked_at),
            "session": m.session.status if m.session else None,
            **{f"{name}_at": iso(getattr(m, f"{name}_at")) for name in ("sent", "delivered", "read", "failed")},
            "error": (m.error_code, m.error_title, m.error_details), "pricing": (m.pricing_category, m.pricing_type),
            "media": (m.media_id, m.media_filename, m.media_mime_type),
        }
    bot = sorted(Message.objects.filter(source="bot").values_list("contact__wa_id", "type", "text", "status"))
    contacts = {c.wa_id: (c.name, iso(c.first_seen_at), iso(c.last_seen_at), iso(c.last_inbound_at), c.opted_out)
                for c in Contact.objects.all()}
    sessions = sorted((s.contact.wa_id, s.status, iso(s.started_at), iso(s.last_message_at), s.unread,
                       json.dumps(s.bot_state, sort_keys=True))
                      for s in Session.objects.select_related("contact"))
    return {"messages": known, "bot_replies": bot, "contacts": contacts, "sessions": sessions,
            "pending_statuses": PendingStatus.objects.count(),
            "failed_events": list(WebhookEvent.objects.filter(result="failed").values_list("error", flat=True))}


def assert_same(got, expected):
    """Equal snapshots; on a difference, only the differing parts in the message."""
    differences = {}
    for part in expected:
        if isinstance(expected[part], dict):
            for key in expected[part].keys() | got[part].keys():
                if got[part].get(key) != expected[part].get(key):
                    differences[f"{part}[{key}]"] = {"got": got[part].get(key), "expected": expected[part].get(key)}
        elif got[part] != expected[part]:
            differences[part] = {"got": got[part], "expected": expected[part]}
    assert not differences, json.dumps(differences, indent=1, ensure_ascii=False, default=str)


def deliveries(bodies, rng):
    """Each body 1-3 times, all shuffled."""
    copies = [body for body in bodies for _ in range(rng.randint(1, 3))]
    rng.shuffle(copies)
    return copies


def start():
    """Unix time of the run: ten minutes ago, so the 24-hour window is open and the bot answers."""
    return int(time.time()) - 600


def in_order(run_tasks, t):
    prepare(t)
    client = Client()
    for body in run_of_webhooks(t):
        assert post_signed(client, body).status_code == 200
        run_tasks()
    expected = snapshot()
    assert not expected["failed_events"]
    assert len(expected["bot_replies"]) >= 3  # the bot answered each customer: the run is not trivial
    assert expected["messages"]["wamid.B1"]["text"] == "Quero 3 unidades"
    assert expected["messages"]["wamid.OUT1"]["status"] == "read"
    assert expected["messages"]["wamid.OUT3"]["status"] == "failed"
    reset()
    return expected


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(6))
def test_duplicated_and_shuffled_deliveries_leave_what_one_in_order_delivery_leaves(run_tasks, seed):
    t = start()
    expected = in_order(run_tasks, t)
    prepare(t)
    rng = random.Random(seed)
    client = Client()
    for body in deliveries(run_of_webhooks(t), rng):
        assert post_signed(client, body).status_code == 200
        if rng.random() < 0.4:  # a worker applies what has arrived so far, at random moments
            run_tasks()
    run_tasks()
    assert_same(snapshot(), expected)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrent transactions need PostgreSQL")
@pytest.mark.parametrize("seed", range(3))
def test_concurrent_duplicated_deliveries_leave_what_one_in_order_delivery_leaves(run_tasks, seed):
    t = start()
    expected = in_order(run_tasks, t)
    prepare(t)
    rng = random.Random(seed)
    copies = deliveries(run_of_webhooks(t), rng)
    # Meta's copies arrive together on several web workers, then several workers drain at once.
    statuses = concurrently(lambda body: post_signed(Client(), body).status_code, copies)
    assert statuses == [200] * len(copies)
    applied = concurrently(lambda _: inbound.drain(limit=None), range(3))
    assert sum(applied) == len(copies)
    run_tasks()
    assert_same(snapshot(), expected)
    assert WebhookEvent.objects.filter(result="processed").count() == len(copies)


# --- The two order bugs, each at its smallest ---------------------------------------------------


def deliver(run_tasks, *bodies):
    client = Client()
    for body in bodies:
        assert post_signed(client, json.dumps(body).encode()).status_code == 200
        run_tasks()


@pytest.mark.django_db
def test_an_edit_delivered_before_its_original_still_applies(run_tasks):
    t = start()
    original = from_file("text", BRUNO, "wamid.B1", t, type="text", text={"body": "Quero 2 unidades"})
    edit = from_file("edit", BRUNO, "wamid.B2", t + 60, edit={
        "original_message_id": "wamid.B1", "message": {"type": "text", "text": {"body": "Quero 3 unidades"}}})
    deliver(run_tasks, messages_webhook(BRUNO, edit), messages_webhook(BRUNO, original))
    message = Message.objects.get(wamid="wamid.B1")
    assert (message.text, message.edited_at) == ("Quero 3 unidades", datetime.fromtimestamp(t + 60, tz=UTC))


@pytest.mark.django_db
def test_a_session_starts_at_its_earliest_message_whatever_the_order(run_tasks):
    t = start()
    text = from_file("text", ANA, "wamid.A1", t, type="text", text={"body": "oi"})
    reaction = from_file("reaction", ANA, "wamid.A2", t + 40, reaction={"message_id": "wamid.A1", "emoji": "👍"})
    deliver(run_tasks, messages_webhook(ANA, reaction), messages_webhook(ANA, text))
    assert Session.objects.get().started_at == datetime.fromtimestamp(t, tz=UTC)
