"""What operators do from the dashboard: reply, send a template, take notes. Every reply goes
through the same checks and the same queue as the send API (chatbot/sending.py)."""

import mimetypes

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import conversation, events, handling, media, message_templates, scheduling, sending
from ..models import Message, Note, PhoneNumber, Session
from ..whatsapp.vocabulary import MediaKind


class Refused(Exception):
    """The reply can't be sent as written; `message` says why, for the operator."""

    def __init__(self, message):
        super().__init__(message)
        self.message = str(message)


def reply(*, session, user, text="", buttons=(), upload=None, override=False):
    """Queue an operator's reply (text, text with reply buttons, or a file with a caption).
    `override`: the operator was told a colleague has the conversation and answers anyway."""
    text = fill(text.strip(), session=session, user=user)
    if upload is not None:
        try:
            media_id = media.upload(session.phone_number, upload)
        except media.MediaRefused as error:
            raise Refused(error.message) from None
        mime_type = mimetypes.guess_type(upload.name)[0] or ""
        kind = str(media.sending_kind(mime_type))
        body = {"id": media_id}
        if text and kind != MediaKind.AUDIO:
            body["caption"] = text
        if kind == MediaKind.DOCUMENT:
            body["filename"] = upload.name
        data = {"type": kind, kind: body}
    elif buttons:
        data = {"type": "interactive", "interactive": {"type": "button", "body": {"text": text}, "action": {
            "buttons": [{"type": "reply", "reply": {"id": f"op{index}", "title": title}}
                        for index, title in enumerate(buttons, start=1)]}}}
    elif text:
        data = {"type": "text", "text": {"body": text}}
    else:
        raise Refused(_("Write a message or attach a file."))
    message = queue(session=session, user=user, data=data, override=override)
    if upload is not None:
        upload.seek(0)
        message.media_id, message.media_mime_type, message.media_filename = body["id"], mime_type, upload.name
        message.media_size, message.media_status = upload.size, Message.MediaStatus.READY
        message.media_file.save(upload.name, upload, save=False)
        message.save(update_fields=["media_id", "media_mime_type", "media_filename", "media_size",
                                    "media_status", "media_file"])
    return message


def send_template(*, session, user, template, values, override=False):
    """Queue a template message, `values` filling its placeholders in order."""
    return queue(session=session, user=user, data=template_message(template, values), override=override)


def template_message(template, values):
    """The message object of `template` with `values` filling its placeholders in order."""
    named = template.parameter_format.upper() == "NAMED"
    components = {}
    for (kind, name), value in zip(message_templates.placeholders(template), values, strict=False):
        parameter = {"type": "text", "text": value.strip()}
        if named:
            parameter["parameter_name"] = name
        components.setdefault(kind, []).append(parameter)
    body = {"name": template.name, "language": {"code": template.language}}
    if components:
        body["components"] = [{"type": kind, "parameters": parameters} for kind, parameters in components.items()]
    return {"type": "template", "template": body}


def schedule(*, session, user, at, text="", template=None, values=(), override=False):
    """Schedule one message for `at` (chatbot/scheduling.py): the template with `values` when one
    is chosen, else the text (its {name}… filled now)."""
    if template is not None:
        data = template_message(template, values)
    elif text.strip():
        data = {"type": "text", "text": {"body": fill(text.strip(), session=session, user=user)}}
    else:
        raise Refused(_("Write a message or choose a template."))
    try:
        return scheduling.schedule(session=session, user=user, at=at, message=data, override=override)
    except sending.SendRefused as refused:
        raise Refused(refused.message) from None


def start(*, contact, user, text="", template=None, values=()):
    """A conversation the operator starts with a customer: free text inside the 24-hour window, an
    approved template (with its parameters) outside it; returns the session."""
    if not template and not text.strip():
        raise Refused(_("Write a message or choose a template."))
    if not template and not contact.window_open():
        raise Refused(_("More than 24 hours since the customer's last message: only an approved template can be "
                        "sent."))
    with transaction.atomic():  # a refused first message leaves no conversation behind
        session = handling.start(contact, PhoneNumber.objects.default(), user)
        if template:
            send_template(session=session, user=user, template=template, values=values)
        else:
            reply(session=session, user=user, text=text)
    return session


def queue(*, session, user, data, override=False):
    """Check and queue one message for the session's contact; the operator takes the session
    (ColleagueHasIt when a colleague has it, unless `override`)."""
    contact = session.contact
    try:
        message = sending.check({**data, "to": contact.address})
    except sending.SendRefused as refused:
        raise Refused(refused.message) from None
    with transaction.atomic():
        locked = conversation.lock(session.pk, "assigned_to")
        if locked.status == Session.Status.CLOSED:
            raise Refused(_("This conversation is closed; the customer's next message opens a new one."))
        colleague = handling.colleague(locked, user)
        if colleague and not override:
            raise handling.ColleagueHasIt(colleague)
        try:
            sending.check_rules(message, contact)
        except sending.SendRefused as refused:
            raise Refused(refused.message) from None
        now = timezone.now()
        # Answering a customer is taking the conversation: the bot must not talk over the operator.
        taking = locked.status != Session.Status.OPEN or locked.assigned_to_id is None
        if taking:
            locked.status = Session.Status.OPEN
            if locked.assigned_to_id is None:
                locked.assigned_to, locked.assigned_at = user, now
        locked.first_response_at = locked.first_response_at or now
        locked.last_message_at = now
        locked.unread = 0
        locked.save(update_fields=["status", "assigned_to", "assigned_at", "first_response_at", "last_message_at",
                                   "unread"])
        if taking:
            events.conversation(locked, "conversation.assigned")
        return sending.queue(phone_number=session.phone_number, contact=contact, message=message,
                             source=Message.Source.OPERATOR, session=locked, sent_by=user)


# What an operator's text may name (canned replies above all); filled when it is sent.
VARIABLES = ("{first_name}", "{name}", "{operator}")


def fill(text, *, session, user):
    """`text` with {first_name}, {name} (the customer's) and {operator} (the operator's) filled."""
    name = session.contact.name or ""
    values = {"{first_name}": name.split(" ")[0] if name else "", "{name}": name,
              "{operator}": user.get_full_name() or user.get_username()}
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def add_note(*, session, user, text):
    text = text.strip()
    if not text:
        raise Refused(_("The note is empty."))
    return Note.objects.create(session=session, author=user, text=text)
