"""Webhook events stored durably, then applied to our data exactly once (design.md, "How data flows").

`store(body)` is all the webhook request does: one INSERT of the raw body, committed, then Meta
gets its 200. Applying in the request would tie Meta's latency to our work (a 1000-update batch
takes seconds; Meta wants p99 under 1 s) and caps the ack rate; Meta's advice is "verify, store,
answer 200, then process in a queue" (cloud-api.md §3). The pending rows are that queue: no task
row is written per webhook, which halves the request's database work.

`drain()` runs in every worker (chatbot/worker.py): it claims pending events oldest first (SKIP
LOCKED, so workers share them) and applies each item in a savepoint, so a bug or an unexpected
shape leaves the event stored as `failed` for `whatsapp_chatbot reprocess --failed`, never lost.
Each kind of item has its function in the `APPLY` dict: messages here, statuses in `statuses`,
contacts through `contacts`, and the conversation's turn in `conversation`.

Idempotency comes from constraints: a message is inserted once per `wamid` (a duplicate delivery,
even one racing on another connection, hits the unique index and is skipped), and statuses are
conditional UPDATEs that only move a message forward.
"""

import json
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tasks import task

from . import campaigns, contacts, conversation, events, media, statuses
from .models import AccountEvent, Contact, Message, PhoneNumber, Template, WebhookEvent, fit
from .whatsapp import graph, parser
from .whatsapp.vocabulary import FOLLOW_UP_TYPES, NOT_FROM_CUSTOMER, MessageType

logger = logging.getLogger(__name__)

# Escapes of what no column can store (NUL, a UTF-16 surrogate, paired or not) in a raw body.
STORABLE_RISK = re.compile(r"\\u(0000|d[89a-f])", re.IGNORECASE)


@dataclass
class Batch:
    """What applying one webhook body needs to remember across its events."""

    numbers: dict = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    unsupported: list = field(default_factory=list)

    def number(self, phone_number_id, display=""):
        if phone_number_id not in self.numbers:
            self.numbers[phone_number_id] = conversation.business_number(phone_number_id or "unknown", display)
        return self.numbers[phone_number_id]


