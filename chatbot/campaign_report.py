"""A campaign's live report: how far it got (queued, sent, delivered, read, failed by Meta's code),
who replied within 72 h and who opted out since, the cost estimated from the pricing category Meta
reports per message and the business's price table, deliveries over time, and one row per
recipient (the CSV). The API, the command and the dashboard all read it from here.

The figures are counted by the worker (`refresh`, a task) and kept on the campaign's row, so a
page reads them at once whatever the campaign's size (counting 100,000 recipients takes about a
third of a second): `counts`, `failures`, `costs` and `timeline` read that snapshot and ask for a
new count when it is over REFRESH_AFTER old (FINISHED_REFRESH_AFTER an hour after it ended), so
figures on a watched page are a few seconds old at most. The first look at a campaign never
counted, or counted before it started or ended, counts at once.
"""

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, F, Q
from django.db.models.functions import Coalesce, Lower, TruncHour, TruncMinute
from django.utils import timezone
from django_tasks import task

from .failures import explanation as explain
from .models import BotSettings, Campaign, Message, Recipient

REFRESH_AFTER = timedelta(seconds=2)
# Statuses, replies (72 h) and opt-outs still come in after the last send: most statuses within
# SETTLING of it, the rest slowly.
SETTLING = timedelta(hours=1)
FINISHED_REFRESH_AFTER = timedelta(minutes=1)
# Counted once this long after the end (the replies' 72 h, and the statuses), the figures are final:
# the retention purge, which deletes the messages later, must not zero them.
FINAL_AFTER = timedelta(hours=73)

SENT = [Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ, Message.Status.PLAYED]
DELIVERED = [Message.Status.DELIVERED, Message.Status.READ, Message.Status.PLAYED]
READ = [Message.Status.READ, Message.Status.PLAYED]
IN_OUTBOX = [Message.Status.QUEUED, Message.Status.SENDING]


def count(campaign):
    """{"queued", "sent", "delivered", "read", "failed", "replied", "skipped", "cancelled",
    "opted_out"}: sent counts every message Meta accepted (delivered and read ones too), queued
    those not yet sent (waiting their turn, or in the outbox)."""
    figures = Recipient.objects.filter(campaign=campaign).aggregate(
        pending=Count("pk", filter=Q(state=Recipient.State.PENDING)),
        outbox=Count("pk", filter=Q(message__status__in=IN_OUTBOX)),
        sent=Count("pk", filter=Q(message__status__in=SENT)),
        delivered=Count("pk", filter=Q(message__status__in=DELIVERED)),
        read=Count("pk", filter=Q(message__status__in=READ)),
        failed=Count("pk", filter=Q(message__status=Message.Status.FAILED)),
        replied=Count("pk", filter=Q(replied_at__isnull=False)),
        skipped=Count("pk", filter=Q(state=Recipient.State.SKIPPED)),
        cancelled=Count("pk", filter=Q(state=Recipient.State.CANCELLED)),
        opted_out=Count("pk", filter=Q(queued_at__isnull=False, contact__opted_out_at__gt=F("queued_at"))),
    )
    figures["queued"] = figures.pop("pending") + figures.pop("outbox")
    return figures


def progress(campaign, figures):
    """The share of recipients done (sent, failed, skipped or cancelled), 0-100."""
    done = figures["sent"] + figures["failed"] + figures["skipped"] + figures["cancelled"]
    # Out of the recipient rows, not `recipients` + `skipped`: a listed number that is no valid
    # number is counted as skipped but has no row, and would hold a finished campaign under 100%.
    total = done + figures["queued"]
    return min(100, round(100 * done / total)) if total else 100


@dataclass
class Failure:
    code: int | None
    count: int
    explanation: str


def count_failures(campaign):
    """[[code, title, count]] of the failed messages, most frequent first."""
    rows = (Message.objects.filter(recipient__campaign=campaign, status=Message.Status.FAILED)
            .values_list("error_code", "error_title").annotate(count=Count("pk")).order_by("-count", "error_code"))
    return [list(row) for row in rows]


def failures(campaign):
    """Failed messages by Meta's code, most frequent first, with the plain explanation."""
    found = {}
    for code, title, number in snapshot(campaign).get("failures", []):
        explanation = explain(Message(error_code=code, error_title=title))
        found.setdefault(code, Failure(code, 0, explanation)).count += number
    return list(found.values())


@dataclass
class Cost:
    category: str
    count: int
    price: Decimal

    @property
    def total(self):
        return self.price * self.count


def count_costs(campaign):
    """{pricing category: delivered messages}: Meta charges a template when it is delivered, at
    its category's price (the category Meta reports, else the template's)."""
    rows = (Message.objects.filter(recipient__campaign=campaign, status__in=DELIVERED)
            .values_list(Lower("pricing_category")).annotate(count=Count("pk")))
    found = {}
    for category, number in rows:
        category = category or campaign.template_category.lower()
        found[category] = found.get(category, 0) + number
    return found


def costs(campaign, settings_row=None):
    """The estimated cost by pricing category, from the prices in the bot's settings."""
    settings_row = settings_row or BotSettings.load()
    prices = {"marketing": settings_row.price_marketing, "marketing_lite": settings_row.price_marketing,
              "utility": settings_row.price_utility, "authentication": settings_row.price_authentication,
              "authentication-international": settings_row.price_authentication}
    return [Cost(category, number, prices.get(category, Decimal(0)))
            for category, number in sorted(snapshot(campaign).get("costs", {}).items())]


