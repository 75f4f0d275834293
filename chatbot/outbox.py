"""The outbox: every message we send (bot, operator, API, bulk) is first a `queued` row (queued by
`sending`); the workers' outbox sends it (design.md, "How data flows" 4; cloud-api.md §7, §11, §12).

The queued rows are the queue, as the stored webhooks are for inbound: `drain` claims a batch
with SKIP LOCKED, so any number of workers on any number of machines share it, and then

- books the recipients under Meta's pair rate limit (about one message per 6 s to one user, with
  bursts), deferring what would exceed it;
- books slots on the business number's throughput cap, shared by all workers (`ratelimit`);
- sends, several at once (Meta answers in 100-300 ms, so one at a time could not reach 80/s);
- records `sent` with the wamid, or schedules a retry with backoff and jitter for transient errors,
  or records `failed` with Meta's code and a plain explanation.

At most once: Meta has no idempotency key for sends, so a message that may have reached Meta
(timeout, answer lost, worker died mid-request) is never sent again by us. It stays `sending`;
every send carries `biz_opaque_callback_data` = "hoz:<id>", which Meta echoes in the message's
status webhooks, so its wamid and status are recorded when they arrive (`statuses.apply_status`).
Without any within IN_FLIGHT_TIMEOUT it ends `failed` as "delivery unknown", for a person to
check and resend; a duplicate sent to a customer cannot be taken back, a resend can be decided.
"""

import functools
import hashlib
import logging
import random
import threading
import uuid
from collections import Counter, defaultdict
from concurrent.futures import wait
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from . import campaign_sending, campaigns, contacts, events, ratelimit, sending, statuses
from .failures import UNKNOWN_DELIVERY
from .models import Contact, Message, PendingStatus, PhoneNumber
from .statuses import CALLBACK_PREFIX
from .whatsapp import graph

logger = logging.getLogger(__name__)

# A claim takes about half a second of sending at the cap (within these bounds): each batch costs
# a few statements whatever its size, and a claimed message waits for its slot in `sending`.
BATCH_SECONDS, MIN_BATCH, MAX_BATCH = 0.5, 10, 250
RETRY_FOR = timedelta(hours=1)
IN_FLIGHT_TIMEOUT = timedelta(minutes=10)
TOKEN_PAUSE = timedelta(minutes=5)
PAIR_INTERVAL = 6.0
PAIR_BURST = 10
# Pace a little under the cap: a send that starts a few ms late must not push a second over it.
# 3 %, and at least one message a second (at a cap of 20, 3 % is under one message).
CAP_MARGIN = 0.97
def meta_message(message):
    """The body Meta's /messages takes for a queued row."""
    contact = message.contact
    # A phone number without "+" gets the business number's country code prepended (§7).
    to = f"+{contact.wa_id}" if contact.wa_id else contact.user_id
    body = {"to": to, "type": message.type, message.type: message.payload,
            "biz_opaque_callback_data": f"{CALLBACK_PREFIX}{message.pk}"}
    if message.context:
        body["context"] = message.context
    return body


def token_fingerprint():
    return hashlib.sha256(settings.WHATSAPP_ACCESS_TOKEN.encode()).hexdigest()[:16]


def token_refused():
    """Whether Meta refused the current access token (and nothing has been sent with it since)."""
    if not settings.WHATSAPP_ACCESS_TOKEN:
        return False
    return PhoneNumber.objects.filter(token_fingerprint=token_fingerprint(), token_invalid_at__isnull=False).exists()


# --- The outbox ------------------------------------------------------------------------------


@dataclass
class Outcome:
    message: Message
    result: str  # sent | retry | pair_limit | throughput | token | unknown | failed | released
    wamid: str = ""
    wa_id: str = ""
    error: graph.GraphError | None = None


def batch_size():
    return max(MIN_BATCH, min(MAX_BATCH, int(settings.WHATSAPP_MESSAGES_PER_SECOND * BATCH_SECONDS)))


