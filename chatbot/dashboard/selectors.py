"""Reads for the operators' dashboard: each page's data in a fixed number of queries, whatever the
number of contacts, sessions and messages (the page tests count them)."""

import statistics
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.db.models.functions import ExtractHour, TruncDate
from django.utils import timezone

from .. import health
from ..models import WINDOW, DailyStats, Message, Session, Template
from ..whatsapp.vocabulary import FOLLOW_UP_TYPES
from .permissions import visible

# The overview's charts: 14 days of messages, 30 days of billable ones (today's counted live).
CHART_DAYS = 14
HISTORY_DAYS = 30
RECOUNT_AFTER = timedelta(minutes=10)
# Rows that belong to another message (shown on it) rather than in the thread of their own.
ATTACHED_TYPES = tuple(FOLLOW_UP_TYPES)
THREAD_PAGE = 50  # about two screens; earlier ones a click away
LIST_PAGE = 50


def start_of_day(now):
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


# --- Overview --------------------------------------------------------------------------------


def overview(user, now=None):
    now = now or timezone.now()
    today_start = start_of_day(now)
    today = today_counts(today_start)
    past = history(today_start, now)
    by_status = dict(Session.objects.exclude(status=Session.Status.CLOSED)
                     .values_list("status").annotate(n=Count("id")))
    waiting = list(visible(Session.objects.filter(status=Session.Status.WAITING), user)
                   .select_related("contact", "department").order_by("waiting_since")[:5])
    return {
        "messages_in": today["total"]["in"],
        "messages_out": today["total"]["out"],
        "sessions": {status: by_status.get(status, 0) for status in ("bot", "waiting", "open")},
        "waiting": waiting,
        "oldest_wait": now - waiting[0].waiting_since if waiting and waiting[0].waiting_since else None,
        "failed_24h": Message.objects.filter(status=Message.Status.FAILED, failed_at__gte=now - timedelta(days=1))
        .count(),
        "first_response": median_first_response(now),
        "webhook": health.webhook_figures(now),
        "whatsapp": health.check_whatsapp(),
        "days": chart_days(today_start, past, today["total"]),
        "hours": bars([(hour, today["hours"].get(hour, {"in": 0, "out": 0})) for hour in range(24)]),
        "pricing": pricing(past, today["pricing"]),
    }


def today_counts(today_start):
    """Today's messages by hour and direction, and the billable ones by category: one pass."""
    rows = (Message.objects.filter(timestamp__gte=today_start).exclude(type__in=ATTACHED_TYPES)
            .annotate(hour=ExtractHour("timestamp", tzinfo=timezone.get_current_timezone()))
            .values_list("hour", "direction", "pricing_category").annotate(n=Count("id")))
    hours, total, categories = {}, {"in": 0, "out": 0}, {}
    for hour, direction, category, n in rows:
        counts = hours.setdefault(hour, {"in": 0, "out": 0})
        counts[direction] += n
        total[direction] += n
        if category and direction == Message.Direction.OUT:
            categories[category] = categories.get(category, 0) + n
    return {"hours": hours, "total": total, "pricing": categories}


def median_first_response(now):
    """Median time from asking for a person to an operator taking the session, last 7 days."""
    pairs = Session.objects.filter(first_response_at__gte=now - timedelta(days=7), waiting_since__isnull=False) \
        .values_list("waiting_since", "first_response_at")[:5000]
    waits = [(taken - asked).total_seconds() for asked, taken in pairs if taken >= asked]
    return timedelta(seconds=statistics.median(waits)) if waits else None


def count_days(since, until):
    """{day: {"in", "out", "pricing": {category: n}}} for the messages in [since, until)."""
    rows = (Message.objects.filter(timestamp__gte=since, timestamp__lt=until).exclude(type__in=ATTACHED_TYPES)
            .annotate(day=TruncDate("timestamp", tzinfo=timezone.get_current_timezone()))
            .values_list("day", "direction", "pricing_category").annotate(n=Count("id")))
    days = {}
    for day, direction, category, n in rows:
        counts = days.setdefault(day, {"in": 0, "out": 0, "pricing": {}})
        counts[direction] += n
        if category and direction == Message.Direction.OUT:
            counts["pricing"][category] = counts["pricing"].get(category, 0) + n
    return days


