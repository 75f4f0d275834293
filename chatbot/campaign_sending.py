"""The campaigns' sender. The outbox (`outbox.take`) claims the conversations' queued messages
first and calls `feed` with the room its batch has left, so the bot's and operators' replies never
wait behind a campaign; `feed` turns the next pending recipients of sending campaigns into queued
messages, which the same batch then sends:

- only inside the campaign's daily window (TIME_ZONE), and only once the outbox has claimed what
  was fed before: while its number's sending is paused (a refused token) or its messages wait
  for their recipients' pair limit, nothing more piles up, and the campaign goes on by itself;
- with at most FEED_AHEAD seconds of the number's cap booked ahead: a reply queued meanwhile
  waits at most that long for its slot;
- `BULK_MESSAGE_DELAY` (the campaign's `delay_ms`) apart;
- within Meta's messaging limit, unique users reached in a rolling 24 h (the number's
  `messaging_limit`; cloud-api.md §11): what would pass it waits for the 24 h to move on.

A recipient row moves from `pending` to `queued` together with the INSERT of its message, in one
transaction, claimed with SKIP LOCKED: each recipient gets one message whatever the workers, and
the outbox sends a message at most once (chatbot/outbox.py).
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Min
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import campaigns, events, ratelimit, sending
from .campaign_content import CampaignRefused, Content, check_content
from .models import Campaign, Contact, Message, Recipient

logger = logging.getLogger(__name__)

FEED_AHEAD = 0.4
LIMIT_WINDOW = timedelta(hours=24)
# Meta's messaging limits (whatsapp_business_manager_messaging_limit). One not known yet (never
# checked, NOT_SET) is taken as a new business's (cloud-api.md §11): better to wait than to fail.
UNKNOWN_LIMIT = 250
TIERS = {"TIER_50": 50, "TIER_250": 250, "TIER_1K": 1000, "TIER_2K": 2000, "TIER_10K": 10_000,
         "TIER_100K": 100_000, "UNLIMITED": None}
# A process with nothing to feed (window closed, limit reached) looks again this often.
IDLE_SECONDS = 1.0
_idle = {"until": float("-inf")}


def due():
    """Whether a campaign may have something to send now (the outbox's idle check)."""
    if time.monotonic() < _idle["until"]:
        return False
    if Campaign.objects.filter(status__in=[Campaign.Status.RUNNING, Campaign.Status.SCHEDULED],
                               scheduled_at__lte=timezone.now()).exists():
        return True
    _idle["until"] = time.monotonic() + IDLE_SECONDS  # none: a new one starts within a second
    return False


def wake():
    """Look at once (a campaign was created or resumed in this process), and count again."""
    _idle["until"] = float("-inf")
    _reached["at"] = float("-inf")


def feed(room, *, rate, now=None):
    """Queue up to `room` campaign messages; `rate` is the number's paced messages a second.
    Returns how many were queued."""
    now = now or timezone.now()
    Campaign.objects.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now).update(
        status=Campaign.Status.RUNNING, started_at=Coalesce(F("started_at"), now))
    fed, soon = 0, False
    running = (Campaign.objects.filter(status=Campaign.Status.RUNNING).select_related("phone_number", "template")
               .defer("figures", "skipped").order_by("pk"))
    for campaign in running:
        if fed >= room:
            break
        count = allowance(campaign, room - fed, rate=rate, now=now)
        soon = soon or count is not None
        if count:
            fed += queue_next(campaign, count, now)
    _reached["count"] += fed
    if not fed and not soon:
        _idle["until"] = time.monotonic() + IDLE_SECONDS
    return fed


def allowance(campaign, room, *, rate, now):
    """How many of `campaign`'s recipients may be queued now: 0 when the cap, the delay or the
    last messages fed hold it for a moment, None when nothing goes for a while (its window is
    closed, Meta's messaging limit is reached, its template stopped working, or it is done)."""
    if not campaign.recipient_rows.filter(state=Recipient.State.PENDING).exists():
        finish_if_done(campaign, now)  # whatever the hour or the limit: its last messages went
        return None
    if not window_open(campaign, now):
        return None
    if campaign.template and campaign.template.status.upper() in campaigns.TEMPLATE_UNUSABLE:
        campaigns.template_changed(campaign.template)
        return None
    limit = messaging_limit(campaign.phone_number)
    under_limit = room_under_limit(limit, now) if limit is not None else room
    if under_limit <= 0:
        return None
    if backlog(campaign) or (campaign.next_send_at and
                                          campaign.next_send_at > now + timedelta(seconds=FEED_AHEAD)):
        return 0
    booked = ratelimit.booked_until(ratelimit.number_key(campaign.phone_number)) or now
    count = min(room, under_limit, int((FEED_AHEAD - max((booked - now).total_seconds(), 0)) * rate))
    if campaign.delay_ms:
        count = min(count, max(1, int(FEED_AHEAD * 1000 / campaign.delay_ms)))
    return max(count, 0)


