"""LGPD (Lei Geral de Proteção de Dados): a customer's data exported, erased on request, and
everything personal dropped after `STORE_MESSAGE_UP_TO` days.

- `export(contact)`: the contract's contact export (design.md, "Contact export") plus the list of
  stored media files.
- `anonymize(contact, by=user)`: irreversible. Name, number, BSUID, username, every text, payload,
  context and media file of the contact's messages, the sessions' collected answers, survey
  comments and notes, and the parts of raw webhook bodies about them are erased, and the events
  for other systems that carry them deleted, delivered or not. The other rows stay,
  empty, so counts and reports (messages per day, sessions per department, satisfaction scores)
  keep adding up. A later message from the same number starts a new contact: nothing links it to
  the erased one.
- `purge(days)`: retention, in small batches (one short transaction each), so it can run daily from
  cron next to live traffic without holding locks on the busy tables.
"""

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import CharField, Q
from django.db.models.functions import Cast
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from . import contacts, documents, statuses
from .models import (
    IDEMPOTENCY_TTL,
    AccountEvent,
    Contact,
    EventDelivery,
    IdempotencyKey,
    Message,
    Note,
    PendingStatus,
    Session,
    WebhookEvent,
)

logger = logging.getLogger(__name__)

BATCH = 1000
# An Idempotency-Key answer is replayed for IDEMPOTENCY_TTL (a day) and is dead weight after,
# holding the number it was sent to: it goes then, whatever the retention.


# --- Export ------------------------------------------------------------------------------------


def export(contact):
    """The contract's contact export (the same document as `GET /chatbot/api/contacts/<wa_id>/`)."""
    return documents.contact_export(contact)


# --- Anonymize ---------------------------------------------------------------------------------


def identifiers(contact):
    """Every string that names the contact in Meta's payloads: the number in both Brazilian forms, the BSUID."""
    names = set(contacts.variants(contact.wa_id)) if contact.wa_id else set()
    if contact.user_id:
        names.add(contact.user_id)
    return names


def anonymize(contact, *, by=None):
    """Erase the contact's personal data for good; returns counts of what was erased.

    Rows are kept (emptied) so aggregates stay right; see the module docstring for the list.
    """
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        ids = identifiers(contact)
        messages = Message.objects.filter(contact=contact)
        wamids = set(messages.exclude(wamid=None).values_list("wamid", flat=True))
        files = list(messages.exclude(media_file="").values_list("media_file", flat=True))
        message_ids = set(messages.values_list("pk", flat=True))
        now = timezone.now()
        # Messages still waiting in the outbox could never be sent: the address is gone.
        messages.filter(status=Message.Status.QUEUED).update(
            status=Message.Status.FAILED, failed_at=now, error_title="contact anonymized"
        )
        erased_messages = messages.update(
            text="", payload={}, context={}, referral={}, wamid=None, reply_to="", target_wamid="",
            error_details="", media_id="", media_sha256="", media_filename="", media_file="",
        )
        sessions = Session.objects.filter(contact=contact)
        session_ids = list(sessions.values_list("pk", flat=True))
        sessions.update(bot_state={}, data={}, csat_comment="")  # the survey's comment: the customer's words
        sessions.exclude(status=Session.Status.CLOSED).update(status=Session.Status.CLOSED, closed_at=now)
        # Operators' notes on the sessions are about the customer.
        Note.objects.filter(session__in=session_ids).update(text="")
        PendingStatus.objects.filter(Q(wamid__in=wamids) | Q(payload__recipient_id__in=sorted(ids))
                                     | Q(payload__recipient_user_id__in=sorted(ids))).delete()
        if ids:
            IdempotencyKey.objects.filter(response__to__in=sorted(ids)).delete()
        events = redact_webhook_events(ids, wamids)
        # Events for other systems that carry them, delivered or not: they must not leave now.
        EventDelivery.objects.filter(contact=contact).delete()
        redact_account_events(ids | wamids)
        redact_tasks(ids | wamids)
        redact_admin_log(contact, session_ids)
        Contact.objects.filter(pk=contact.pk).update(
            wa_id="", user_id="", username="", name="", anonymized_at=now, send_booked_until=None
        )
        if by is not None and getattr(by, "pk", None):
            LogEntry.objects.log_actions(
                user_id=by.pk, queryset=Contact.objects.filter(pk=contact.pk), action_flag=CHANGE,
                change_message="Anonymized (LGPD)", single_object=True,
            )
        # Files go once the rows no longer point at them; if the transaction fails they stay. Any
        # file named after one of the messages goes too (a download the old code left behind).
        transaction.on_commit(lambda: delete_files(files + stray_files(message_ids)))
    counts = {"messages": erased_messages, "media_files": len(files), "webhook_events": events,
              "sessions": len(session_ids)}
    # The log names no person: the row id and the operator's id only.
    logger.info("contact %s anonymized by user %s: %s", contact.pk, getattr(by, "pk", None), counts)
    return counts


