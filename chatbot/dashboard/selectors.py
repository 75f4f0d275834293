"""Reads for the operators' dashboard: each page's data in a fixed number of queries, whatever the
number of contacts, sessions and messages (the page tests count them)."""

import statistics
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Case, Count, Exists, F, Max, OuterRef, Q, Subquery, Sum, When
from django.db.models.functions import Coalesce, ExtractHour, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import health, search
from ..models import (
    DEFAULT_LIMIT,
    WINDOW,
    AccountEvent,
    Contact,
    DailyStats,
    Message,
    OperatorProfile,
    Session,
    Template,
    WebhookEndpoint,
)
from ..whatsapp.vocabulary import FOLLOW_UP_TYPES, MessageType
from .permissions import is_admin, operators, visible

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
    today = today_counts(today_start, now)
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
        "team": team(now),
    }


def disabled_endpoints():
    """The event webhooks the workers disabled after 24 h of failures: a notice for administrators."""
    return list(WebhookEndpoint.objects.listed().filter(active=False, disabled_reason=WebhookEndpoint.DISABLED_FAILING))


PRESENCE_ORDER = {OperatorProfile.Presence.ONLINE: 0, OperatorProfile.Presence.AWAY: 1,
                  OperatorProfile.Presence.OFFLINE: 2}


def team(now):
    """Who is on the team now, online first: each operator's presence (by the rule, not the stored
    value the worker's sweep updates every 30 s), open conversations and limit."""
    people = list(operators())
    load = dict(Session.objects.filter(status=Session.Status.OPEN, assigned_to__in=people)
                .values_list("assigned_to").annotate(n=Count("id")).order_by())
    rows = []
    for person in people:
        profile = getattr(person, "profile", None)
        rows.append({"user": person, "open": load.get(person.pk, 0),
                     "presence": profile.presence_at(now) if profile else OperatorProfile.Presence.OFFLINE,
                     "limit": profile.max_conversations if profile else DEFAULT_LIMIT})
    return sorted(rows, key=lambda row: (PRESENCE_ORDER[row["presence"]], row["user"].get_username()))


def today_counts(today_start, now):
    """Today's messages by hour and direction, and the billable ones by category: one pass (not
    those scheduled for later)."""
    rows = (Message.objects.filter(timestamp__gte=today_start, timestamp__lte=now).exclude(type__in=ATTACHED_TYPES)
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
    sort: str = ""            # "" = waiting ones oldest first, else latest activity; "window": closing soonest
    label: int | None = None


def conversations(filters, user, now=None):
    """The sessions for the list, each with `preview` (the customer's last words, or the last
    message matching the search) and its labels: a fixed number of queries for a page."""
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
    if filters.label:
        sessions = sessions.filter(labels=filters.label)
    shown = Message.objects.filter(session=OuterRef("pk")).exclude(type__in=ATTACHED_TYPES)
    preview = Subquery(shown.filter(direction=Message.Direction.IN).order_by("-timestamp", "-pk").values("text")[:1])
    if filters.q:
        sessions, preview = searched(sessions, shown, filters.q, preview)
    if filters.sort == "window":
        sessions = sessions.filter(contact__last_inbound_at__gt=now - WINDOW).order_by("contact__last_inbound_at")
    elif filters.status == Session.Status.WAITING and filters.sort != "activity":
        sessions = sessions.order_by("waiting_since", "pk")  # the queue: whoever waits longest first
    elif not filters.status and not filters.q and filters.sort != "activity":
        # The active ones: the queue first (longest wait on top), then the latest activity. (Search
        # results come by activity: walking sessions by recency finds a page of them soonest.)
        queue = Case(When(status=Session.Status.WAITING, then=F("waiting_since")))
        sessions = sessions.order_by(F("queue").asc(nulls_last=True), "-last_message_at", "-pk").alias(queue=queue)
    else:
        sessions = sessions.order_by("-last_message_at", "-pk")
    return sessions.annotate(preview=preview).prefetch_related("labels")


# A search matching fewer messages (and names) than this is looked up through the indexes, its
# sessions then sorted; a commoner one is found among the sessions by recency, which soon finds a
# page of them. Either way a page costs milliseconds, not a scan of every session.
FEW_MATCHES = 500


def searched(sessions, shown, q, preview):
    """`sessions` narrowed to those whose customer's name or number matches `q`, or (from 3
    letters) with a message containing it; the preview becomes the matching message."""
    by_name = search.contact_matches(q, "contact__")
    if not search.searches_text(q):
        return sessions.filter(by_name), preview
    matching = shown.filter(search.message_matches(q))
    preview = Coalesce(Subquery(matching.order_by("-timestamp", "-pk").values("text")[:1]), preview)
    messages = few(Message.objects.exclude(type__in=ATTACHED_TYPES).filter(search.message_matches(q))
                   .values_list("session_id", flat=True))
    contacts = few(Contact.objects.filter(search.contact_matches(q)).values_list("pk", flat=True))
    if messages is not None and contacts is not None:
        return sessions.filter(Q(pk__in=set(messages)) | Q(contact_id__in=contacts)), preview
    return sessions.filter(by_name | Q(Exists(matching))), preview


def few(values):
    """The values, or None when there are FEW_MATCHES or more."""
    found = list(values[:FEW_MATCHES])
    return found if len(found) < FEW_MATCHES else None


class ListPage:
    """A page of a list without counting the whole list (a count of a search over a million
    messages costs more than the page): `number`, `has_next`, `has_previous`… as Django's Page,
    but no number of pages.

    The page's ids are chosen first, sorting narrow rows; then only those rows are read with their
    joins and previews (sorting thousands of whole rows to keep fifty cost ten times more)."""

    def __init__(self, queryset, number, size):
        self.number, self.size = number, size
        ids = list(queryset.values_list("pk", flat=True)[(number - 1) * size:number * size + 1])
        rows = queryset.order_by().in_bulk(ids[:size])
        self.object_list, self.has_next_page = [rows[pk] for pk in ids[:size]], len(ids) > size
        self.paginator = None

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)

    def has_next(self):
        return self.has_next_page

    def has_previous(self):
        return self.number > 1

    def has_other_pages(self):
        return self.has_next() or self.has_previous()

    def next_page_number(self):
        return self.number + 1

    def previous_page_number(self):
        return self.number - 1


