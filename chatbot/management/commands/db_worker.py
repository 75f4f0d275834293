"""`python manage.py db_worker`: django-tasks-db's worker, plus our two queues in tables.

Each worker process also runs an inbox thread, which applies stored webhook events
(`inbound.drain`) and records the process's heartbeat for the health check, and an outbox thread,
which sends queued messages (`outbound.drain`). Rows are claimed with SKIP LOCKED, so every worker
on every machine shares both queues: adding workers adds capacity.
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
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands import db_worker

from chatbot import conversation, inbound, outbound
from chatbot.models import WorkerBeat

logger = logging.getLogger("chatbot.worker")

# An empty queue is looked at again this often: one indexed query, and the longest a customer
# waits before the bot starts on their message (or a queued message starts out).
POLL_SECONDS = 0.1
BEAT_SECONDS = 5
SWEEP_SECONDS = 30  # idle sessions, late handoffs, sends with no answer
# Sends in flight per worker: Meta answers in 100-300 ms, so 80 messages/s needs about 25.
SEND_THREADS = 32
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
        self.last_beat = self.last_sweep = 0.0

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
            self.last_sweep = time.monotonic()
        return inbound.drain() > 0


class Outbox(Loop):
    def __init__(self):
        super().__init__("outbox")
        # Send threads only call Meta (`outbound.send`), never the database.
        self.pool = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="send")
        self.last_sweep = 0.0

    def step(self):
        if time.monotonic() - self.last_sweep > SWEEP_SECONDS:
            outbound.sweep()
            self.last_sweep = time.monotonic()
        return outbound.drain(pool=self.pool) > 0

    def idle(self):
        # Woken at once by a message queued in this process (a bot reply), else polls.
        if outbound.WAKE.wait(POLL_SECONDS):
            outbound.WAKE.clear()

    def close(self):
        self.pool.shutdown(wait=True)
        super().close()


def stop_outbox(outbox, grace=25):
    outbound.STOPPING.set()
    outbox.stopping.set()
    outbox.join(timeout=grace)


class Command(db_worker.Command):
    help = "Run a background worker: applies stored webhook events, sends queued messages, runs tasks."

    def handle(self, *args, **options):
        if options["batch"]:
            inbound.drain(limit=None)
            while outbound.drain():
                pass
        # With --reload the parent process only watches files; the child does the work.
        elif not options["reload"] or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
            Inbox(options["worker_id"]).start()
            outbox = Outbox()
            outbox.start()
            # The tasks worker exits on SIGTERM; before the process ends, messages claimed but not
            # yet sent go back to the queue, and sends under way get their answer recorded.
            atexit.register(stop_outbox, outbox)
        while True:
            try:
                return super().handle(*args, **options)
            except (InterfaceError, OperationalError):
                if options["batch"]:
                    raise
                # django-tasks-db's loop ends on any database error but a locked SQLite: a restart
                # or failover of PostgreSQL would end the worker, inbox and outbox with it. The
                # tasks wait in their table; start the loop again once the database answers.
                logger.exception("the task loop lost the database; starting it again in %s s", RESTART_SECONDS)
                connection.close()
                time.sleep(RESTART_SECONDS)
