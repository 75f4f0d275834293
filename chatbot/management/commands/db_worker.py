"""`python manage.py db_worker`: django-tasks-db's worker with our inbox and outbox threads beside
it (chatbot/worker.py says what each does)."""

import os

from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands import db_worker

from chatbot import worker


class Command(db_worker.Command):
    help = "Run a background worker: applies stored webhook events, sends queued messages, runs tasks."

    def handle(self, *args, **options):
        if options["batch"]:
            worker.drain_all()
        # With --reload the parent process only watches files; the child does the work.
        elif not options["reload"] or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
            worker.start(options["worker_id"])
        return worker.run_tasks(lambda: super(Command, self).handle(*args, **options), batch=options["batch"])
