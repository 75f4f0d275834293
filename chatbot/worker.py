"""The worker (`python manage.py db_worker`, as many as needed, on any number of machines): it works
four queues, all of them tables in the database, claimed with SKIP LOCKED so that every worker
shares them and adding workers adds capacity.

1. **Webhook events**: `WebhookEvent` rows still `pending`, applied by the inbox thread
   (`inbound.drain`): messages stored, statuses moved, the bot's turn taken.
2. **Outbound messages**: `Message` rows `queued`, sent by the outbox thread (`outbox.Pipeline`),
   paced to the number's cap and each recipient's, conversations first and campaigns in the room
   left (`campaign_sending.feed`); it wakes at once for a message queued in this process
   (`sending.QUEUED`).
3. **Event deliveries**: `EventDelivery` rows due, posted to other systems' endpoints by the
   events thread (`event_delivery.Pipeline`), signed, retried for 24 h; it wakes at once for an
   event recorded in this process (`events.RECORDED`).
4. **Background tasks**: django-tasks' rows (`DBTaskResult`), run by django-tasks-db's own loop in
   the main thread: media downloads (`media.download_media`), read receipts (`inbound.mark_read`),
   statuses that came early (`statuses.apply_pending_statuses`) and a failed turn's retry
   (`conversation.handle_inbound_message`) and the reports' counting (`reporting.keep_up_task`).

The inbox thread also records the process's heartbeat every BEAT_SECONDS (health reads it), and
every SWEEP_SECONDS the time-driven work runs: `conversation.sweep` (idle sessions close, late
handoffs are told), `presence.sweep` (operators away or offline, their online hours) and
`assignment.sweep` (waiting conversations handed out) in the inbox, `outbox.sweep` (sends with no
answer end `failed`) in the outbox; and every few minutes the inbox queues the reports' counting
(`reporting.keep_up_task`) for the tasks loop.
"""

import atexit
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from . import (
    assignment,
    conversation,
    event_delivery,
    event_http,
    events,
    inbound,
    outbox,
    presence,
    reporting,
    sending,
)
from .models import WorkerBeat

logger = logging.getLogger("chatbot.worker")

# An empty queue is looked at again this often: one indexed query, and the longest a customer
# waits before the bot starts on their message (or a queued message starts out).
POLL_SECONDS = 0.1
BEAT_SECONDS = 5
# While sends are at Meta, the outbox looks this often for their answers and its next batch.
BUSY_POLL_SECONDS = 0.02
SWEEP_SECONDS = 30  # idle sessions, late handoffs, presence, waiting conversations, sends with no answer
# Sends in flight per worker: Meta answers in 100-300 ms, so 80 messages/s needs about 25.
SEND_THREADS = 32
# Event posts in flight per worker: a receiver answering in 20 ms takes 16 for 800 events a second.
DELIVERY_THREADS = 16
GATHER_SECONDS = 0.05
RESTART_SECONDS = 1


class Loop(threading.Thread):
    """Calls `step()` until stopped, pausing when it found nothing to do; survives errors."""

    def __init__(self, name):
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                if not self.step():
                    self.idle()
            except Exception:
                # A lost database connection must not end the thread: the work waits in its table.
                logger.exception("%s failed; trying again in 1 s", self.name)
                connection.close()
                self.stopping.wait(1)
            finally:
                close_old_connections()
        self.close()

    def idle(self):
        self.stopping.wait(POLL_SECONDS)

    def close(self):
        connection.close()


class Inbox(Loop):
    def __init__(self, worker_id):
        super().__init__("webhook-inbox")
        self.worker_id = worker_id
        self.last_beat = self.last_sweep = self.last_reports = 0.0

    def beat(self):
        if time.monotonic() - self.last_beat < BEAT_SECONDS:
            return
        WorkerBeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={"hostname": socket.gethostname()[:255], "pid": os.getpid(), "last_seen": timezone.now()},
        )
        self.last_beat = time.monotonic()

    def step(self):
        self.beat()
        if time.monotonic() - self.last_sweep > SWEEP_SECONDS:
            conversation.sweep()
            # After the closes (room freed) and the presence decay (nobody gone is chosen).
            presence.sweep()
            assignment.sweep()
            self.last_sweep = time.monotonic()
        if time.monotonic() - self.last_reports > reporting.KEEP_UP_EVERY.total_seconds():
            reporting.keep_up_task.enqueue()  # counted in the tasks loop, not between webhooks
            self.last_reports = time.monotonic()
        return inbound.drain() > 0


class Outbox(Loop):
    def __init__(self):
        super().__init__("outbox")
        # Send threads only call Meta (`outbox.send`), never the database.
        self.pool = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="send")
        self.pipeline = outbox.Pipeline(self.pool, self.stopping)
        self.last_sweep = 0.0

    def step(self):
        if time.monotonic() - self.last_sweep > SWEEP_SECONDS:
            outbox.sweep()
            self.last_sweep = time.monotonic()
        return self.pipeline.step()

    def idle(self):
        # Sends at Meta: back soon to record their answers and claim the next batch in time.
        if self.pipeline.busy:
            self.stopping.wait(BUSY_POLL_SECONDS)
        # Woken at once by a message queued in this process (a bot reply), else polls.
        elif sending.QUEUED.wait(POLL_SECONDS):
            sending.QUEUED.clear()

    def close(self):
        self.pipeline.close()
        self.pool.shutdown(wait=True)
        super().close()


class Deliveries(Loop):
    def __init__(self):
        super().__init__("event-deliveries")
        self.pool = ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="deliver")
        self.pipeline = event_delivery.Pipeline(self.pool, DELIVERY_THREADS, self.stopping)

    def step(self):
        return self.pipeline.step()

    def idle(self):
        if self.pipeline.busy:
            self.stopping.wait(BUSY_POLL_SECONDS)
        elif events.RECORDED.wait(POLL_SECONDS):
            events.RECORDED.clear()
            # A moment for the events of the next few commits: one claim and one write for them all.
            self.stopping.wait(GATHER_SECONDS)

    def close(self):
        self.pipeline.close()
        self.pool.shutdown(wait=True)
        super().close()


def stop_outbox(thread, grace=25):
    """Before the process ends: messages claimed but not yet sent go back to the queue, and sends
    under way get their answer recorded."""
    thread.stopping.set()
    thread.join(timeout=grace)


def start(worker_id):
    """The inbox, outbox and events threads of this process, beside django-tasks-db's loop."""
    Inbox(worker_id).start()
    thread = Outbox()
    thread.start()
    deliveries = Deliveries()
    deliveries.start()
    # The tasks loop exits on SIGTERM (a deploy); the outbox then hands back what it claimed, and
    # the events thread records the answers of the posts under way.
    atexit.register(stop_outbox, thread)
    atexit.register(stop_outbox, deliveries, grace=event_http.TIMEOUT + 2)


def run_tasks(loop, *, batch):
    """django-tasks-db's loop, `loop()`, started again after the database went away."""
    while True:
        try:
            return loop()
        except (InterfaceError, OperationalError):
            if batch:
                raise
            # django-tasks-db's loop ends on any database error but a locked SQLite: a restart
            # or failover of PostgreSQL would end the worker, inbox and outbox with it. The
            # tasks wait in their table; start the loop again once the database answers.
            logger.exception("the task loop lost the database; starting it again in %s s", RESTART_SECONDS)
            connection.close()
            time.sleep(RESTART_SECONDS)


def drain_all():
    """Everything waiting, once, in this thread (`db_worker --batch`)."""
    inbound.drain(limit=None)
    while outbox.drain():
        pass
    event_delivery.drain()
