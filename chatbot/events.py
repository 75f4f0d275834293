"""Events for other systems (design.md, "Event webhooks"): what happened, recorded in the same
transaction as the change it describes, one `EventDelivery` row per endpoint that wants it. The
workers post them (`event_delivery`); an event nobody subscribed to costs nothing but a look at
the endpoints, which each process keeps for a second.

Every event's body is fixed when it is recorded, so each attempt and each replay sends the same
bytes with the same `id`.
"""

import json
import secrets
import threading
import time

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from . import campaign_report, documents
from .models import Campaign, EventDelivery, Message, Session, WebhookEndpoint

TYPES = (
    "message.received", "message.sent", "message.delivered", "message.read", "message.failed",
    "conversation.created", "conversation.waiting", "conversation.assigned", "conversation.closed",
    "contact.opted_out", "contact.opted_in",
    "campaign.finished",
)
# Posted by `test` (the command, the settings page) only, never recorded for the workers.
TEST_TYPE = "endpoint.test"
MESSAGE_STATUS_EVENTS = {Message.Status.SENT: "message.sent", Message.Status.DELIVERED: "message.delivered",
                         Message.Status.READ: "message.read", Message.Status.FAILED: "message.failed"}

# The active endpoints, read at most this often per process (and at once after a change here).
ENDPOINTS_SECONDS = 1.0
_endpoints = {"at": -ENDPOINTS_SECONDS, "list": []}
_lock = threading.Lock()
# Set when this process recorded an event: the worker's delivery thread starts on it at once.
RECORDED = threading.Event()


def active_endpoints():
    with _lock:
        if time.monotonic() - _endpoints["at"] >= ENDPOINTS_SECONDS:
            _endpoints["list"] = list(WebhookEndpoint.objects.filter(active=True).only("id", "events"))
            _endpoints["at"] = time.monotonic()
        return _endpoints["list"]


@receiver([post_save, post_delete], sender=WebhookEndpoint)
def forget_endpoints(**kwargs):
    with _lock:
        _endpoints["at"] = -ENDPOINTS_SECONDS


def wanted(event_type):
    """The endpoints that want `event_type` now."""
    return [endpoint for endpoint in active_endpoints() if endpoint.wants(event_type)]


def new_id():
    return f"evt_{secrets.token_hex(12)}"


def body(event_id, event_type, data, created_at):
    return json.dumps({"id": event_id, "type": event_type, "created_at": created_at.isoformat(), "data": data},
                      cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


def emit(event_type, data, *, contact=None):
    """Record one event for every endpoint that wants it; `data` may be a function, called only
    then. Call it inside the transaction of the change. Returns the event's id, or None."""
    return emit_many(event_type, [(data, contact)])[0]


def emit_many(event_type, items):
    """One event per (data or function, contact) of `items`, in one INSERT; returns their ids."""
    endpoints = wanted(event_type)
    if not endpoints:
        return [None] * len(items)
    now = timezone.now()
    rows, ids = [], []
    for data, contact in items:
        event_id = new_id()
        text = body(event_id, event_type, data() if callable(data) else data, now)
        contact_id = getattr(contact, "pk", contact)
        rows += [EventDelivery(endpoint_id=endpoint.pk, event_id=event_id, type=event_type, body=text,
                               contact_id=contact_id, created_at=now, next_attempt_at=now) for endpoint in endpoints]
        ids.append(event_id)
    EventDelivery.objects.bulk_create(rows)
    transaction.on_commit(RECORDED.set)
    return ids


# --- The contract's events --------------------------------------------------------------------


def message(message_row, event_type):
    """`message.received` … `message.failed` for one message row."""
    return emit(event_type, lambda: documents.message_object(message_row), contact=message_row.contact_id)


def messages_moved(ids, status):
    """The `message.<status>` event of each message of `ids` (which just moved to `status`)."""
    event_type = MESSAGE_STATUS_EVENTS.get(status)
    if not event_type or not wanted(event_type):  # before `ids`, which may be a query
        return
    rows = Message.objects.filter(pk__in=list(ids)).select_related("contact", "phone_number").order_by("pk")
    emit_many(event_type, [(documents.message_object(row), row.contact_id) for row in rows])


def conversation_data(session):
    session = Session.objects.select_related("contact", "department", "assigned_to").get(pk=session.pk)
    operator = session.assigned_to
    return {
        "id": session.pk,
        "contact": {"wa_id": session.contact.wa_id or session.contact.user_id, "name": session.contact.name},
        "status": session.status,
        "queue": session.department.name if session.department else None,
        "operator": {"id": operator.pk, "username": operator.get_username(),
                     "name": operator.get_full_name() or operator.get_username()} if operator else None,
        "csat": documents.csat(session),
    }


def conversation(session, event_type):
    """`conversation.created|waiting|assigned|closed` for the session, as it is in this transaction."""
    return emit(event_type, lambda: conversation_data(session), contact=session.contact_id)


def conversations(session_ids, event_type):
    if session_ids and wanted(event_type):
        for session in Session.objects.filter(pk__in=list(session_ids)).order_by("pk"):
            conversation(session, event_type)


def contact_data(contact):
    return {"wa_id": contact.wa_id or contact.user_id, "name": contact.name}


def opted(contacts, opted_out):
    """`contact.opted_out` / `contact.opted_in` for each of `contacts` (rows that just changed)."""
    event_type = "contact.opted_out" if opted_out else "contact.opted_in"
    if contacts and wanted(event_type):
        emit_many(event_type, [(contact_data(contact), contact.pk) for contact in contacts])


def campaign_finished(campaign_id):
    """`campaign.finished`, with the figures counted now."""
    def data():
        campaign = Campaign.objects.select_related("phone_number").get(pk=campaign_id)
        campaign_report.refresh(campaign)
        return documents.campaign_object(campaign)
    return emit("campaign.finished", data)


def test_body(endpoint):
    """The body `test` posts: an event of its own type, recorded nowhere."""
    event_id = new_id()
    return event_id, body(event_id, TEST_TYPE, {"endpoint": endpoint.pk, "url": endpoint.url}, timezone.now())