def redact_webhook_events(ids, wamids):
    """Remove the contact from every stored webhook body that mentions them; returns how many changed.

    Meta batches several customers into one POST, so the body is edited, not dropped: the contact's
    messages, statuses, echoes and profile go, the rest stays (and a pending event still applies).
    A body still naming the contact after that (a shape we do not know) is erased whole.
    """
    if not ids:
        return 0
    # Every body about the contact names them (`from`, `wa_id`, `recipient_id`, `to`): searching by
    # those, not by each wamid, keeps the query small for a contact with years of messages.
    about = Q()
    for name in ids:
        about |= Q(body__contains=name)
    changed = 0
    for event in WebhookEvent.objects.filter(about).only("body", "summary").iterator():
        body = redact_body(event.body, ids, wamids)
        if body != event.body:
            # An error or an unsupported reason may quote the contact's part of the body too.
            summary = {key: value for key, value in event.summary.items() if key != "unsupported_reasons"}
            WebhookEvent.objects.filter(pk=event.pk).update(body=body, error="", summary=summary)
            changed += 1
    return changed


# Meta's lists inside a change's `value`, and the keys that say whom an item is about (cloud-api.md §4-6).
ABOUT = {
    "contacts": ("wa_id", "user_id"),
    "messages": ("from", "from_user_id", "id"),
    "statuses": ("recipient_id", "recipient_user_id", "id"),
    "message_echoes": ("to", "to_user_id", "id"),
}


def redact_body(body, ids, wamids):
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    names = ids | wamids
    for entry in document.get("entry") or [] if isinstance(document, dict) else []:
        for change in (entry.get("changes") or []) if isinstance(entry, dict) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            for key, fields in ABOUT.items():
                if isinstance(value.get(key), list):
                    value[key] = [item for item in value[key]
                                  if not (isinstance(item, dict) and any(item.get(f) in names for f in fields))]
    if mentions(document, names):
        return ""
    # Meta's escaping (non-ASCII as \uXXXX), as the other bodies are stored.
    return json.dumps(document, ensure_ascii=True, separators=(",", ":"))


def mentions(document, names):
    """Whether any string in a JSON document (keys too), however deeply nested, is one of `names`."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and node in names:
            return True
    return False


def redact_account_events(names):
    """Meta's account news that names the contact (an error about their message) keep no payload."""
    for event in AccountEvent.objects.only("payload").iterator():
        if mentions(event.payload, names):
            AccountEvent.objects.filter(pk=event.pk).update(payload={})


def redact_tasks(names):
    """Background task rows that name the contact in their arguments or a failure's traceback
    (a wamid encodes the customer's number) are deleted: finished ones are only history, and a
    waiting one could only act on data just erased."""
    # Early statuses' tasks carried the wamid before they carried their row's id (and under the old path).
    paths = [statuses.apply_pending_statuses.module_path, "chatbot.tasks.apply_pending_statuses"]
    rows = DBTaskResult.objects.filter(~Q(traceback="") | Q(task_path__in=paths))
    doomed = [row.pk for row in rows.only("args_kwargs", "return_value", "traceback").iterator()
              if mentions([row.args_kwargs, row.return_value], names)
              or any(name in row.traceback for name in names)]
    DBTaskResult.objects.filter(pk__in=doomed).delete()