def queue_next(campaign, count, now):
    """Queue the next `count` pending recipients' messages; returns how many were queued. The
    campaign's row is locked first, as pausing and cancelling lock it: neither can commit between
    this reading it running and its messages being queued."""
    content = Content.of(campaign)
    try:  # the template may have been edited at Meta since (a placeholder or a link button more)
        check_content(content.template, content.variables, content.header, content.buttons)
    except CampaignRefused as refused:
        campaigns.auto_pause(Campaign.objects.filter(pk=campaign.pk), Campaign.PauseReason.TEMPLATE, refused.message)
        return 0
    marketing = content.marketing
    require_opt_in = bool(campaign.audience.get("require_opt_in"))
    with transaction.atomic():
        if not list(Campaign.objects.select_for_update().filter(pk=campaign.pk, status=Campaign.Status.RUNNING)
                    .values_list("pk", flat=True)[:1]):
            return 0  # paused or cancelled meanwhile
        rows = list(Recipient.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(campaign=campaign, state=Recipient.State.PENDING).select_related("contact")
                    .order_by("pk")[:count])
        if not rows:
            return 0
        start = max(campaign.next_send_at or now, now)
        delay = timedelta(milliseconds=campaign.delay_ms)
        queued = []
        for row in rows:
            # What changed since the campaign was created counts: an opt-out, a block, a lost value.
            row.skip_reason = campaigns.skip_reason(row.contact, marketing=marketing, require_opt_in=require_opt_in)
            if not row.skip_reason and content.incomplete(row.contact):
                row.skip_reason = Recipient.Skip.INCOMPLETE
            if row.skip_reason:
                row.state = Recipient.State.SKIPPED
                continue
            message = sending.queued_row(phone_number=campaign.phone_number, contact=row.contact,
                                         message=content.message(row.contact), source=Message.Source.CAMPAIGN)
            if delay:
                message.send_after = start + delay * len(queued)
            row.state, row.queued_at, row.message = Recipient.State.QUEUED, now, message
            queued.append(row)
        Message.objects.bulk_create([row.message for row in queued])
        for row in queued:
            row.message_id = row.message.pk
        Recipient.objects.bulk_update(rows, ["state", "skip_reason", "message", "queued_at"])
        Contact.objects.filter(pk__in=[row.contact_id for row in queued]).update(campaign_sent_at=now)
        if delay and queued:
            Campaign.objects.filter(pk=campaign.pk).update(next_send_at=start + delay * len(queued))
        if queued:
            transaction.on_commit(sending.QUEUED.set)
    return len(queued)


def finish_if_done(campaign, now):
    """Every recipient was handed to the outbox (or skipped) and Meta has answered for each: the
    campaign has finished (a message whose answer was lost waits for the outbox's sweep)."""
    pending = Recipient.objects.filter(campaign=campaign, state=Recipient.State.PENDING)
    unanswered = Message.objects.filter(recipient__campaign=campaign,
                                        status__in=[Message.Status.QUEUED, Message.Status.SENDING])
    if pending.exists() or unanswered.exists():
        return
    if Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.RUNNING).update(
            status=Campaign.Status.FINISHED, finished_at=now):
        events.campaign_finished(campaign.pk)
        logger.info("campaign %s finished", campaign.pk)


def window_open(campaign, now):
    if campaign.window_start is None:
        return True
    moment = timezone.localtime(now).time()
    start, end = campaign.window_start, campaign.window_end
    return start <= moment < end if start < end else (moment >= start or moment < end)


def next_window(campaign, now):
    """When `campaign`'s sending window opens next (now if open)."""
    if window_open(campaign, now):
        return now
    local = timezone.localtime(now)
    opening = timezone.make_aware(datetime.combine(local.date(), campaign.window_start))
    return opening if opening > local else opening + timedelta(days=1)


def backlog(campaign):
    """Whether messages of `campaign` are still queued, unclaimed."""
    return Message.objects.filter(status=Message.Status.QUEUED, recipient__campaign=campaign).exists()


def messaging_limit(number):
    """Meta's limit of unique users a day for `number`: a new business's 250 until
    `whatsapp_chatbot check` (or a webhook) says otherwise; none in sandbox mode unless set."""
    known = number.messaging_limit.upper()
    if known in TIERS:
        return TIERS[known]
    return UNKNOWN_LIMIT if settings.WHATSAPP_ACCESS_TOKEN else None


# Far below the limit, the last count plus what this process fed since is enough; within what
# all workers could send between two counts, every look counts again.
RECOUNT_SECONDS = 5
_reached = {"at": float("-inf"), "count": 0}


def room_under_limit(limit, now):
    """How many more unique users Meta's messaging limit allows now."""
    margin = 2 * settings.WHATSAPP_MESSAGES_PER_SECOND * RECOUNT_SECONDS
    if time.monotonic() - _reached["at"] > RECOUNT_SECONDS or _reached["count"] + margin >= limit:
        _reached.update(at=time.monotonic(), count=reached(now))
    return limit - _reached["count"]


def reached(now):
    """Unique users sent a campaign message in the last 24 h (the limit is the business's, shared
    by its numbers; counted whether or not their window was open, which errs on the safe side)."""
    return (Recipient.objects.filter(queued_at__gt=now - LIMIT_WINDOW).aggregate(
        n=Count("contact_id", distinct=True))["n"])


def limit_frees_at(now):
    """When the oldest send inside the rolling 24 h leaves it (the next recipient may go)."""
    oldest = Recipient.objects.filter(queued_at__gt=now - LIMIT_WINDOW).aggregate(at=Min("queued_at"))["at"]
    return oldest + LIMIT_WINDOW if oldest else now