def queued():
    """Whether any queued message is due: the idle poll, as `inbound.pending`. One scheduled for
    next week is not work now (the poll would otherwise run a claim every POLL_SECONDS for it).
    Only queued rows are read, on the partial index `message_queued_idx`: measured on PostgreSQL
    15 with 300 scheduled rows beside 200,000 others, 0.06 ms, no index on `send_after` needed."""
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table} WHERE status = '{Message.Status.QUEUED}' "  # noqa: S608
                       "AND (send_after IS NULL OR send_after <= %s) LIMIT 1", [timezone.now()])
        return cursor.fetchone() is not None


def drain(*, pool=None, limit=None, stopping=None):
    """Send one batch of due queued messages and record the answers; returns how many were
    claimed (the command's `--batch` and the tests; the worker runs a `Pipeline`). Once
    `stopping` (an Event) is set, nothing more is claimed and what is claimed but unsent goes
    back to the queue."""
    stopping = stopping or threading.Event()
    jobs = take(limit or batch_size(), stopping)
    if not jobs:
        return 0
    send_job = functools.partial(send_at, stopping=stopping)
    record(list(pool.map(send_job, jobs)) if pool else [send_job(job) for job in jobs])
    return len(jobs)


def take(limit, stopping):
    """Claim a batch and book its slots on the numbers' caps: [(message, when it may start)].
    Conversations' messages come first; campaigns fill the room left (`campaign_sending.feed`)."""
    feeding = campaign_sending.due()
    if not queued() and not feeding:
        return []
    now = timezone.now()
    messages = claim(now, limit, stopping)
    room = limit - len(messages)
    if room and feeding and not stopping.is_set() and feed(room, now):
        messages += claim(now, room, stopping)
    if not messages:
        return []
    slots = book_numbers(messages)
    return [(message, slots[message.pk]) for message in messages]


def feed(room, now):
    """Let the campaigns fill `room`; a campaign's fault must not cost the conversations' messages
    claimed already (they are `sending`, this batch's to send)."""
    try:
        return campaign_sending.feed(room, rate=paced_rate(settings.WHATSAPP_MESSAGES_PER_SECOND), now=now)
    except Exception:
        logger.exception("the campaigns could not be fed; the conversations' messages go on")
        return 0


class Pipeline:
    """The worker's outbox: the next batch is claimed while the last one's sends are still at
    Meta, once this worker's booked slots run out within LOOKAHEAD seconds, so Meta's 100-300 ms
    answers change each message's latency, not the number's throughput. The answers are recorded
    by the worker's thread as they come (the send threads never touch the database)."""

    LOOKAHEAD = 0.15

    def __init__(self, pool, stopping):
        self.pool, self.stopping = pool, stopping
        self.in_flight = set()
        self.booked_until = None

    @property
    def busy(self):
        return bool(self.in_flight)

    def step(self):
        """Record what Meta answered and claim more when due; returns whether anything happened.
        A conversation's message is claimed at once, whatever this worker has booked ahead."""
        answered = self.collect({future for future in self.in_flight if future.done()})
        booked_ahead = self.booked_until and (self.booked_until - timezone.now()).total_seconds() > self.LOOKAHEAD
        if booked_ahead and not queued():
            return answered > 0
        jobs = take(batch_size(), self.stopping)
        for index, job in enumerate(jobs):
            try:
                self.in_flight.add(self.pool.submit(send_at, job, self.stopping))
            except RuntimeError:  # the interpreter is ending: never sent, so back to the queue now
                self.stopping.set()
                record([Outcome(message, "released") for message, _start in jobs[index:]])
                break
        if jobs:
            self.booked_until = max(start for _message, start in jobs)
        return answered > 0 or bool(jobs)

    def collect(self, futures):
        self.in_flight -= futures
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception:
                # A bug, not Meta: the message stays `sending` and the sweep ends it as unknown.
                logger.exception("a send failed unexpectedly")
        if outcomes:
            record(outcomes)
        return len(futures)

    def close(self):
        """Wait for the sends under way (the unstarted ones go back to the queue) and record them."""
        wait(self.in_flight)
        self.collect(set(self.in_flight))


