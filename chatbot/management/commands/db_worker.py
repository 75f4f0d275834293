"""`python manage.py db_worker`: django-tasks-db's worker, plus the webhook inbox.

Each worker process also runs one thread that applies stored webhook events (`inbound.drain`) and
records the process's heartbeat for the health check. Events are drained by every worker at once
(rows are claimed with SKIP LOCKED), so adding workers adds webhook capacity.
"""

import logging
import os
import socket
import threading
import time

from django.db import close_old_connections, connection
from django.utils import timezone
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands import db_worker

from chatbot import inbound
from chatbot.models import WorkerBeat

logger = logging.getLogger("chatbot.worker")

# Pending events are looked for this often when the inbox is empty: one indexed query, and the
# longest a customer waits before the bot starts on their message.
INBOX_POLL_SECONDS = 0.1
BEAT_SECONDS = 5


class Inbox(threading.Thread):
    def __init__(self, worker_id):
        super().__init__(name="webhook-inbox", daemon=True)
        self.worker_id = worker_id
        self.last_beat = 0.0
        self.stopping = threading.Event()

    def beat(self):
        if time.monotonic() - self.last_beat < BEAT_SECONDS:
            return
        WorkerBeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={"hostname": socket.gethostname()[:255], "pid": os.getpid(), "last_seen": timezone.now()},
        )
        self.last_beat = time.monotonic()

    def run(self):
        while not self.stopping.is_set():
            try:
                self.beat()
                if inbound.drain() == 0:
                    self.stopping.wait(INBOX_POLL_SECONDS)
            except Exception:
                # A lost database connection must not end the thread: the events wait in their table.
                logger.exception("webhook inbox failed; trying again in 1 s")
                connection.close()
                self.stopping.wait(1)
            finally:
                close_old_connections()
        connection.close()


class Command(db_worker.Command):
    help = "Run a background worker: applies stored webhook events and runs queued tasks."

    def handle(self, *args, **options):
        if options["batch"]:
            inbound.drain(limit=None)
        # With --reload the parent process only watches files; the child does the work.
        elif not options["reload"] or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
            Inbox(options["worker_id"]).start()
        super().handle(*args, **options)
