"""Background work, run by `python manage.py db_worker` (Django's tasks API, ORM-backed queue).
Webhook events are not tasks: the worker drains them from their own table (`inbound.drain`).

Tasks are enqueued inside the transaction that creates their rows, so a task never runs for data
that was rolled back, and committed data always has its task.
"""

from datetime import timedelta

from django.utils import timezone
from django_tasks import task

from . import conversation, inbound

# Look again for the message of an early status after 1 s, 4 s, 16 s, 64 s, 4 min and 17 min:
# long enough for a slow send to record its wamid or a late echo to arrive.
PENDING_STATUS_DELAYS = [1, 4, 16, 64, 256, 1024]


@task()
def handle_inbound_message(message_id):
    conversation.handle_inbound(message_id)


@task()
def apply_pending_statuses(wamid, attempt=0):
    if inbound.apply_pending_statuses(wamid) == 0 and attempt + 1 < len(PENDING_STATUS_DELAYS):
        schedule_pending_statuses(wamid, attempt + 1)


def schedule_pending_statuses(wamid, attempt=0):
    run_after = timezone.now() + timedelta(seconds=PENDING_STATUS_DELAYS[attempt])
    apply_pending_statuses.using(run_after=run_after).enqueue(wamid, attempt)
