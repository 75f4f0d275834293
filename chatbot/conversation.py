"""Conversations: every inbound message belongs to the contact's open session (ticket) on its
business number; a new one starts when none is open."""

from django.db import IntegrityError, transaction

from .models import Message, Session


def open_session(contact, phone_number, moment):
    """The contact's open session on this number, locked for this transaction, created if none."""
    sessions = Session.objects.select_for_update().filter(contact=contact, phone_number=phone_number)
    session = sessions.exclude(status=Session.Status.CLOSED).first()
    if session is None:
        try:
            with transaction.atomic():
                session = Session.objects.create(
                    contact=contact, phone_number=phone_number, started_at=moment, last_message_at=moment
                )
        except IntegrityError:
            # The one-open-session constraint: another worker opened it first; use that one.
            session = sessions.exclude(status=Session.Status.CLOSED).get()
    return session


@transaction.atomic
def handle_inbound(message_id):
    message = Message.objects.select_related("contact", "phone_number").get(pk=message_id)
    if message.session_id:
        return message.session
    session = open_session(message.contact, message.phone_number, message.timestamp)
    message.session = session
    message.save(update_fields=["session"])
    if message.timestamp > session.last_message_at:
        session.last_message_at = message.timestamp
    session.unread += 1
    session.save(update_fields=["last_message_at", "unread"])
    return session
