"""Posting recorded events to their endpoints (design.md, "Event webhooks"), from the workers.

- **At least once, with a stable id.** A claim takes due `EventDelivery` rows with SKIP LOCKED and
  moves their next attempt a LEASE ahead before any is posted: a worker killed mid-delivery leaves
  them due again once the lease ends, and another worker posts them (the receiver dedupes by the
  event's `id`, which is also `X-Hoztech-Delivery`). A run starts no post after CHUNK_SECONDS, well
  within the lease, and what it got is written only for rows still leased to it.
- **Signed**: `X-Hoztech-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`,
  a new `t` each attempt, so a receiver can refuse an old capture replayed.
- **Retried** after about 10 s, 30 s, 2 min, 10 min, then hourly (each ±10 %), until 24 h after the
  event; then it is `failed`, replayable by hand. An endpoint that failed for 24 h with no success
  in between is disabled, with a notice on the overview.
- **Safe to point anywhere** (`event_http`): the address is checked when the connection is made
  (not only when the endpoint was saved, as DNS may change), and private, loopback, link-local,
  multicast and reserved addresses are refused unless WEBHOOK_ALLOW_PRIVATE_TARGETS. No redirect
  is followed; an attempt ends after 10 s, headers and answer included; at most 64 KB of an answer
  are read and its first KB kept for the log.
- **Fast**: the pipeline posts from a pool of threads, each keeping its connections alive per
  endpoint, while the worker records the last answers (one statement per batch) and claims the
  next rows; no endpoint holds more than THREADS_PER_ENDPOINT of them.
"""

import logging
import math
import random
import time
from collections import Counter, defaultdict
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from . import event_http, events
from .models import EventDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
RETRY_DELAYS = (10, 30, 120, 600)
RETRY_EVERY = 3600
JITTER = 0.1
RETRY_FOR = timedelta(hours=24)
DISABLE_AFTER = timedelta(hours=24)
# A thread posts up to CHUNK rows of one endpoint in a row, over one kept-alive connection, and
# starts none CHUNK_SECONDS after the claim (the rest go back at once): well within the LEASE, and
# a stopping worker is not held long by a slow receiver.
CHUNK = 25
CHUNK_SECONDS = 15
# An endpoint never holds more than this many of a worker's threads (a slow one cannot starve the others).
THREADS_PER_ENDPOINT = 8


# --- Claiming, posting and recording ----------------------------------------------------------------


CLAIMED_FIELDS = ("id", "event_id", "type", "body", "created_at", "attempts", "endpoint__id", "endpoint__url",
                  "endpoint__secret", "endpoint__failing_since")


