"""Background work, run by `python manage.py db_worker` (Django's tasks API, ORM-backed queue).
Webhook events are not tasks: the worker drains them from their own table (`inbound.drain`).

Tasks are enqueued inside the transaction that creates their rows, so a task never runs for data
that was rolled back, and committed data always has its task.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from . import conversation, graph, inbound, media
from .models import Message, PendingStatus

logger = logging.getLogger(__name__)

# Look again for the message of an early status after 1 s, 4 s, 16 s, 64 s, 4 min and 17 min:
# long enough for a slow send to record its wamid or a late echo to arrive.
PENDING_STATUS_DELAYS = [1, 4, 16, 64, 256, 1024]


@task()
def handle_inbound_message(message_id):
    conversation.handle_inbound(message_id)


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
    if inbound.apply_pending_statuses(wamid) == 0 and attempt + 1 < len(PENDING_STATUS_DELAYS):
        schedule_pending_statuses(pending_status, attempt + 1)


CONVERSATION_SAFETY_DELAY = timedelta(seconds=10)


def schedule_conversation(message_id):
    handle_inbound_message.using(run_after=timezone.now() + CONVERSATION_SAFETY_DELAY).enqueue(message_id)


def schedule_pending_statuses(pending_status, attempt=0):
    run_after = timezone.now() + timedelta(seconds=PENDING_STATUS_DELAYS[attempt])
    apply_pending_statuses.using(run_after=run_after).enqueue(pending_status, attempt)


@task()
def download_media(message_id, attempt=0):
    delay = media.download(message_id, attempt)
    if delay:
        download_media.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(message_id, attempt + 1)


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
