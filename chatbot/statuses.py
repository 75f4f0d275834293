"""Meta's status webhooks (sent, delivered, read, played, failed) applied to our messages, forward
only, in any arrival order (cloud-api.md §3, §5).

A status can arrive before the message it is about is known: the sender records a message's
wamid just after Meta accepts it, and the status webhook may commit first, or a send's answer was
lost and only the status (carrying our `biz_opaque_callback_data`) says which message it was.
Such a status is kept (`PendingStatus`) and applied when the message appears, by the sender or by
a delayed task.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone
from django_tasks import task

from . import campaigns, contacts, events
from .models import Message, PendingStatus, fit
from .whatsapp import graph
from .whatsapp.fields import as_dict, as_str, as_time, error_details
from .whatsapp.vocabulary import META_STATUSES, STATUS_RANK, Status

# What every send carries as `biz_opaque_callback_data`, followed by the message's id: Meta echoes
# it in the message's status webhooks.
CALLBACK_PREFIX = "hoz:"


def error_fields(errors):
    if not isinstance(errors, list | tuple) or not errors or not isinstance(errors[0], dict):
        return {}
    first = errors[0]
    details = error_details(first)  # in `error_data`, or beside the code in Meta's older shape
    code = first.get("code")
    return {
        "error_code": code if isinstance(code, int) else None,
        "error_title": str(first.get("title") or first.get("message") or "")[:255],
        "error_details": str(details or first.get("message") or ""),
    }


def apply_status(item, batch):
    """A status webhook (`parser.StatusUpdate`) applied to its message, or kept for it."""
    if item.status not in META_STATUSES:
        batch.counts["unsupported"] += 1
        batch.unsupported.append(f"unknown status {item.status!r}")
        return
    moment = item.timestamp or timezone.now()
    if not Message.objects.filter(wamid=item.wamid).exists() and not claim_wamid(item):
        keep_pending_status(item, moment)
        batch.counts["pending_statuses"] += 1
        return
    move_status(item.wamid, item.status, moment=moment, errors=item.errors, pricing=item.pricing,
                conversation=item.conversation)
    batch.counts["statuses"] += 1


def claim_wamid(item):
    """Give the wamid to the message whose send had no answer (timeout, lost connection), found by
    the `biz_opaque_callback_data` the sender put on it (`outbox`); True when one took it."""
    tag = item.biz_opaque_callback_data
    number = tag.removeprefix(CALLBACK_PREFIX)
    if not tag.startswith(CALLBACK_PREFIX) or not number.isdigit():
        return False
    unknown = Message.objects.filter(pk=int(number), direction=Message.Direction.OUT, wamid__isnull=True)
    try:
        with transaction.atomic():
            return unknown.update(wamid=item.wamid, error_title="", error_details="", claimed_at=None) == 1
    except IntegrityError:
        return False


def keep_pending_status(item, moment):
    """Keep a status whose message we do not know yet, and look again shortly.

    The sender records a wamid right after Meta accepts the message, and Meta's status webhook
    can beat that commit; neither transaction sees the other's row, so a delayed task (not only
    this transaction) applies the status once the message is there.
    """
    try:
        with transaction.atomic():
            pending_status = PendingStatus.objects.create(**fit(PendingStatus, {
                "wamid": item.wamid, "status": item.status, "timestamp": moment, "payload": item.raw}))
    except IntegrityError:
        return
    # The task carries the row's id, not the wamid: a real wamid encodes the customer's number,
    # and task rows outlive the customer's erasure until the retention purge.
    schedule_pending_statuses(pending_status.pk)


def move_status(wamid, status, *, moment, errors=(), pricing=None, conversation=None):
    """Record `status` at `moment` for the message `wamid`, moving its status forward only."""
    messages = Message.objects.filter(wamid=wamid)
    # Each status keeps its first timestamp; a duplicate delivery changes nothing.
    messages.update(**{f"{status}_at": Coalesce(F(f"{status}_at"), moment)})
    lower = [name for name, rank in STATUS_RANK.items() if rank < Status(status).rank]
    moved = messages.filter(status__in=lower).update(status=status)
    if status == Status.FAILED and errors:
        error = error_fields(errors)
        messages.update(**fit(Message, error))
        if error.get("error_code") == graph.MARKETING_STOPPED:
            contacts.stopped_marketing(messages.values("contact_id"), moment)
        campaigns.failed(list(messages.filter(source=Message.Source.CAMPAIGN).values_list("pk", flat=True)))
    billing = billing_fields(pricing, conversation)
    if billing:
        # The first value of each is kept, in one UPDATE that matches no row once they all are
        # (statuses are the busiest webhooks; `sent` and `delivered` both carry these blocks).
        unset = Q()
        for name in billing:
            unset |= Q(**{f"{name}__isnull": True}) if name in NULLABLE_BILLING else Q(**{name: ""})
        messages.filter(unset).update(**{
            name: Coalesce(F(name), Value(value)) if name in NULLABLE_BILLING
            else Coalesce(NullIf(F(name), Value("")), Value(value))
            for name, value in billing.items()
        })
    if moved:  # after the error and the billing are on the rows, which the events carry
        events.messages_moved(messages.values_list("pk", flat=True), status)


NULLABLE_BILLING = frozenset({"billable", "conversation_expires_at"})


def billing_fields(pricing, conversation):
    """The Message fields a status's `pricing` and `conversation` blocks fill (cloud-api.md §5),
    only those Meta sent."""
    pricing, conversation = as_dict(pricing), as_dict(conversation)
    billable = pricing.get("billable")
    fields = fit(Message, {
        "pricing_category": as_str(pricing.get("category")), "pricing_type": as_str(pricing.get("type")),
        "pricing_model": as_str(pricing.get("pricing_model")), "conversation_id": as_str(conversation.get("id")),
        "conversation_origin": as_str(as_dict(conversation.get("origin")).get("type")),
        "conversation_expires_at": as_time(conversation.get("expiration_timestamp")),
        "billable": billable if isinstance(billable, bool) else None,
    })
    return {name: value for name, value in fields.items() if value not in ("", None)}


def apply_pending(wamid):
    """Apply the statuses that arrived before the message `wamid` was known; returns how many."""
    pending = list(PendingStatus.objects.filter(wamid=wamid))
    for status in pending:
        payload = status.payload if isinstance(status.payload, dict) else {}
        move_status(wamid, status.status, moment=status.timestamp, errors=payload.get("errors") or (),
                    pricing=payload.get("pricing"), conversation=payload.get("conversation"))
    PendingStatus.objects.filter(pk__in=[status.pk for status in pending]).delete()
    return len(pending)


# Look again for the message of an early status after 1 s, 4 s, 16 s, 64 s, 4 min and 17 min:
# long enough for a slow send to record its wamid or a late echo to arrive.
PENDING_STATUS_DELAYS = [1, 4, 16, 64, 256, 1024]


@task()
def apply_pending_statuses(pending_status, attempt=0):
    """`pending_status`: a PendingStatus id (a wamid in tasks queued by earlier versions). Done
    once its row is gone: applied with its message, erased, or purged."""
    if isinstance(pending_status, str):
        wamid = pending_status
    else:
        wamid = PendingStatus.objects.filter(pk=pending_status).values_list("wamid", flat=True).first()
        if wamid is None:
            return
    if apply_pending(wamid) == 0 and attempt + 1 < len(PENDING_STATUS_DELAYS):
        schedule_pending_statuses(pending_status, attempt + 1)


def schedule_pending_statuses(pending_status, attempt=0):
    run_after = timezone.now() + timedelta(seconds=PENDING_STATUS_DELAYS[attempt])
    apply_pending_statuses.using(run_after=run_after).enqueue(pending_status, attempt)
