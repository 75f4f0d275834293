"""The reports' counting (chatbot/reports.py reads it): conversations, their times and surveys,
customers' messages and operators' hours online, per day and slice, stored in `ReportDay`.

A slice is (department, operator, label), 0 standing for "every": a conversation counts in each
slice it belongs to (every department and its own, every operator and its own, every label and
each of its labels), so a report reads one row per day or month whatever its filters. A finished
day is counted once; a final month is the sum of its days (a year is about 40 rows per slice);
today is counted live. As with `DailyStats`, a day is counted again every RECOUNT_AFTER until
FINAL_AFTER after it ended (late closes and survey answers), then never: later changes to old
conversations (a transfer, a label) do not move it, and the counts outlive the retention purge.

The worker keeps the rows up to date (`keep_up`, a background task every KEEP_UP_EVERY): it
recounts the recent days before a page would, and counts the history of a new installation a few
weeks at a time, so that a page only counts today and what the worker has not reached yet.
"""

from collections import defaultdict
from datetime import datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import ExtractHour, Length, TruncDate
from django.utils import timezone
from django_tasks import task

from . import bot, conversation
from .models import Department, Message, OnlineHour, ReportDay, Session
from .whatsapp.vocabulary import FOLLOW_UP_TYPES

FINAL_AFTER = timedelta(days=2)
RECOUNT_AFTER = timedelta(minutes=10)
# The worker's `keep_up`: how often it runs, how many days never counted it counts in one run (a
# second or so of the tasks thread, beside media downloads), and how far back it goes.
KEEP_UP_EVERY = timedelta(minutes=2)
BACKFILL_DAYS = 14
HISTORY_DAYS = 731
EVERY = (0, 0, 0)  # the slice of every department, operator and label: each day has its row


# --- Counting ----------------------------------------------------------------------------------