def name_or_number(q, prefix=""):
    """Contacts (through `prefix`) whose name contains `q` (case and accents ignored), or whose
    number contains its digits."""
    return search.contact_matches(q, prefix)


def window_left(contact, now=None):
    """Time left in the contact's 24-hour window, or None when it is closed."""
    if contact.last_inbound_at is None:
        return None
    left = contact.last_inbound_at + WINDOW - (now or timezone.now())
    return left if left > timedelta(0) else None


# --- One conversation ------------------------------------------------------------------------


def thread(session, *, before=None, after=None, limit=THREAD_PAGE):
    """The session's messages in time order, with their reactions and the messages they quote. A
    scheduled message is where it will be: after the others until its time comes.

    By default the last `limit`; `before` (a message's id) pages back from that message, `after`
    gives only the rows made after message `after` (live updates).
    """
    messages = Message.objects.filter(session=session).exclude(type__in=ATTACHED_TYPES).select_related("sent_by")
    if after is not None:
        page = list(messages.filter(pk__gt=after).order_by("pk")[:limit])
    else:
        if before is not None:
            messages = messages.filter(earlier_than(before))
        page = list(messages.order_by("-timestamp", "-pk")[:limit])[::-1]
    attach_related(page)
    return page


def earlier_than(message_id):
    """Rows before message `message_id` in the thread's order (time, then id)."""
    moment = Message.objects.filter(pk=message_id).values_list("timestamp", flat=True).first()
    if moment is None:
        return Q(pk__lt=message_id)
    return Q(timestamp__lt=moment) | Q(timestamp=moment, pk__lt=message_id)


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
    """A mark that changes whenever the shown messages do (live updates compare it): a new one, one
    gone (a scheduled message cancelled), or a status on one of the last page's."""
    shown = Message.objects.filter(session=session).order_by("-timestamp", "-pk")[:THREAD_PAGE]
    newest = Message.objects.filter(pk__in=shown.values("pk")).aggregate(
        id=Max("pk"), ids=Sum("pk"), sent=Max("sent_at"), delivered=Max("delivered_at"), read=Max("read_at"),
        failed=Max("failed_at"), edited=Max("edited_at"), revoked=Max("revoked_at"),
        reacted=Max("timestamp", filter=Q(type=MessageType.REACTION)),
        media=Count("pk", filter=Q(media_status=Message.MediaStatus.READY)))
    return "|".join(str(value) for value in newest.values())


def approved_templates():
    return list(Template.objects.filter(status="APPROVED").order_by("name", "language"))




# --- The team: queues, what is new, who is looking ------------------------------------------

VIEWING_FOR = timedelta(seconds=10)  # a tab polls every 2 s: this long without a poll, it is gone


def queue_of(user):
    """The waiting conversations `user` answers: in their departments (every one they may see when
    they belong to none, or are an administrator), nobody's yet."""
    waiting = visible(Session.objects.filter(status=Session.Status.WAITING, assigned_to__isnull=True), user)
    departments = list(user.departments.values_list("pk", flat=True))
    if departments and not is_admin(user):
        waiting = waiting.filter(Q(department__in=departments) | Q(department__isnull=True))
    return waiting