def claim(limit, *, skip_endpoints=()):
    """Up to `limit` due deliveries of active endpoints, leased to this worker (each row's `lease`
    says until when: what `record` checks it still holds)."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            EventDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=EventDelivery.Status.PENDING, next_attempt_at__lte=now, endpoint__active=True)
            .exclude(endpoint_id__in=list(skip_endpoints))
            .select_related("endpoint").only(*CLAIMED_FIELDS)
            .order_by("next_attempt_at")[:limit]
        )
        if rows:
            EventDelivery.objects.filter(pk__in=[row.pk for row in rows]).update(next_attempt_at=now + LEASE)
    for row in rows:
        row.lease = now + LEASE
    return rows


def run_until():
    """When a run claimed now starts no more posts: its last one ends well within the lease."""
    return time.monotonic() + min(CHUNK_SECONDS, LEASE.total_seconds() / 2)


def post_all(rows, stopping=None, until=None):
    """Post `rows` (one endpoint's) in order: (row, Attempt), or (row, None) for a row not tried:
    behind one that could not reach the endpoint, after `until` (monotonic), or once `stopping`."""
    results, reachable = [], True
    for row in rows:
        attempt = None
        late = (stopping is not None and stopping.is_set()) or (until is not None and time.monotonic() > until)
        if reachable and not late:
            endpoint = row.endpoint
            attempt = event_http.post(endpoint.url, endpoint.secret, event_id=row.event_id, event_type=row.type,
                                      body=row.body)
            reachable = not attempt.unreachable
        results.append((row, attempt))
    return results


def retry_delay(attempts):
    delay = RETRY_DELAYS[attempts - 1] if attempts <= len(RETRY_DELAYS) else RETRY_EVERY
    return delay * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - spreading retries, not a secret


def record(results):
    """Write what each attempt gave: delivered, a retry at its time, or failed for good; a row not
    tried goes back, due with its endpoint's retry (or now). Only rows still leased to us: another
    worker may have taken one whose lease ran out, or someone replayed it. Then the endpoints'
    health (a success clears their failing streak; 24 h of failures disable them)."""
    now = timezone.now()
    tried, untried, ok, back, failing, retry_at = [], [], set(), set(), set(), {}
    for row, attempt in results:
        if attempt is None:
            untried.append(row)
            continue
        endpoint_id = row.endpoint.pk
        row.attempts += 1
        row.last_attempt_at, row.response_status, row.duration_ms = now, attempt.status, attempt.duration_ms
        row.response_body, row.error = attempt.answer, attempt.error
        if attempt.ok:
            row.status, row.delivered_at, row.next_attempt_at = EventDelivery.Status.DELIVERED, now, None
            ok.add(endpoint_id)
            if row.endpoint.failing_since is not None:  # as claimed: one that was failing is back
                back.add(endpoint_id)
        elif now - row.created_at >= RETRY_FOR:
            row.status, row.next_attempt_at = EventDelivery.Status.FAILED, None
            failing.add(endpoint_id)
        else:
            row.next_attempt_at = now + timedelta(seconds=retry_delay(row.attempts))
            retry_at[endpoint_id] = row.next_attempt_at
            failing.add(endpoint_id)
        tried.append(row)
    for row in untried:
        row.next_attempt_at = retry_at.get(row.endpoint.pk, now)
    with transaction.atomic():
        write(tried, ATTEMPT_FIELDS)
        write(untried, ("next_attempt_at",))
        endpoint_health(back, failing - ok, now)


ATTEMPT_FIELDS = ("status", "attempts", "next_attempt_at", "last_attempt_at", "delivered_at", "response_status",
                  "duration_ms", "response_body", "error")
CASTS = {"attempts": "integer", "response_status": "integer", "duration_ms": "integer",
         "next_attempt_at": "timestamptz", "last_attempt_at": "timestamptz", "delivered_at": "timestamptz"}


def write(rows, fields):
    """Each row's `fields` as they are on it, in one statement, for the rows still leased to us
    (pending, with the lease our claim gave them)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        held = set(EventDelivery.objects.select_for_update().filter(
            pk__in=[row.pk for row in rows], status=EventDelivery.Status.PENDING).values_list("pk", "next_attempt_at"))
        EventDelivery.objects.bulk_update([row for row in rows if (row.pk, row.lease) in held], fields)
        return
    # bulk_update builds a CASE of one WHEN per row and field through the ORM: 1.4 ms of CPU per
    # row, most of a delivery's cost. A VALUES list joined to the table takes a tenth of it, and
    # checks the lease in the same statement.
    table = connection.ops.quote_name(EventDelivery._meta.db_table)
    one = "(%s::bigint, %s::timestamptz, " + ", ".join(
        f"%s::{CASTS[name]}" if name in CASTS else "%s" for name in fields) + ")"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS d SET {', '.join(f'{name} = v.{name}' for name in fields)} "  # noqa: S608
            f"FROM (VALUES {', '.join([one] * len(rows))}) AS v (id, lease, {', '.join(fields)}) "
            "WHERE d.id = v.id AND d.status = %s AND d.next_attempt_at = v.lease",
            [*(value for row in rows for value in (row.pk, row.lease, *(getattr(row, name) for name in fields))),
             EventDelivery.Status.PENDING])


def endpoint_health(back, failing, now):
    """`back`: endpoints that were failing and answered; `failing`: those that only failed."""
    if back:
        WebhookEndpoint.objects.filter(pk__in=back, failing_since__isnull=False).update(failing_since=None)
    if not failing:
        return
    WebhookEndpoint.objects.filter(pk__in=failing, failing_since__isnull=True).update(failing_since=now)
    dead = list(WebhookEndpoint.objects.filter(pk__in=failing, active=True, failing_since__lte=now - DISABLE_AFTER))
    for endpoint in dead:
        logger.warning("event webhook %s disabled: every delivery failed since %s", endpoint.pk,
                       endpoint.failing_since.isoformat())
        disable(endpoint, WebhookEndpoint.DISABLED_FAILING, now)