def history(today_start, now):
    """Counts of the days before today (HISTORY_DAYS with today), kept in DailyStats for every
    process. A day's row is final once counted a day after the day ended (its status webhooks
    have arrived); until then it is counted again when over RECOUNT_AFTER old."""
    days = [(today_start - timedelta(days=offset)).date() for offset in range(HISTORY_DAYS - 1, 0, -1)]
    rows = {row.day: row for row in DailyStats.objects.filter(day__gte=days[0], day__lte=days[-1])}

    def current(row):
        ended = datetime.combine(row.day + timedelta(days=1), time(), tzinfo=today_start.tzinfo)
        return row.counted_at >= ended + timedelta(days=1) or now - row.counted_at < RECOUNT_AFTER

    stale = [day for day in days if day not in rows or not current(rows[day])]
    if stale:
        since = datetime.combine(stale[0], time(), tzinfo=today_start.tzinfo)
        until = datetime.combine(stale[-1] + timedelta(days=1), time(), tzinfo=today_start.tzinfo)
        counted = count_days(since, until)
        empty = {"in": 0, "out": 0, "pricing": {}}
        fresh = [DailyStats(day=day, received=counted.get(day, empty)["in"], sent=counted.get(day, empty)["out"],
                            pricing=counted.get(day, empty)["pricing"], counted_at=now) for day in stale]
        DailyStats.objects.bulk_create(fresh, update_conflicts=True, unique_fields=["day"],
                                       update_fields=["received", "sent", "pricing", "counted_at"])
        rows.update({row.day: row for row in fresh})
    return {day: {"in": row.received, "out": row.sent, "pricing": row.pricing} for day, row in rows.items()}


def chart_days(today_start, past, today_total):
    days = [(today_start - timedelta(days=offset)).date() for offset in range(CHART_DAYS - 1, -1, -1)]
    counts = {**past, today_start.date(): today_total}
    return bars([(day, counts.get(day, {"in": 0, "out": 0})) for day in days])


def bars(points):
    """Chart points with each bar's height as a percentage of the tallest (and its top, `_y`, in
    the chart's 0-100 coordinates, y pointing down)."""
    top = max([max(c["in"], c["out"]) for _, c in points] + [1])
    chart = []
    for label, c in points:
        heights = {"in_pct": 100 * c["in"] / top, "out_pct": 100 * c["out"] / top}
        chart.append({"label": label, "in": c["in"], "out": c["out"], **heights,
                      "in_y": 100 - heights["in_pct"], "out_y": 100 - heights["out_pct"]})
    return {"top": top, "points": chart}


def pricing(past, today):
    """Messages Meta reported as billable, by pricing category, over the last 30 days."""
    counts = dict(today)
    for day in past.values():
        for category, n in day["pricing"].items():
            counts[category] = counts.get(category, 0) + n
    return sorted(counts.items(), key=lambda item: -item[1])


# --- Conversations ---------------------------------------------------------------------------


@dataclass
class ListFilters:
    status: str = ""          # "" = every session not closed; "all" = closed ones too
    department: int | None = None
    assignee: str = ""        # "", "me", "none" or a user id
    unread: bool = False
    q: str = ""
    sort: str = "activity"    # or "window": the 24-hour window closing soonest first