def pulse(user):
    """What every dashboard tab shows and notifies about: the queue's size and newest arrival, and
    the unread messages of `user`'s conversations with the newest one."""
    waiting = queue_of(user)
    queue = waiting.aggregate(count=Count("pk"), newest=Max("pk"))
    mine = Session.objects.filter(assigned_to=user, status=Session.Status.OPEN)
    unread = mine.aggregate(count=Coalesce(Sum("unread"), 0))["count"]
    last = (Message.objects.filter(session__in=mine, direction=Message.Direction.IN)
            .exclude(type__in=ATTACHED_TYPES).select_related("contact").order_by("-pk").first())
    newest_waiting = waiting.select_related("contact").filter(pk=queue["newest"]).first() if queue["newest"] else None
    return {
        "waiting": queue["count"], "unread": unread,
        "newest_waiting": {"id": newest_waiting.pk, "name": str(newest_waiting.contact),
                           "department": str(newest_waiting.department or "")} if newest_waiting else None,
        "newest_message": {"id": last.pk, "session": last.session_id, "name": str(last.contact),
                           "text": (last.text or last.type)[:120]} if last else None,
    }


def viewers(session, user, now=None):
    """The other operators who have the conversation on screen now."""
    since = (now or timezone.now()) - VIEWING_FOR
    return sorted(OperatorProfile.objects.filter(viewing=session, viewing_at__gte=since).exclude(user=user)
                  .values_list("user__username", flat=True))


def past_conversations(session, user, limit=10):
    return list(visible(session.contact.sessions.exclude(pk=session.pk), user)
                .select_related("department").order_by("-started_at")[:limit])


# --- Account events (the webhook log) ------------------------------------------------------------


ACCOUNT_EVENTS_SHOWN = 20


def account_events(limit=ACCOUNT_EVENTS_SHOWN):
    """Meta's latest news about the account, each with a line an administrator can read."""
    events = list(AccountEvent.objects.select_related("phone_number").order_by("-created_at", "-pk")[:limit])
    for event in events:
        event.summary = account_summary(event.field, event.event, event.payload)
    return events


def _first(payload, key):
    """The first object of payload[key] (Meta puts groups and ad events in lists), {} when none."""
    items = payload.get(key)
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}


def _template(payload):
    return f"{payload.get('message_template_name', '')} ({payload.get('message_template_language', '')})"


SUMMARIES = {
    "calls": lambda event, p: _("Call from %(number)s: %(event)s") % {
        "number": p.get("from") or p.get("recipient_id") or "?", "event": event},
    "automatic_events": lambda event, p: _("Click-to-WhatsApp ad event: %(event)s") % {
        "event": _first(p, "automatic_events").get("event_name") or event},
    "message_template_components_update": lambda event, p: _("Template %(template)s: its content changed") % {
        "template": _template(p)},
    "message_template_quality_update": lambda event, p: _("Template %(template)s quality: %(old)s → %(new)s") % {
        "template": _template(p), "old": p.get("previous_quality_score", "?"), "new": p.get("new_quality_score", "?")},
    "template_category_update": lambda event, p: _("Template %(template)s category: %(category)s") % {
        "template": _template(p), "category": p.get("new_category", "?")},
    "phone_number_name_update": lambda event, p: _("Display name “%(name)s”: %(decision)s") % {
        "name": p.get("requested_verified_name", ""), "decision": p.get("decision") or event},
    "phone_number_quality_update": lambda event, p: _("Number %(number)s quality: %(event)s") % {
        "number": p.get("display_phone_number", ""), "event": event},
    "account_review_update": lambda event, p: _("Account review: %(decision)s") % {
        "decision": p.get("decision") or event},
    "account_settings_update": lambda event, p: _("The number's settings changed (%(what)s)") % {
        "what": event or "?"},
    "account_update": lambda event, p: _("Account update: %(event)s") % {"event": event},
    "errors": lambda event, p: _("Meta reported error %(code)s: %(title)s") % {
        "code": event, "title": p.get("title") or p.get("message", "")},
}


def account_summary(field, event, payload):
    payload = payload if isinstance(payload, dict) else {}
    if field in SUMMARIES:
        return SUMMARIES[field](event, payload)
    if field.startswith("group_"):
        group = _first(payload, "groups")
        return _("Group %(group)s: %(event)s") % {"group": group.get("group_id", "?"), "event": event}
    return _("%(field)s: %(event)s") % {"field": field, "event": event or "—"}
