"""Messages an operator schedules in a conversation for a later time (in TIME_ZONE): an approved
template at any time, free text only when the customer's 24-hour window will still be open then
(cloud-api.md §11: Meta checks the window when it receives the message, not when we queue it).

A scheduled message is an ordinary outbound row, queued as every other (`sending.queued_row`),
whose `send_after` and `timestamp` are its time: the outbox claims only due rows, so it goes then
and not before, and the thread shows it where it will be. It is the only kind of row whose
`timestamp` is later than its `created_at` (others get theirs when made, or Meta's, earlier), which
tells it apart once due (`SCHEDULED`).

It can be cancelled while it is still `queued`. Once the outbox has claimed it, it is being sent:
too late. Cancelling takes the row's lock with SKIP LOCKED, as the outbox's claim does, so the two
never both have it: a row the outbox holds this instant is skipped and counts as claimed.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import handling, sending
from .models import WINDOW, Message, Session
from .whatsapp.vocabulary import MessageType

MAX_AHEAD = timedelta(days=30)
SCHEDULED = Q(timestamp__gt=F("created_at"))


class TooLate(Exception):
    """The scheduled message is no longer queued: the outbox is sending it, or has sent it."""


def local(moment):
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def window_closes(contact):
    """When the customer's 24-hour window closes (None when they never wrote)."""
    return contact.last_inbound_at + WINDOW if contact.last_inbound_at else None


def schedule(*, session, user, at, message, override=False):
    """Queue `message` (a Cloud API message object, without "to") to the session's customer for
    `at`; returns the row. Refusals are `sending.SendRefused` (field "at" for the time);
    `handling.ColleagueHasIt` when a colleague has the conversation, unless `override`. The
    conversation is not taken: nothing is said to the customer now."""
    now = timezone.now()
    if at <= now:
        raise sending.SendRefused("invalid_request", _("Choose a time in the future."), field="at")
    if at > now + MAX_AHEAD:
        days = MAX_AHEAD.days
        raise sending.SendRefused("invalid_request", ngettext(
            "A message can be scheduled at most %(days)d day ahead.",
            "A message can be scheduled at most %(days)d days ahead.", days) % {"days": days}, field="at")
    contact = session.contact
    message = sending.check({**message, "to": contact.address})
    if session.status == Session.Status.CLOSED:
        raise sending.SendRefused("conversation_closed", _(
            "This conversation is closed; the customer's next message opens a new one."))
    colleague = handling.colleague(session, user)
    if colleague and not override:
        raise handling.ColleagueHasIt(colleague)
    if message["type"] != MessageType.TEMPLATE and not contact.window_open(now=at) and not contact.blocked:
        raise window_refusal(contact, now)
    sending.check_rules(message, contact)  # blocked, opt-out, template parameters
    row = sending.queued_row(phone_number=session.phone_number, contact=contact, message=message,
                             source=Message.Source.OPERATOR, session=session, sent_by=user)
    row.send_after = row.timestamp = at
    row.save(force_insert=True)
    return row


def window_refusal(contact, now):
    closes = window_closes(contact)
    if closes is None or closes <= now:
        return sending.SendRefused("outside_customer_service_window", _(
            "More than 24 hours since the customer's last message (or they never wrote): only an approved "
            "template can be scheduled."))
    return sending.SendRefused("outside_customer_service_window", _(
        "The customer's 24-hour window closes at %(until)s: free text can be scheduled only until then. "
        "For a later time, choose an approved template.") % {"until": local(closes)}, field="at")


def pending(session):
    """The session's scheduled messages still waiting for their time (or for the outbox), soonest first."""
    return (Message.objects.filter(SCHEDULED, session=session, status=Message.Status.QUEUED)
            .select_related("sent_by").order_by("timestamp", "pk"))


def cancel(message):
    """Delete a scheduled message that is still queued; TooLate once the outbox has claimed it."""
    with transaction.atomic():
        row = list(Message.objects.select_for_update(skip_locked=True)
                   .filter(SCHEDULED, pk=message.pk, status=Message.Status.QUEUED).only("pk")[:1])
        if not row:
            raise TooLate
        Message.objects.filter(pk=message.pk).delete()