def redact_admin_log(contact, session_ids):
    """The admin's history names objects by their __str__ (a customer's name, a note's first words,
    a message's wamid) and lists changed fields: about the contact, it keeps only the row ids."""
    related = [
        (Contact, Contact.objects.filter(pk=contact.pk)),
        (Session, Session.objects.filter(pk__in=session_ids)),
        (Note, Note.objects.filter(session__in=session_ids)),
        (Message, Message.objects.filter(contact=contact)),
    ]
    for model, rows in related:
        object_ids = rows.annotate(object_id=Cast("pk", CharField())).values("object_id")
        LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(model), object_id__in=object_ids) \
            .update(object_repr=f"#{contact.pk}" if model is Contact else "", change_message="")


def stray_files(message_ids):
    """Stored media files named after one of `message_ids` ("<id>-…", how downloads are named)."""
    found, folders = [], ["media"]
    while folders:
        folder = folders.pop()
        try:
            subfolders, names = default_storage.listdir(folder)
        except FileNotFoundError:
            continue
        folders += [f"{folder}/{name}" for name in subfolders]
        found += [f"{folder}/{name}" for name in names
                  if name.split("-", 1)[0].isdigit() and int(name.split("-", 1)[0]) in message_ids]
    return found


def delete_files(names):
    for name in names:
        try:
            default_storage.delete(name)
        except OSError as error:
            # The row no longer points at it; say which file to remove by hand (a path, no personal data).
            logger.warning("could not delete media file %s: %s", name, error)


# --- Retention ---------------------------------------------------------------------------------


def _no_progress(iterable, total, label):
    return iterable


def purge(days=None, *, batch=BATCH, progress=None):
    """Delete what is older than `days` (default STORE_MESSAGE_UP_TO); returns counts per kind.

    Each batch is its own short transaction, so webhooks and sends carry on meanwhile; running it
    again (or twice at once) only finds less to do. Contacts stay (an opt-out must be remembered),
    and so do sessions, emptied of their collected answers and survey comments (the scores stay),
    for the reports.
    `progress(iterable, total, label)` may wrap each kind's loop over batches.
    """
    days = settings.STORE_MESSAGE_UP_TO if days is None else days
    now = timezone.now()
    cutoff = now - timedelta(days=days)
    progress = progress or _no_progress
    finished_tasks = DBTaskResult.objects.finished()
    kinds = [
        # (key, queryset of what goes, function deleting one batch of primary keys)
        ("messages", Message.objects.filter(timestamp__lt=cutoff).exclude(
            status__in=[Message.Status.QUEUED, Message.Status.SENDING]), delete_messages),
        ("webhook_events", WebhookEvent.objects.filter(received_at__lt=cutoff).exclude(
            result=WebhookEvent.Result.PENDING), None),
        ("tasks", finished_tasks.filter(finished_at__lt=cutoff), None),
        ("pending_statuses", PendingStatus.objects.filter(received_at__lt=cutoff), None),
        ("event_deliveries", EventDelivery.objects.filter(created_at__lt=cutoff).exclude(
            status=EventDelivery.Status.PENDING, endpoint__removed_at__isnull=True), None),
        ("idempotency_keys", IdempotencyKey.objects.filter(created_at__lt=max(cutoff, now - IDEMPOTENCY_TTL)), None),
    ]
    counts = {"messages": 0, "media_files": 0}
    for key, queryset, delete in kinds:
        total = queryset.count()
        counts.setdefault(key, 0)
        for _batch in progress(range(-(-total // batch)), -(-total // batch), key):
            pks = list(queryset.values_list("pk", flat=True)[:batch])
            if not pks:
                break
            if delete:
                for name, count in delete(pks).items():
                    counts[name] += count
            else:
                counts[key] += queryset.model.objects.filter(pk__in=pks).delete()[0]
    counts["sessions"] = Session.objects.filter(status=Session.Status.CLOSED, closed_at__lt=cutoff).exclude(
        data={}, bot_state={}, csat_comment="").update(data={}, bot_state={}, csat_comment="")
    logger.info("retention purge (%d days): %s", days, counts)
    return counts


def delete_messages(pks):
    with transaction.atomic():
        rows = Message.objects.filter(pk__in=pks)
        files = list(rows.exclude(media_file="").values_list("media_file", flat=True))
        deleted = rows.delete()[1].get(Message._meta.label, 0)
        transaction.on_commit(lambda: delete_files(files))
    return {"messages": deleted, "media_files": len(files)}