def conversations(filters, user, now=None):
    """The sessions for the list, newest activity first, each with its last message's text."""
    now = now or timezone.now()
    sessions = visible(Session.objects.select_related("contact", "department", "assigned_to"), user)
    if filters.status in Session.Status.values:
        sessions = sessions.filter(status=filters.status)
    elif filters.status != "all":
        sessions = sessions.exclude(status=Session.Status.CLOSED)
    if filters.department:
        sessions = sessions.filter(department_id=filters.department)
    if filters.assignee == "me":
        sessions = sessions.filter(assigned_to=user)
    elif filters.assignee == "none":
        sessions = sessions.filter(assigned_to__isnull=True)
    elif filters.assignee.isascii() and filters.assignee.isdigit():
        sessions = sessions.filter(assigned_to_id=int(filters.assignee))
    if filters.unread:
        sessions = sessions.filter(unread__gt=0)
    if filters.q:
        sessions = sessions.filter(name_or_number(filters.q, "contact__"))
    if filters.sort == "window":
        sessions = sessions.filter(contact__last_inbound_at__gt=now - WINDOW).order_by("contact__last_inbound_at")
    else:
        sessions = sessions.order_by("-last_message_at")
    last_text = Message.objects.filter(session=OuterRef("pk")).exclude(type__in=ATTACHED_TYPES) \
        .order_by("-timestamp", "-pk").values("text")[:1]
    return sessions.annotate(last_text=Subquery(last_text))


def name_or_number(q, prefix=""):
    """Contacts (through `prefix`) whose name contains `q`, or whose number contains its digits."""
    digits = "".join(ch for ch in q if ch.isascii() and ch.isdigit())
    match = Q(**{f"{prefix}name__icontains": q})
    if digits:
        match |= Q(**{f"{prefix}wa_id__contains": digits})
    return match


def window_left(contact, now=None):
    """Time left in the contact's 24-hour window, or None when it is closed."""
    if contact.last_inbound_at is None:
        return None
    left = contact.last_inbound_at + WINDOW - (now or timezone.now())
    return left if left > timedelta(0) else None


# --- One conversation ------------------------------------------------------------------------


def thread(session, *, before=None, after=None, limit=THREAD_PAGE):
    """The session's messages, oldest first, with their reactions and the messages they quote.

    By default the last `limit`; `before` pages back, `after` gives only newer ones (live updates).
    """
    messages = Message.objects.filter(session=session).exclude(type__in=ATTACHED_TYPES).select_related("sent_by")
    if after is not None:
        page = list(messages.filter(pk__gt=after).order_by("pk")[:limit])
    else:
        if before is not None:
            messages = messages.filter(pk__lt=before)
        page = list(messages.order_by("-pk")[:limit])[::-1]
    attach_related(page)
    return page


def attach_related(messages):
    """Set `reactions` and `quoted` on each message with two queries for the whole page."""
    wamids = [m.wamid for m in messages if m.wamid]
    reactions = {}
    if wamids:
        for reaction in Message.objects.filter(type="reaction", target_wamid__in=wamids).exclude(text=""):
            reactions.setdefault(reaction.target_wamid, []).append(reaction)
    quoted_ids = {m.reply_to for m in messages if m.reply_to}
    quoted = {m.wamid: m for m in Message.objects.filter(wamid__in=quoted_ids).only("wamid", "text", "type",
                                                                                  "direction")} if quoted_ids else {}
    for message in messages:
        message.reactions = reactions.get(message.wamid, [])
        message.quoted = quoted.get(message.reply_to)


def count_after(session, after):
    """How many thread messages came after message `after` (at most a page and one)."""
    return len(Message.objects.filter(session=session, pk__gt=after).exclude(type__in=ATTACHED_TYPES)
               .values_list("pk", flat=True)[:THREAD_PAGE + 1])


def last_change(session):
    """A mark that changes whenever the shown messages do (live updates compare it): a new one, or
    a status on one of the last page's."""
    shown = Message.objects.filter(session=session).order_by("-pk")[:THREAD_PAGE]
    newest = Message.objects.filter(pk__in=shown.values("pk")).aggregate(
        id=Max("pk"), sent=Max("sent_at"), delivered=Max("delivered_at"), read=Max("read_at"),
        failed=Max("failed_at"), edited=Max("edited_at"), revoked=Max("revoked_at"), reacted=Max("timestamp"),
        media=Count("pk", filter=Q(media_status=Message.MediaStatus.READY)))
    return "|".join(str(value) for value in newest.values())


def approved_templates():
    return list(Template.objects.filter(status="APPROVED").order_by("name", "language"))