def disable(endpoint, reason, now):
    """No more posts to `endpoint`; its waiting rows leave the claim's index until it is enabled."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False, disabled_at=now, disabled_reason=reason)
    endpoint.deliveries.filter(status=EventDelivery.Status.PENDING).update(next_attempt_at=None)


def enable(endpoint, now):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=True, disabled_at=None, disabled_reason="",
                                                          failing_since=None)
    endpoint.deliveries.filter(status=EventDelivery.Status.PENDING, next_attempt_at__isnull=True).update(
        next_attempt_at=now)


def runs(rows, threads, held=None):
    """`rows` cut into one endpoint's runs for at most `threads` threads, at most CHUNK rows each
    and THREADS_PER_ENDPOINT threads per endpoint (counting `held`, its runs already posting);
    returns (runs, the rows left over)."""
    held = Counter(held or {})
    by_endpoint = defaultdict(list)
    for row in rows:
        by_endpoint[row.endpoint.pk].append(row)
    found, left = [], []
    for endpoint_id, endpoint_rows in by_endpoint.items():
        allowed = max(min(threads - len(found), THREADS_PER_ENDPOINT - held[endpoint_id]), 0)
        size = min(CHUNK, math.ceil(len(endpoint_rows) / max(allowed, 1)))
        cut = [endpoint_rows[start:start + size] for start in range(0, len(endpoint_rows), size)]
        found += cut[:allowed]
        left += [row for run in cut[allowed:] for row in run]
    return found, left


def drain(limit=None):
    """Everything due, posted here one at a time (tests, `db_worker --batch`); returns how many were tried."""
    tried = 0
    while limit is None or tried < limit:
        rows = claim(CHUNK if limit is None else min(CHUNK, limit - tried))
        if not rows:
            break
        by_endpoint = defaultdict(list)
        for row in rows:
            by_endpoint[row.endpoint.pk].append(row)
        until = run_until()
        for run in by_endpoint.values():
            record(post_all(run, until=until))
        tried += len(rows)
    return tried


class Pipeline:
    """The worker's events thread: posts in `pool`'s threads while it records answers and claims."""

    def __init__(self, pool, threads, stopping):
        self.pool, self.threads, self.stopping = pool, threads, stopping
        self.in_flight = {}  # future → (endpoint id, its rows)

    @property
    def busy(self):
        return bool(self.in_flight)

    def step(self):
        done = [future for future in self.in_flight if future.done()]
        results = []
        for future in done:
            _endpoint_id, rows = self.in_flight.pop(future)
            try:
                results += future.result()
            except Exception:  # a bug must not cost the other runs' answers
                logger.exception("posting %s events failed; they are posted again after the lease", len(rows))
        if results:
            record(results)
        free = self.threads - len(self.in_flight)
        if free <= 0 or self.stopping.is_set():
            return bool(done)
        held = Counter(endpoint_id for endpoint_id, _rows in self.in_flight.values())
        # No more than one endpoint may take: what a single endpoint's backlog fills is not written back.
        rows = claim(min(free, THREADS_PER_ENDPOINT) * CHUNK,
                     skip_endpoints=[pk for pk, n in held.items() if n >= THREADS_PER_ENDPOINT])
        found, left = runs(rows, free, held)
        until = run_until()
        for index, run in enumerate(found):
            try:
                future = self.pool.submit(post_all, run, self.stopping, until)
            except RuntimeError:  # the interpreter is ending: the pool takes no more work
                self.stopping.set()
                left += [row for later in found[index:] for row in later]
                break
            self.in_flight[future] = (run[0].endpoint.pk, run)
        if left:  # over an endpoint's share of threads: due again at once, for the next look
            record([(row, None) for row in left])
        return bool(done or rows)

    def close(self):
        """Before the process ends: runs not started go back, those posting end after their
        current post (`stopping` is set), and what they got is recorded."""
        results = []
        for future, (_endpoint_id, rows) in list(self.in_flight.items()):
            if future.cancel():
                results += [(row, None) for row in rows]
                continue
            try:
                results += future.result(timeout=event_http.TIMEOUT + 1)
            except Exception:  # noqa: BLE001 - the lease brings them back
                logger.exception("event delivery lost its answer; it is posted again after the lease")
        if results:
            record(results)
        self.in_flight.clear()


def test(endpoint):
    """Post an `endpoint.test` event to `endpoint` now (active or not) and return the Attempt."""
    event_id, body = events.test_body(endpoint)
    return event_http.post(endpoint.url, endpoint.secret, event_id=event_id, event_type=events.TEST_TYPE,
                           body=body)
