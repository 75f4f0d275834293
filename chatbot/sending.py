"""Queueing a message to send, the one way in for every outbound message (the bot, operators, the
API, the `send` command; campaigns next): the rules Meta would enforce checked first, then a
`queued` row that the workers' outbox sends (chatbot/outbox.py).

Refusals are `SendRefused(code, message, field)`, with no HTTP status: the API and the dashboard
each map them in one place.
"""

import threading

from django.db import transaction
from django.utils.translation import gettext as _

from . import contacts
from .failures import CONTACT_BLOCKED, CONTACT_OPTED_OUT
from .models import Message, PhoneNumber, Template
from .whatsapp import validation
from .whatsapp.vocabulary import MessageType


class SendRefused(Exception):
    """A message the rules do not allow: a stable `code` (`invalid_request`, `contact_blocked`,
    `outside_customer_service_window`, `opted_out`), a sentence for people, and the field at fault."""

    def __init__(self, code, message, field=""):
        super().__init__(message)
        self.code, self.message, self.field = code, str(message), field


# Set when a message is queued, so this process's outbox starts on it at once instead of at its
# next look (other processes find it within their poll interval).
QUEUED = threading.Event()


def queue(*, phone_number, contact, message, source, session=None, sent_by=None, api_token=None):
    """Queue a checked Cloud API message object (`validation.clean_message`); returns the row."""
    transaction.on_commit(QUEUED.set)
    row = queued_row(phone_number=phone_number, contact=contact, message=message, source=source, session=session,
                     sent_by=sent_by, api_token=api_token)
    row.save(force_insert=True)
    return row


def queue_all(*, phone_number, contact, messages, source, session=None):
    """Queue several messages to one contact, in order, with one INSERT (a bot turn's replies)."""
    if not messages:
        return []
    transaction.on_commit(QUEUED.set)
    return Message.objects.bulk_create([
        queued_row(phone_number=phone_number, contact=contact, message=message, source=source, session=session)
        for message in messages
    ])


def queued_row(*, phone_number, contact, message, source, session=None, sent_by=None, api_token=None):
    kind = message["type"]
    context = message.get("context") or {}
    return Message(
        phone_number=phone_number,
        contact=contact,
        session=session,
        direction=Message.Direction.OUT,
        source=source,
        type=kind,
        text=validation.outbound_text(message),
        payload=message[kind],
        context=context,
        reply_to=context.get("message_id", ""),
        target_wamid=message[kind].get("message_id", "") if kind == MessageType.REACTION else "",
        status=Message.Status.QUEUED,
        sent_by=sent_by,
        api_token=api_token,
    )


def check(data):
    """The Cloud API message object to send for `data` (parsed JSON), as Meta would accept it."""
    try:
        message = validation.clean_message(data)
    except validation.InvalidMessage as error:
        raise SendRefused("invalid_request", error.message, field=error.field) from None
    if "biz_opaque_callback_data" in message:
        raise SendRefused("invalid_request", _("biz_opaque_callback_data is reserved: the service tracks "
                                               "messages with it."), field="biz_opaque_callback_data")
    return message


def submit(message, *, phone_number_id=None, source, api_token=None):
    """Queue a checked message to its contact (found in either Brazilian form, or created), after
    the rules; returns the queued row."""
    number = sending_number(phone_number_id)
    with transaction.atomic():
        contact = contacts.for_recipient(message["to"])
        check_rules(message, contact)
        return queue(phone_number=number, contact=contact, message=message, source=source, api_token=api_token)


def sending_number(phone_number_id):
    if not phone_number_id:
        return PhoneNumber.objects.default()
    number = PhoneNumber.objects.filter(phone_number_id=phone_number_id).first()
    if number is None:
        raise SendRefused("invalid_request", _("Unknown business number %(id)s.") % {"id": phone_number_id},
                          field="phone_number_id")
    return number


def check_rules(message, contact):
    """The rules Meta would enforce after we queued: 24-hour window, opt-out, templates."""
    if contact.blocked:
        raise SendRefused("contact_blocked", _("This contact is blocked."))
    if message["type"] != MessageType.TEMPLATE:
        if not contact.window_open():
            raise SendRefused("outside_customer_service_window", _(
                "More than 24 hours since the customer's last message (or they never wrote): only a "
                "template message can be sent now."
            ))
        return
    template = Template.objects.filter(
        name=message["template"]["name"], language=message["template"]["language"]["code"]
    ).first()
    if template is None:
        return
    if template.category.upper() == "MARKETING" and contact.opted_out:
        raise SendRefused("opted_out", _("The customer opted out of marketing messages."))
    try:
        validation.check_template_parameters(message, template.components)
    except validation.InvalidMessage as error:
        raise SendRefused("invalid_request", error.message, field=error.field) from None




def forbidden_now(messages):
    """{message id: reason} for the claimed `messages` the rules forbid now: the customer was
    blocked, or opted out of marketing before a marketing template's turn came."""
    def template_of(message):
        payload = message.payload if isinstance(message.payload, dict) else {}
        language = payload.get("language") if isinstance(payload.get("language"), dict) else {}
        return payload.get("name"), language.get("code")

    asked = {template_of(message) for message in messages
             if message.type == MessageType.TEMPLATE and message.contact.opted_out}
    marketing = set()
    if asked:
        marketing = {(name, language) for name, language, category in Template.objects.filter(
            name__in=[name for name, _language in asked]).values_list("name", "language", "category")
            if category.upper() == "MARKETING"}
    refused = {}
    for message in messages:
        if message.contact.blocked:
            refused[message.pk] = CONTACT_BLOCKED
        elif message.type == MessageType.TEMPLATE and message.contact.opted_out and template_of(message) in marketing:
            refused[message.pk] = CONTACT_OPTED_OUT
    return refused