def store(body):
    """Commit one signed webhook body (autocommit: durable when this returns); returns its id."""
    # One plain INSERT: this is the whole cost of acknowledging Meta, and the ORM's model
    # machinery doubled it (docs/benchmarks.md). The other columns take their database defaults.
    table = connection.ops.quote_name(WebhookEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (body, received_at) VALUES (%s, %s) RETURNING id",  # noqa: S608 (our table name)
            [body.decode("utf-8"), connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        return cursor.fetchone()[0]


def pending():
    """Whether any stored event waits. Every worker asks ten times a second when idle, so this is
    one indexed look-up in plain SQL outside a transaction: the claiming query's ORM compile and
    its BEGIN and COMMIT made idle workers cost a tenth of a core."""
    table = connection.ops.quote_name(WebhookEvent._meta.db_table)
    with connection.cursor() as cursor:
        # A literal, not a parameter, so that SQLite too uses the partial index on pending rows.
        cursor.execute(f"SELECT 1 FROM {table} WHERE result = '{WebhookEvent.Result.PENDING}' LIMIT 1")  # noqa: S608
        return cursor.fetchone() is not None


# A whole event that fails to apply (not one of its items: those fail alone) is tried this many
# times, then left `failed` with its error, so the events behind it never wait on it.
MAX_ATTEMPTS = 3


def drain(limit=100):
    """Apply up to `limit` (None: all) pending events, oldest first, one transaction each; returns
    how many were applied."""
    applied = 0
    if not pending():
        return applied
    while limit is None or applied < limit:
        event = None
        try:
            with transaction.atomic():
                # Another worker applying an event holds its row: skip it rather than wait, and never
                # apply one twice (the row only leaves `pending` in the transaction that applies it).
                event = (
                    WebhookEvent.objects.select_for_update(skip_locked=True)
                    .filter(result=WebhookEvent.Result.PENDING)
                    .order_by("pk")
                    .first()
                )
                if event is None:
                    return applied
                apply(event)
        except Exception as exc:
            if event is None:
                raise
            record_failure(event.pk, exc)
        applied += 1
    return applied


def reprocess(event):
    """Apply a stored event again (after a fix); duplicates inside it are skipped as usual."""
    try:
        with transaction.atomic():
            return apply(WebhookEvent.objects.select_for_update().get(pk=event.pk))
    except Exception as exc:
        return record_failure(event.pk, exc, final=True)


def record_failure(event_id, exc, *, final=False):
    """Count a failed try at a whole event (its transaction rolled back); after MAX_ATTEMPTS (at
    once when `final`) it is `failed` with the error. Raises when the database itself is gone."""
    logger.error("webhook event %s could not be applied", event_id, exc_info=exc)
    with transaction.atomic():
        events = WebhookEvent.objects.filter(pk=event_id)
        if final:
            event = events.select_for_update().get()
        else:
            # Unless another worker took it since (and will count its own try), or it was applied.
            event = events.select_for_update(skip_locked=True).filter(result=WebhookEvent.Result.PENDING).first()
            if event is None:
                return None
        event.attempts += 1
        event.error = f"{type(exc).__name__}: {exc}"[:2000]
        if final or event.attempts >= MAX_ATTEMPTS:
            event.result = WebhookEvent.Result.FAILED
        event.save(update_fields=["attempts", "error", "result"])
    return event


def apply(event):
    """Apply the events of `event.body` and save the outcome on `event` (inside a transaction)."""
    started = time.perf_counter()
    event.attempts += 1
    batch = Batch()
    errors = []
    document = json.loads(event.body)
    if STORABLE_RISK.search(event.body):  # rare enough to look for in the text first
        document = parser.storable(document)
    for item in parser.parse(document):
        try:
            with transaction.atomic():
                APPLY[type(item)](item, batch)
        except Exception as exc:
            # Only this item is rolled back: Meta batches several customers in one body, and the
            # others must not wait for a fix. The event stays failed, so reprocessing it retries
            # this item (the applied ones are duplicates by then).
            logger.exception("webhook event %s: an item failed to apply", event.pk)
            errors.append(f"{type(exc).__name__}: {exc}")
    if errors:
        event.result = WebhookEvent.Result.FAILED
        event.error = "\n".join(errors)[:2000]
    else:
        event.result = WebhookEvent.Result.PROCESSED
        event.error = ""
        event.processed_at = timezone.now()
    event.summary = dict(batch.counts)
    if batch.unsupported:
        event.summary["unsupported_reasons"] = batch.unsupported[:20]
    event.save(update_fields=["result", "error", "processed_at", "summary", "attempts"])
    logger.info(
        "webhook event %s %s %s in %.1f ms", event.pk, event.result,
        " ".join(f"{kind}={count}" for kind, count in sorted(batch.counts.items())),
        (time.perf_counter() - started) * 1000,
    )
    return event


# --- Contacts --------------------------------------------------------------------------------


# --- Messages --------------------------------------------------------------------------------


def media_fields(media):
    if media is None:
        return {}
    return {
        "media_id": media.id,
        "media_mime_type": media.mime_type,
        "media_sha256": media.sha256,
        "media_filename": media.filename,
        "media_status": Message.MediaStatus.PENDING if media.id or media.url else Message.MediaStatus.FAILED,
    }


def insert_message(fields):
    """Insert a message unless its wamid is known; returns the new row or None for a duplicate."""
    try:
        with transaction.atomic():
            return Message.objects.create(**fit(Message, fields))
    except IntegrityError:
        return None


def apply_inbound(item, batch):
    moment = item.timestamp or timezone.now()
    number = batch.number(item.phone_number_id, item.display_phone_number)
    contact = contacts.upsert(
        wa_id=item.from_wa_id, user_id=item.from_user_id, profile=item.profile, moment=moment,
        inbound=item.type not in NOT_FROM_CUSTOMER,
    )
    message = insert_message({
        "phone_number": number, "contact": contact, "direction": Message.Direction.IN,
        "source": Message.Source.CUSTOMER, "type": item.type, "text": item.text or call_permission_text(item.payload),
        "payload": item.payload, "context": item.context, "referral": item.referral, "wamid": item.wamid or None,
        "reply_to": item.reply_to, "target_wamid": item.target_wamid, "status": Message.Status.RECEIVED,
        "timestamp": moment, **media_fields(item.media),
        **statuses.error_fields(item.errors),
    })
    if message is None:
        batch.counts["duplicates"] += 1
        if item.type == MessageType.REACTION:
            update_reaction(item, moment)
        return
    batch.counts["messages"] += 1
    events.message(message, "message.received")
    follow_up_target(item, moment)
    # (A contact created just now has no earlier edits to catch up on.)
    if item.wamid and item.type not in FOLLOW_UP_TYPES and not contact.created:
        catch_up_follow_ups(message)
    if item.type == MessageType.SYSTEM and isinstance(item.payload, dict) \
            and item.payload.get("type") == "user_changed_number":
        contacts.change_number(contact, item.payload.get("wa_id") or item.payload.get("new_wa_id", ""))
    # The bot's turn runs here, in the transaction that stores the message: the message and its
    # answer commit together (or neither does, and the event is applied again), with the session
    # locked from the turn to the commit. Only a turn that fails leaves a task, committed with the
    # message, to try again a little later.
    try:
        with transaction.atomic():
            conversation.follow_up(message, new_contact=contact.created, quiet_until=contact.previous_inbound_at)
    except Exception:
        logger.exception("the turn of message %s failed; its task will try again", message.pk)
        conversation.schedule_turn(message.pk)
    if message.media_status == Message.MediaStatus.PENDING:
        media.download_media.enqueue(message.pk)
    if settings.WHATSAPP_MARK_READ and settings.WHATSAPP_ACCESS_TOKEN and item.type not in NOT_FROM_CUSTOMER:
        mark_read.enqueue(message.pk)


def call_permission_text(payload):
    """What the customer answered to our request to call them (an interactive reply with no title)."""
    if not isinstance(payload, dict) or payload.get("type") != "call_permission_reply":
        return ""
    reply = payload.get("call_permission_reply")
    accepted = isinstance(reply, dict) and reply.get("response") == "accept"
    return _("The customer allowed calls from the business") if accepted else _(
        "The customer declined calls from the business")


def apply_call(item, batch):
    """The Calling API: a customer's missed call reaches the conversation like a message (the bot
    stays silent, an operator sees it); every other call event is an account event."""
    if not item.missed:
        number = batch.number(item.phone_number_id, item.display_phone_number) if item.phone_number_id else None
        record_account_event("calls", item.event if item.event != "status" else item.status, "", item.raw, batch,
                             number)
        return
    apply_inbound(parser.InboundMessage(
        phone_number_id=item.phone_number_id, display_phone_number=item.display_phone_number,
        wamid=item.call_id, from_wa_id=item.from_wa_id, from_user_id=item.from_user_id, profile=item.profile,
        timestamp=item.timestamp, type=MessageType.CALL.value, text=_("Missed call: the customer tried to call"),
        payload=item.raw, media=None, context={}, reply_to="", referral={}, errors=[], target_wamid="", raw=item.raw,
    ), batch)


def update_reaction(item, moment):
    """Meta may reuse a reaction's wamid for a later change or removal: keep the newest."""
    Message.objects.filter(wamid=item.wamid, type=MessageType.REACTION, timestamp__lt=moment).update(
        text=item.text, payload=item.payload, timestamp=moment
    )


def follow_up_target(item, moment):
    """An edit or deletion changes the message it names; the newest edit wins in any order."""
    if item.type == MessageType.EDIT:
        Message.objects.filter(Q(edited_at__isnull=True) | Q(edited_at__lt=moment), wamid=item.target_wamid) \
            .update(text=item.text, edited_at=moment)
    elif item.type == MessageType.REVOKE:
        Message.objects.filter(wamid=item.target_wamid).update(revoked_at=moment)


def catch_up_follow_ups(message):
    """Edits and deletions that arrived before the message they change (Meta promises no order)."""
    later = list(Message.objects.filter(target_wamid=message.wamid, type__in=(MessageType.EDIT, MessageType.REVOKE))
                 .order_by("timestamp"))
    for follow_up in later:
        if follow_up.type == MessageType.EDIT:
            message.text, message.edited_at = follow_up.text, follow_up.timestamp
        else:
            message.revoked_at = follow_up.timestamp
    if later:
        Message.objects.filter(pk=message.pk).update(text=message.text, edited_at=message.edited_at,
                                                     revoked_at=message.revoked_at)


def apply_echo(item, batch):
    """A message the business sent from the WhatsApp Business app (coexistence numbers)."""
    moment = item.timestamp or timezone.now()
    number = batch.number(item.phone_number_id, item.display_phone_number)
    contact = contacts.upsert(wa_id=item.to_wa_id, user_id=item.to_user_id, profile=None, moment=moment, inbound=False)
    message = insert_message({
        "phone_number": number, "contact": contact, "direction": Message.Direction.OUT,
        "source": Message.Source.PHONE_APP, "type": item.type, "text": item.text, "payload": item.payload,
        "wamid": item.wamid or None, "status": Message.Status.SENT, "timestamp": moment, "sent_at": moment,
        "target_wamid": item.target_wamid, **media_fields(item.media),
    })
    if message is None:
        batch.counts["duplicates"] += 1
        return
    batch.counts["echoes"] += 1
    events.message(message, "message.sent")
    # The business edited or deleted a message from the app: the original changes, as the customer's do.
    follow_up_target(item, moment)
    if item.wamid and item.type not in FOLLOW_UP_TYPES:
        catch_up_follow_ups(message)
    statuses.apply_pending(message.wamid)


# --- Statuses --------------------------------------------------------------------------------


# --- Account, templates, errors ---------------------------------------------------------------


def apply_template_status(item, batch):
    template = Template.objects.filter(template_id=item.template_id).first() if item.template_id else None
    if template is None:
        names = fit(Template, {"name": item.name, "language": item.language})
        template, _ = Template.objects.get_or_create(
            **names, defaults=fit(Template, {"template_id": item.template_id, "waba_id": item.waba_id})
        )
    changes = {"status": item.event, "reason": "" if item.reason in ("", "NONE") else item.reason,
               "template_id": template.template_id or item.template_id}
    if item.category:
        changes["category"] = item.category
    for name, value in fit(Template, changes).items():
        setattr(template, name, value)
    template.save()
    campaigns.template_changed(template)
    batch.counts["templates"] += 1


def apply_template_category(item, batch):
    record_account_event("template_category_update", "", item.waba_id, item.raw, batch)
    # Only a change already made (previous_category present) is the template's new truth.
    if item.previous_category and item.new_category:
        Template.objects.filter(Q(template_id=item.template_id) | Q(name=item.name, language=item.language)).update(
            **fit(Template, {"category": item.new_category})
        )


def apply_quality(item, batch):
    number = PhoneNumber.objects.filter(display_phone_number=item.display_phone_number).first()
    if number and item.limit:
        number.messaging_limit = fit(PhoneNumber, {"messaging_limit": item.limit})["messaging_limit"]
        number.save(update_fields=["messaging_limit"])
    record_account_event("phone_number_quality_update", item.event, item.waba_id, item.raw, batch, number)
    if number:
        campaigns.quality_changed(number, event=item.event)


def apply_preference(item, batch):
    """The customer stopped, resumed or signed up for marketing messages in WhatsApp itself: kept
    like an opt-out to the bot (a stop from an unknown number too: it must be remembered)."""
    address = item.wa_id or item.user_id
    if item.category != "marketing_messages" or item.value not in ("stop", "resume", "signup") or not address:
        batch.counts["unsupported"] += 1
        batch.unsupported.append(f"user preference {item.category!r} {item.value!r}")
        return
    contact, moment = contacts.for_recipient(address), item.timestamp or timezone.now()
    if item.value == "stop":
        contacts.stopped_marketing([contact.pk], moment)
    else:
        contacts.resumed_marketing([contact.pk])
    if item.value == "signup":
        Contact.objects.filter(pk=contact.pk, opted_in_at__isnull=True).update(
            opted_in_at=moment, opt_in_source=_("WhatsApp sign-up link"))
    batch.counts["preferences"] += 1


def apply_account(item, batch):
    record_account_event(item.field, item.event, item.waba_id, item.raw, batch)


def apply_error(item, batch):
    number = batch.number(item.phone_number_id) if item.phone_number_id else None
    record_account_event("errors", str(item.code or ""), "", item.raw, batch, number)
    logger.warning("Meta reported error %s: %s", item.code, item.title)


def record_account_event(field_name, event, waba_id, payload, batch, number=None):
    AccountEvent.objects.create(**fit(AccountEvent, {"field": field_name, "event": event, "waba_id": waba_id,
                                                      "payload": payload, "phone_number": number}))
    batch.counts["account"] += 1


def apply_unsupported(item, batch):
    # Kept raw in the stored event and counted, so operators see it; never a 500 (Meta would retry).
    batch.counts["unsupported"] += 1
    batch.unsupported.append(item.reason)


APPLY = {
    parser.InboundMessage: apply_inbound,
    parser.EchoMessage: apply_echo,
    parser.StatusUpdate: statuses.apply_status,
    parser.TemplateStatusUpdate: apply_template_status,
    parser.TemplateCategoryUpdate: apply_template_category,
    parser.QualityUpdate: apply_quality,
    parser.AccountUpdate: apply_account,
    parser.MarketingPreference: apply_preference,
    parser.CallEvent: apply_call,
    parser.WebhookError: apply_error,
    parser.Unsupported: apply_unsupported,
}


@task()
def mark_read(message_id):
    """Blue ticks for the customer (cloud-api.md §7). A nicety: a failure is logged, not retried."""
    message = Message.objects.select_related("phone_number").get(pk=message_id)
    if not settings.WHATSAPP_ACCESS_TOKEN or not message.wamid:
        return
    try:
        graph.mark_read(message.phone_number.phone_number_id, message.wamid)
    except graph.GraphError as error:
        logger.warning("could not mark message %s read: %s", message_id, error)