def quantize(seconds):
    """A duration floored to what the page shows of it: seconds, minutes, then hours."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return seconds
    return seconds - seconds % (60 if seconds < 86400 else 3600)


def business_seconds(config, start, end):
    """Seconds of [start, end] inside business hours (all of them when no hours are set)."""
    if not config.hours:
        return (end - start).total_seconds()
    zone = timezone.get_current_timezone()
    start, end = timezone.localtime(start, zone), timezone.localtime(end, zone)
    total, day = 0.0, start.date()
    while day <= end.date():
        for opens, closes in bot.open_spans(config, day):
            overlap = (min(end, datetime.combine(day, closes, tzinfo=zone))
                       - max(start, datetime.combine(day, opens, tzinfo=zone)))
            total += max(overlap.total_seconds(), 0)
        day += timedelta(days=1)
    return total


def bump(figures, *path, n=1):
    """Add `n` at `path` (names; the last one a counter) in nested dicts."""
    *parents, leaf = path
    for name in parents:
        figures = figures.setdefault(name, {})
    figures[leaf] = figures.get(leaf, 0) + n


def add(total, part, sign=1):
    """Add the counters of `part` into `total` (both nested dicts of counters); returns `total`."""
    for name, value in part.items():
        if isinstance(value, dict):
            add(total.setdefault(name, {}), value, sign)
        else:
            total[name] = total.get(name, 0) + sign * value
    return total


def slice_keys(department, operator, labels):
    """Every slice a conversation counts in."""
    return {(d, o, label) for d in {0, department or 0} for o in {0, operator or 0} for label in {0, *labels}}


def count(start, end, config):
    """{(day, slice): figures} of [start, end) (aware datetimes), every day with its EVERY slice.

    Figures: started, handled, closed (counts); fr and res ({"wall"|"business": {seconds: n}},
    first response and resolution); csat ({asked, comments, scores: {score: n}}); received and
    online ({hour of the week: n}, Monday 0h = 0). Keys are strings, as in the stored JSON."""
    zone = timezone.get_current_timezone()

    def day_of(moment):
        return timezone.localtime(moment, zone).date()

    def within(moment):
        return moment is not None and start <= moment < end

    touched = Session.objects.filter(Q(started_at__gte=start, started_at__lt=end)
                                     | Q(first_response_at__gte=start, first_response_at__lt=end)
                                     | Q(closed_at__gte=start, closed_at__lt=end))
    labels = defaultdict(list)
    for session_id, label_id in Session.labels.through.objects.filter(session__in=touched.values("pk")) \
            .values_list("session_id", "label_id"):
        labels[session_id].append(label_id)
    # Counted first per (day, department, operator, labels), then added into each slice once.
    fine = defaultdict(dict)
    for (pk, department, operator, started, waiting, responded, closed, asked, score,
         comment) in touched.annotate(comment=Length("csat_comment")).values_list(
            "pk", "department_id", "assigned_to_id", "started_at", "waiting_since", "first_response_at", "closed_at",
            "csat_asked_at", "csat_score", "comment"):
        grain = (department or 0, operator or 0, tuple(sorted(labels.get(pk, ()))))
        if within(started):
            bump(fine[(day_of(started), *grain)], "started")
        if within(responded):
            figures = fine[(day_of(responded), *grain)]
            bump(figures, "handled")
            if waiting is not None and responded >= waiting:
                bump(figures, "fr", "wall", str(quantize((responded - waiting).total_seconds())))
                bump(figures, "fr", "business", str(quantize(business_seconds(config, waiting, responded))))
        if within(closed):
            figures = fine[(day_of(closed), *grain)]
            bump(figures, "closed")
            if responded is not None:
                bump(figures, "res", "wall", str(quantize((closed - started).total_seconds())))
                bump(figures, "res", "business", str(quantize(business_seconds(config, started, closed))))
            if asked is not None:
                bump(figures, "csat", "asked")
                if score:
                    bump(figures, "csat", "scores", str(score))
                if comment:
                    bump(figures, "csat", "comments")

    received = (Message.objects.filter(timestamp__gte=start, timestamp__lt=end, direction=Message.Direction.IN)
                .exclude(type__in=FOLLOW_UP_TYPES)
                .annotate(day=TruncDate("timestamp", tzinfo=zone), hour=ExtractHour("timestamp", tzinfo=zone)))
    by_grain = defaultdict(dict)  # messages of every label, then of each label
    for day, hour, department, operator, n in received.values_list(
            "day", "hour", "session__department_id", "session__assigned_to_id").annotate(n=Count("pk")):
        bump(by_grain[(day, department or 0, operator or 0, 0)], str(day.weekday() * 24 + hour), n=n)
    for day, hour, department, operator, label, n in received.filter(session__labels__isnull=False).values_list(
            "day", "hour", "session__department_id", "session__assigned_to_id", "session__labels") \
            .annotate(n=Count("pk")):
        bump(by_grain[(day, department or 0, operator or 0, label)], str(day.weekday() * 24 + hour), n=n)

    counted = defaultdict(dict)
    for (day, department, operator, labels_of), figures in fine.items():
        for key in slice_keys(department, operator, labels_of):
            add(counted[(day, key)], figures)
    for (day, department, operator, label), hours in by_grain.items():
        keys = {(d, o, label) for d in {0, department} for o in {0, operator}}
        for key in keys:
            add(counted[(day, key)], {"received": hours})
    add_online(counted, start, end, zone)
    day = timezone.localtime(start, zone).date()
    while datetime.combine(day, time(), tzinfo=zone) < end:
        counted.setdefault((day, EVERY), {})
        day += timedelta(days=1)
    return counted


def add_online(counted, start, end, zone):
    """Operator-hours online by hour of the week: everyone's, each department's, each operator's."""
    departments = defaultdict(list)
    for department_id, user_id in Department.operators.through.objects.values_list("department_id", "user_id"):
        departments[user_id].append(department_id)
    for user_id, hour in OnlineHour.objects.filter(hour__gte=start, hour__lt=end).values_list("user_id", "hour"):
        local = timezone.localtime(hour, zone)
        slot = str(local.weekday() * 24 + local.hour)
        for key in [EVERY, (0, user_id, 0), *((d, 0, 0) for d in departments[user_id])]:
            bump(counted[(local.date(), key)], "online", slot)


# --- Stored days and months --------------------------------------------------------------------


def midnight(day):
    return datetime.combine(day, time(), tzinfo=timezone.get_current_timezone())


def final(day, counted_at):
    """Whether a day counted at `counted_at` is final: counted FINAL_AFTER after it ended."""
    return counted_at >= midnight(day + timedelta(days=1)) + FINAL_AFTER