def claim(now, limit, stopping):
    """Take due queued messages for this worker; those over a recipient's pair limit wait."""
    if stopping.is_set():
        return []
    with transaction.atomic():
        # The recipients are locked with their messages, for booking their pair rate; a message
        # whose contact another transaction holds is skipped this time, like one another worker
        # holds (waiting for it could deadlock two workers, and the next look is moments away).
        due = (
            Message.objects.select_for_update(skip_locked=True, of=("self", "contact"))
            .filter(status=Message.Status.QUEUED)
            .filter(Q(send_after__isnull=True) | Q(send_after__lte=now))
            .select_related("contact", "phone_number")
            # What sending and recording read, no more: this query runs for every batch.
            .only(*CLAIMED_FIELDS)
            .order_by("pk")
        )
        if settings.WHATSAPP_ACCESS_TOKEN:  # numbers whose sending paused on this token wait
            due = due.exclude(phone_number__token_fingerprint=token_fingerprint(),
                              phone_number__token_invalid_at__gt=now - TOKEN_PAUSE)
        messages = list(due[:limit])
        if not messages:
            return []
        # What the rules forbid now though they allowed it when queued (days ago: scheduled, a campaign's).
        refused = sending.forbidden_now(messages)
        for reason in set(refused.values()):
            Message.objects.filter(pk__in=[pk for pk, why in refused.items() if why == reason]).update(
                status=Message.Status.FAILED, failed_at=now, claimed_at=None, error_title=reason, error_code=None)
        events.messages_moved(list(refused), Message.Status.FAILED)
        messages = [message for message in messages if message.pk not in refused]
        waiting = book_recipients(messages, now)
        ready = [message for message in messages if message.pk not in waiting]
        Message.objects.filter(pk__in=[message.pk for message in ready]).update(
            status=Message.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
        for message, until in waiting.items():
            Message.objects.filter(pk=message).update(send_after=until)
    return ready


CLAIMED_FIELDS = (
    "phone_number_id", "contact_id", "source", "type", "payload", "context", "created_at", "timestamp", "attempts",
    "pair_limit_hits",
    "contact__wa_id", "contact__user_id", "contact__send_booked_until", "contact__blocked", "contact__opted_out",
    "phone_number__phone_number_id", "phone_number__display_phone_number", "phone_number__token_invalid_at",
)


def book_recipients(messages, now):
    """Book each message on its contact's pair rate (the contacts locked by the caller); returns
    {message id: time to wait until}."""
    contacts = {}
    for message in messages:
        contacts.setdefault(message.contact_id, message.contact)
    waiting, booked = {}, Counter()
    for message in messages:
        contact = contacts[message.contact_id]
        allowed, contact.send_booked_until, wait = ratelimit.gcra(
            contact.send_booked_until, now, PAIR_INTERVAL, PAIR_BURST
        )
        if allowed:
            booked[contact.pk] += 1
        else:
            waiting[message.pk] = now + timedelta(seconds=wait)
    # One UPDATE per number of messages booked (usually one: a bulk send has one per contact).
    by_count = defaultdict(list)
    for contact_id, count in booked.items():
        by_count[count].append(contact_id)
    start = Greatest(Coalesce(F("send_booked_until"), Value(now)), Value(now))
    for count, contact_ids in by_count.items():
        Contact.objects.filter(pk__in=contact_ids).update(
            send_booked_until=start + Value(timedelta(seconds=count * PAIR_INTERVAL))
        )
    return waiting


def paced_rate(cap):
    """Messages a second actually sent for a cap of `cap` (see CAP_MARGIN)."""
    return min(cap * CAP_MARGIN, cap - 1) if cap >= 2 else cap * CAP_MARGIN


def book_numbers(messages):
    """Book a throughput slot per message on its business number; returns {message id: start time}."""
    by_number = defaultdict(list)
    for message in messages:
        by_number[message.phone_number_id].append(message)
    interval = 1 / paced_rate(settings.WHATSAPP_MESSAGES_PER_SECOND)
    slots = {}
    for group in by_number.values():
        start = ratelimit.reserve(ratelimit.number_key(group[0].phone_number), len(group), interval=interval)
        for index, message in enumerate(group):
            slots[message.pk] = start + timedelta(seconds=index * interval)
    return slots


def send_at(job, stopping):
    message, start = job
    wait = (start - timezone.now()).total_seconds()
    if stopping.is_set() or (wait > 0 and stopping.wait(wait)):
        return Outcome(message, "released")
    return send(message)


def send(message):
    """Call Meta for one claimed message (nothing leaves the machine in sandbox mode)."""
    if not settings.WHATSAPP_ACCESS_TOKEN:
        return Outcome(message, "sent", wamid=f"sandbox.{uuid.uuid4().hex}", wa_id=message.contact.wa_id)
    try:
        wamid, wa_id = graph.send_message(message.phone_number.phone_number_id, meta_message(message))
    except graph.GraphError as error:
        return Outcome(message, classify(error), error=error)
    return Outcome(message, "sent", wamid=wamid, wa_id=wa_id)


def classify(error):
    if error.token_invalid:
        return "token"
    if error.sent_unknown:
        return "unknown"
    if error.code == graph.PAIR_RATE_LIMIT:
        return "pair_limit"
    if error.code == graph.THROUGHPUT_LIMIT:
        return "throughput"
    return "retry" if error.retry else "failed"


# --- Recording outcomes ----------------------------------------------------------------------


def record(outcomes):
    now = timezone.now()
    sent = [outcome for outcome in outcomes if outcome.result == "sent"]
    # One transaction: the messages' new states and the events that tell other systems of them.
    with transaction.atomic():
        if sent:
            record_sent(sent, now)
        for outcome in outcomes:
            if outcome.result != "sent":
                RECORD[outcome.result](outcome, now)


def error_fields(error):
    return {"error_code": error.code, "error_title": error.message[:255], "error_details": error.details}


def record_sent(outcomes, now):
    ids = [outcome.message.pk for outcome in outcomes]
    # One UPDATE for the batch. A message is still `sending` unless its status webhook came first
    # (with our callback data) and moved it on: then only what is missing is filled in.
    moved = mark_sent({outcome.message.pk: outcome.wamid for outcome in outcomes}, now)
    if events.wanted("message.sent"):  # those this UPDATE moved, not those a status moved first
        events.messages_moved(ids if moved == len(ids) else Message.objects.filter(
            pk__in=ids, status=Message.Status.SENT, sent_at=now).values_list("pk", flat=True), Message.Status.SENT)
    if moved < len(ids):
        Message.objects.filter(pk__in=ids, sent_at__isnull=True).update(sent_at=now)
    # The claim read the numbers: only one whose token was refused needs the mark cleared.
    numbers = {outcome.message.phone_number_id for outcome in outcomes
               if outcome.message.phone_number.token_invalid_at is not None}
    if numbers:
        PhoneNumber.objects.filter(pk__in=numbers, token_invalid_at__isnull=False).update(
            token_invalid_at=None, token_fingerprint=""
        )
    for outcome in outcomes:
        if outcome.wa_id and outcome.wa_id != outcome.message.contact.wa_id:
            contacts.link(outcome.message, outcome.wa_id)
    early = PendingStatus.objects.filter(wamid__in=[outcome.wamid for outcome in outcomes])
    for wamid in set(early.values_list("wamid", flat=True)):
        statuses.apply_pending(wamid)


def mark_sent(wamids, now):
    """`sending` → `sent` with its wamid, for {message id: wamid}; returns how many moved."""
    if connection.vendor != "postgresql":
        # Each row's wamid picked by a CASE: the ORM's way, its compile growing with the batch.
        return Message.objects.filter(pk__in=list(wamids), status=Message.Status.SENDING).update(
            status=Message.Status.SENT, sent_at=now, claimed_at=None, error_code=None, error_title="",
            error_details="", wamid=Case(*[When(pk=pk, then=Value(wamid)) for pk, wamid in wamids.items()]),
        )
    # On PostgreSQL the pairs are a VALUES list joined to the table: a tenth of the CPU of the
    # CASE at 250 messages a batch, the send pipeline's busiest statement.
    table = connection.ops.quote_name(Message._meta.db_table)
    values = ", ".join(["(%s, %s)"] * len(wamids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS m SET status = %s, wamid = v.wamid, sent_at = %s, claimed_at = NULL, "  # noqa: S608
            f"error_code = NULL, error_title = '', error_details = '' FROM (VALUES {values}) AS v (id, wamid) "
            "WHERE m.id = v.id AND m.status = %s",
            [Message.Status.SENT, now, *[item for pair in wamids.items() for item in pair], Message.Status.SENDING],
        )
        return cursor.rowcount


def retry_later(outcome, now, delay):
    message = outcome.message
    fields = error_fields(outcome.error)
    if now - max(message.created_at, message.timestamp) > RETRY_FOR:  # a scheduled one: from its time
        return fail(outcome, now)
    Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
        status=Message.Status.QUEUED, claimed_at=None, send_after=now + timedelta(seconds=delay), **fields
    )
    logger.info("message %s: %s; retry in %.0f s", message.pk, outcome.error, delay)


def backoff(attempts):
    """2, 4, 8 … seconds, at most 5 minutes, with full jitter so workers do not retry in step."""
    return random.uniform(0.5, 1.0) * min(300, 2 ** attempts)  # noqa: S311 (not security)


def record_retry(outcome, now):
    retry_later(outcome, now, backoff(outcome.message.attempts))


def record_pair_limit(outcome, now):
    # Meta's advice for 131056: wait 4^X seconds, X the number of times it happened (§11).
    message = outcome.message
    delay = 4 ** message.pair_limit_hits
    Message.objects.filter(pk=message.pk).update(pair_limit_hits=F("pair_limit_hits") + 1)
    Contact.objects.filter(pk=message.contact_id).update(send_booked_until=now + timedelta(seconds=delay))
    retry_later(outcome, now, delay)


def record_throughput(outcome, now):
    ratelimit.delay(ratelimit.number_key(outcome.message.phone_number), 1)
    record_retry(outcome, now)


def record_token(outcome, now):
    """Meta refused the token: pause the number's sending (not fail: a new token fixes it)."""
    message = outcome.message
    PhoneNumber.objects.filter(pk=message.phone_number_id).update(
        token_invalid_at=now, token_fingerprint=token_fingerprint()
    )
    Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
        status=Message.Status.QUEUED, claimed_at=None, attempts=F("attempts") - 1, **error_fields(outcome.error)
    )
    logger.error("Meta refused the access token (code %s): sending from %s paused", outcome.error.code,
                 message.phone_number)