def count_timeline(campaign, now=None):
    """Deliveries over time: [[start of the minute or hour (ISO), count]], by the minute for a
    campaign whose deliveries span under three hours."""
    delivered = Message.objects.filter(recipient__campaign=campaign, status__in=DELIVERED)
    start = campaign.started_at or campaign.created_at
    hourly = (now or timezone.now()) - start > timedelta(hours=3)
    bucket = TruncHour if hourly else TruncMinute
    # A message read with no delivered status (Meta may send only the read) was delivered when read.
    rows = (delivered.annotate(at=bucket(Coalesce("delivered_at", "read_at"))).values("at")
            .annotate(count=Count("pk")).order_by("at"))
    return [[row["at"].isoformat(), row["count"]] for row in rows]


def timeline(campaign, now=None):
    """Deliveries over time: [(start of the minute or hour, count)]."""
    return [(datetime.fromisoformat(at), number) for at, number in snapshot(campaign).get("timeline", [])]


def counts(campaign):
    """The `count` of the campaign's last snapshot."""
    return dict(snapshot(campaign)["counts"])


# --- The snapshot ----------------------------------------------------------------------------


def refresh(campaign, now=None):
    """Count the campaign's figures and keep them on its row; returns them."""
    now = now or timezone.now()
    figures = {"counts": count(campaign), "failures": count_failures(campaign), "costs": count_costs(campaign),
               "timeline": count_timeline(campaign, now)}
    Campaign.objects.filter(pk=campaign.pk).update(figures=figures, figures_at=now)
    campaign.figures, campaign.figures_at = figures, now
    return figures


@task()
def refresh_task(campaign_id):
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is not None:
        refresh(campaign)


def snapshot(campaign, now=None):
    """The campaign's figures as last counted, a new count asked for when they are old; counted
    at once when there are none yet or the campaign started or ended since (a page must not show
    "finished" over figures of before)."""
    now = now or timezone.now()
    changed = max(filter(None, [campaign.started_at, campaign.finished_at]), default=None)
    if not campaign.figures or campaign.figures_at is None or (changed and changed > campaign.figures_at):
        return refresh(campaign, now)
    if campaign.finished_at and campaign.figures_at > campaign.finished_at + FINAL_AFTER:
        return campaign.figures  # final: nothing more can change (and the retention purge must not)
    settled = campaign.finished_at and now - campaign.finished_at > SETTLING
    age = FINISHED_REFRESH_AFTER if settled else REFRESH_AFTER
    if now - campaign.figures_at > age:
        request_refresh(campaign, now, age)
    return campaign.figures


def live(campaign, now=None):
    """Whether the figures still change by the second: the campaign is under way, or ended less
    than SETTLING ago (Meta's statuses of its last messages still arriving)."""
    return campaign.active or (campaign.status == Campaign.Status.FINISHED and campaign.finished_at is not None
                               and (now or timezone.now()) - campaign.finished_at < SETTLING)


def request_refresh(campaign, now, age):
    """Queue one count, however many pages and polls ask meanwhile."""
    asked = Campaign.objects.filter(pk=campaign.pk).filter(
        Q(figures_requested_at__isnull=True) | Q(figures_requested_at__lt=now - age)).update(figures_requested_at=now)
    if asked:
        transaction.on_commit(lambda: refresh_task.enqueue(campaign.pk))


CSV_HEADER = ["wa_id", "name", "status", "error_code", "sent_at", "delivered_at", "read_at", "replied_at"]
CSV_BATCH = 500


class _Lines:
    """csv.writer's file: writing a row returns its line."""

    def write(self, line):
        return line


def csv_lines(campaign, *, delimiter=",", prefix=""):
    """The per-recipient CSV (CRLF lines, `prefix` first, e.g. a BOM), a batch of lines at a time:
    the API and the dashboard stream it."""
    writer = csv.writer(_Lines(), delimiter=delimiter)
    batch = [prefix + writer.writerow(CSV_HEADER)]
    for row in recipient_rows(campaign):
        batch.append(writer.writerow(row))
        if len(batch) >= CSV_BATCH:
            yield "".join(batch)
            batch = []
    yield "".join(batch)


def recipient_rows(campaign):
    """The per-recipient CSV's rows (design.md, "Campaigns API"), in the order they were chosen.
    status: the message's (queued … read, failed), else pending, skipped:<reason> or cancelled."""
    rows = (Recipient.objects.filter(campaign=campaign).order_by("pk").values_list(
        "contact__wa_id", "contact__user_id", "contact__name", "state", "skip_reason", "message__status",
        "message__error_code", "message__sent_at", "message__delivered_at", "message__read_at", "replied_at"))
    for wa_id, user_id, name, state, reason, status, code, sent, delivered, read, replied in rows.iterator(2000):
        if state == Recipient.State.SKIPPED:
            status = f"skipped:{reason}"
        elif not status:
            status = state
        yield [wa_id or user_id, spreadsheet_safe(name), status, "" if code is None else code,
               *[moment.isoformat() if moment else "" for moment in (sent, delivered, read, replied)]]


def spreadsheet_safe(text):
    """A customer's profile name as a spreadsheet shows it, never runs it: one that starts like a
    formula (=, +, -, @) gets a leading apostrophe (OWASP's advice on CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