def month_end(first):
    return (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def plan(first_day, last_day, today, now):
    """(day ranges, months) to read for the period's finished days: whole months once they are
    final, the days around them one by one (today is counted live)."""
    last = min(last_day, today - timedelta(days=1))
    if last < first_day:
        return [], []
    months, first = [], first_day if first_day.day == 1 else month_end(first_day) + timedelta(days=1)
    while month_end(first) <= last and final(month_end(first), now):
        months.append(first)
        first = month_end(first) + timedelta(days=1)
    if not months:
        return [(first_day, last)], []
    ranges = [(first_day, months[0] - timedelta(days=1)), (month_end(months[-1]) + timedelta(days=1), last)]
    return [(a, b) for a, b in ranges if a <= b], months


def due(days, now, recount_after=RECOUNT_AFTER):
    """Of `days`, those never counted, or counted `recount_after` ago or more and not final."""
    counted = dict(ReportDay.objects.filter(span=ReportDay.Span.DAY, department=0, operator=0, label=0,
                                            day__in=days).values_list("day", "counted_at"))
    return sorted(day for day in set(days) if day not in counted
                  or (not final(day, counted[day]) and now - counted[day] >= recount_after))


def count_days(days, now, config):
    """Count `days` (sorted) and store them: one count per run of consecutive days, at most a
    month long (bounded memory, few queries)."""
    days = list(days)
    while days:
        run = [days.pop(0)]
        while days and days[0] == run[-1] + timedelta(days=1) and len(run) < 31:
            run.append(days.pop(0))
        store(ReportDay.Span.DAY, run, count(midnight(run[0]), midnight(run[-1] + timedelta(days=1)), config), now)


def ensure(ranges, months, now, config):
    """Count the days of `ranges` and `months` that are missing or due again, then roll up the
    months not stored yet (what a page needs, when the worker's `keep_up` has not done it)."""
    stored_months = set(ReportDay.objects.filter(span=ReportDay.Span.MONTH, department=0, operator=0, label=0,
                                                 day__in=months).values_list("day", flat=True))
    wanted = [a + timedelta(days=n) for a, b in ranges for n in range((b - a).days + 1)]
    wanted += [m + timedelta(days=n) for m in months if m not in stored_months
               for n in range((month_end(m) - m).days + 1)]
    if wanted:
        count_days(due(wanted, now), now, config)
    for month in months:
        if month not in stored_months:
            roll_up(month, now)


def keep_up(now, config, *, backfill=BACKFILL_DAYS):
    """The worker's share (`keep_up_task`), so that pages seldom count anything: the days not final
    yet recounted before a page would find them stale, then up to `backfill` days never counted,
    newest first, back to the first conversation's month (at most HISTORY_DAYS), and the months they
    complete rolled up. Returns the days counted."""
    today = timezone.localdate(now)
    recent = [today - timedelta(days=n) for n in range(1, FINAL_AFTER.days + 2)]
    days = due(recent, now, RECOUNT_AFTER / 2)
    first = Session.objects.order_by("started_at").values_list("started_at", flat=True).first()
    if first is not None:
        # From the first of its month, so that the month is complete and rolls up.
        oldest = max(timezone.localtime(first).date().replace(day=1), today - timedelta(days=HISTORY_DAYS))
        history = [today - timedelta(days=n) for n in range(1, (today - oldest).days + 1)]
        counted = set(ReportDay.objects.filter(span=ReportDay.Span.DAY, department=0, operator=0, label=0,
                                               day__gte=oldest).values_list("day", flat=True))
        days += [day for day in history if day not in counted and day not in days][:backfill]
    days.sort()
    count_days(days, now, config)
    months = sorted({day.replace(day=1) for day in days})
    stored = set(ReportDay.objects.filter(span=ReportDay.Span.MONTH, department=0, operator=0, label=0,
                                          day__in=months).values_list("day", flat=True))
    for month in months:
        if month not in stored and final(month_end(month), now) and not due(
                [month + timedelta(days=n) for n in range((month_end(month) - month).days + 1)], now):
            roll_up(month, now)
    return days


@task()
def keep_up_task():
    """`keep_up` as a background task, queued by the worker every KEEP_UP_EVERY."""
    keep_up(timezone.now(), conversation.load_config()[0])


def store(span, days, counted, now):
    """Replace the rows of `days` (of `span`) by `counted` ({(day, slice): figures})."""
    rows = [ReportDay(span=span, day=day, department=key[0], operator=key[1], label=key[2], figures=figures,
                      counted_at=now) for (day, key), figures in counted.items()]
    with transaction.atomic():
        ReportDay.objects.filter(span=span, day__in=days).delete()
        # Two requests counting the same days at once: the second one's rows win, both are right.
        ReportDay.objects.bulk_create(rows, batch_size=1000, update_conflicts=True,
                                      unique_fields=["span", "department", "operator", "label", "day"],
                                      update_fields=["figures", "counted_at"])


def roll_up(month, now):
    """A final month's rows: the sum of its days' rows, slice by slice."""
    summed = defaultdict(dict)
    for department, operator, label, figures in ReportDay.objects.filter(
            span=ReportDay.Span.DAY, day__gte=month, day__lte=month_end(month)).values_list(
            "department", "operator", "label", "figures"):
        add(summed[(month, (department, operator, label))], figures)
    summed.setdefault((month, EVERY), {})
    store(ReportDay.Span.MONTH, [month], summed, now)