def record_released(outcome, now):
    """Claimed but never sent (the worker is stopping): back to the queue for any worker."""
    Message.objects.filter(pk=outcome.message.pk, status=Message.Status.SENDING).update(
        status=Message.Status.QUEUED, claimed_at=None, attempts=F("attempts") - 1
    )


def record_unknown(outcome, now):
    # Stays `sending`: see the module docstring.
    Message.objects.filter(pk=outcome.message.pk).update(**error_fields(outcome.error))
    logger.warning("message %s: %s; waiting for its status webhook", outcome.message.pk, outcome.error)


def fail(outcome, now):
    if Message.objects.filter(pk=outcome.message.pk, status=Message.Status.SENDING).update(
            status=Message.Status.FAILED, failed_at=now, claimed_at=None, **error_fields(outcome.error)):
        events.messages_moved([outcome.message.pk], Message.Status.FAILED)
    if outcome.error.code == graph.MARKETING_STOPPED:
        contacts.stopped_marketing([outcome.message.contact_id], now)
    if outcome.message.source == Message.Source.CAMPAIGN:
        campaigns.failed([outcome.message.pk])
    logger.warning("message %s failed: %s", outcome.message.pk, outcome.error)


RECORD = {
    "retry": record_retry,
    "pair_limit": record_pair_limit,
    "throughput": record_throughput,
    "token": record_token,
    "unknown": record_unknown,
    "released": record_released,
    "failed": fail,
}


def sweep(now=None):
    """Fail messages in flight for too long with no status from Meta; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        lost = list(Message.objects.select_for_update(skip_locked=True).filter(
            status=Message.Status.SENDING, claimed_at__lt=now - IN_FLIGHT_TIMEOUT).values_list("pk", flat=True))
        Message.objects.filter(pk__in=lost).update(
            status=Message.Status.FAILED, failed_at=now, claimed_at=None, error_code=None,
            error_title=UNKNOWN_DELIVERY, error_details="",
        )
        events.messages_moved(lost, Message.Status.FAILED)
    return len(lost)
