"""Shared test helpers: Meta-shaped payload files, signed for real like Meta signs them."""

import json
import threading
from datetime import timedelta
from pathlib import Path
from unittest import mock

from django.db import connection
from django.utils import timezone

from chatbot import inbound
from chatbot.models import Contact, Label, Message, PhoneNumber, Session
from chatbot.whatsapp import parser
from chatbot.whatsapp.webhook import sign

PAYLOADS = Path(__file__).parent / "payloads"


def payload_bytes(name):
    return (PAYLOADS / f"{name}.json").read_bytes()


def load_payload(name):
    return json.loads(payload_bytes(name))


def post_signed(client, body, secret=None):
    """POST raw `body` bytes to the webhook with Meta's X-Hub-Signature-256 over exactly those bytes."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    return client.post(
        "/chatbot/webhook/", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=sign(body, secret)
    )


def failing_apply(error):
    """Make applying inbound messages raise `error`, as a bug or an unexpected shape would."""
    return mock.patch.dict(inbound.APPLY, {parser.InboundMessage: mock.Mock(side_effect=error)})


def concurrently(function, arguments):
    """Call function(argument) for each argument at the same instant, each on its own connection."""
    barrier = threading.Barrier(len(arguments))
    results = []

    def run(argument):
        barrier.wait()
        try:
            results.append(function(argument))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def stored_files(folder="media"):
    """Every file under `folder` of the media storage (MEDIA_ROOT)."""
    from django.core.files.storage import default_storage

    found, folders = [], [folder]
    while folders:
        folder = folders.pop()
        try:
            subfolders, names = default_storage.listdir(folder)
        except FileNotFoundError:
            continue
        folders += [f"{folder}/{name}" for name in subfolders]
        found += [f"{folder}/{name}" for name in names]
    return found


def make_session(wa_id="5511987654321", name="Cliente", status=Session.Status.BOT, window=True, messages=1):
    now = timezone.now()
    contact = Contact.objects.create(wa_id=wa_id, name=name,
                                     last_inbound_at=now - timedelta(minutes=5) if window else now - timedelta(days=2))
    session = Session.objects.create(contact=contact, phone_number=PhoneNumber.objects.default(), status=status,
                                     waiting_since=now if status == Session.Status.WAITING else None)
    for index in range(messages):
        Message.objects.create(phone_number=session.phone_number, contact=contact, session=session,
                               direction=Message.Direction.IN, source=Message.Source.CUSTOMER, type="text",
                               text=f"mensagem {index}", status=Message.Status.RECEIVED,
                               wamid=f"wamid.{wa_id}.{index}")
    return session


def make_operator(django_user_model, username, **extra):
    """A user in the operators' group (password "x")."""
    from django.contrib.auth.models import Group

    from chatbot.dashboard.permissions import OPERATORS_GROUP

    user = django_user_model.objects.create_user(username, password="x", **extra)
    user.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    return user


# --- Campaigns ---------------------------------------------------------------------------------

# A marketing template with a media header, two placeholders, a quick reply and a link button.
PROMO = [
    {"type": "HEADER", "format": "IMAGE"},
    {"type": "BODY", "text": "Oi {{1}}! Seu cupom {{2}} vale até domingo."},
    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Parar promoções"},
                                    {"type": "URL", "text": "Ver oferta", "url": "https://loja.example/o/{{1}}"}]},
]


def customers(count, label="clientes", **fields):
    """`count` contacts with label `label` (created if new), wa_ids 5511900000000 on."""
    tag, _ = Label.objects.get_or_create(name=label)
    made = [Contact.objects.create(wa_id=f"55119{index:08d}", name=f"Cliente {index}", **fields)
            for index in range(count)]
    tag.contacts.add(*made)
    return made


