"""The reports' figures (issue 15): a period and a slice of the conversations in, figures out.

What each figure means:
- *started*: conversations whose first message came in the period; *handled*: those an operator
  took or answered first in the period (`first_response_at`); *closed*: those closed in it.
- *first response*: from asking for a person (`waiting_since`) to the operator's first answer or
  take; *resolution*: from the first message to the close, of the closed conversations an operator
  handled. Each in wall-clock time and in *business time*: only the part inside business hours
  (`bot.open_spans`, the bot's own rule), so a customer who wrote at 23:00 and was answered at
  08:05 waited 5 minutes of business time when the business opens at 08:00.
- medians and p90 are nearest-rank (half, or nine in ten, of the conversations took this long or
  less), over durations floored to what the page shows (seconds under a minute, minutes under a
  day, hours beyond): stored histograms then give exactly the figures the raw times would.
- the survey (CSAT) of the conversations closed in the period: asked, answered, scores, comments.
- customers' messages by hour of the week; operator-hours online (`OnlineHour`) by hour of the week.

A conversation counts for the operator it is with (`assigned_to`), its department and its labels.
The counting, and the per-day rows that keep a year of reports fast, are `reporting`'s.
"""

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.core.cache import cache
from django.db.models import Avg, Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from . import conversation, reporting
from .models import ReportDay, Session
from .reporting import add, bump, count, ensure, midnight, plan, quantize

MAX_DAYS = 731  # two years: enough to compare a year with the one before, and a bounded count
PRESETS = ("today", "7d", "30d", "month", "last_month", "12m")
DEFAULT_PRESET = "30d"
# Upper bounds (seconds) of the waiting-time buckets: <1 min, 1-5 min, 5-15 min, 15-60 min, 1-4 h;
# the last bucket is everything from 4 h.
WAIT_BOUNDS = (60, 300, 900, 3600, 14400)
COMMENTS_SHOWN = 100
CACHE_SECONDS = 24 * 3600  # the sums of final rows (`gather`): they never change


class ReportRefused(ValueError):
    """A period the reports cannot show (the message says why, for the page)."""


# --- The period and the slice ------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # included
    preset: str = "custom"

    @property
    def days(self):
        return (self.last - self.first).days + 1


def preset_period(preset, today):
    first_of_month = today.replace(day=1)
    last_month_end = first_of_month - timedelta(days=1)
    first, last = {
        "today": (today, today),
        "7d": (today - timedelta(days=6), today),
        "30d": (today - timedelta(days=29), today),
        "month": (first_of_month, today),
        "last_month": (last_month_end.replace(day=1), last_month_end),
        "12m": (today - timedelta(days=364), today),
    }[preset]
    return Period(first, last, preset)


def custom_period(first, last, today):
    """The period from `first` to `last` (dates, both included); ReportRefused when it cannot be
    shown. A period reaching into the future stops today."""
    if first > last:
        raise ReportRefused(_("The start date is after the end date."))
    if first > today:
        raise ReportRefused(_("The period has not started yet."))
    last = min(last, today)
    if (last - first).days + 1 > MAX_DAYS:
        raise ReportRefused(_("A report covers at most %(days)d days.") % {"days": MAX_DAYS})
    return Period(first, last)


@dataclass(frozen=True)
class Scope:
    """Which conversations: one department, operator, label (0: any), as seen by an operator who
    may not see the departments in `hidden` (but sees their own conversations there, `viewer`)."""

    department: int = 0
    operator: int = 0
    label: int = 0
    hidden: frozenset = frozenset()
    viewer: int = 0


def slices(scope):
    """[(slice, sign)] whose signed sum is the scope's conversations."""
    d, o, label = scope.department, scope.operator, scope.label
    if not scope.hidden or (d and d not in scope.hidden) or (o and o == scope.viewer):
        return [((d, o, label), 1)]
    if d:  # a department hidden from the viewer: their own conversations in it
        return [((d, scope.viewer, label), 1)] if o in (0, scope.viewer) else []
    signed = [((0, o, label), 1)] + [((h, o, label), -1) for h in sorted(scope.hidden)]
    if not o:
        signed += [((h, scope.viewer, label), 1) for h in sorted(scope.hidden)]
    return signed


def online_slice(scope):
    """Operators online: the operator's own hours, else their department's, else everyone's (a
    label does not narrow who is online)."""
    return (0, scope.operator, 0) if scope.operator else (scope.department, 0, 0)


def session_filter(scope):
    """The scope as a condition on sessions (for the survey's comments, read live)."""
    condition = Q()
    if scope.department:
        condition &= Q(department_id=scope.department)
    if scope.operator:
        condition &= Q(assigned_to_id=scope.operator)
    if scope.label:
        condition &= Q(labels=scope.label)
    if scope.hidden:
        condition &= ~Q(department_id__in=scope.hidden) | Q(assigned_to_id=scope.viewer)
    return condition


def gather(scope, period, now=None):
    """The period's figures for the scope (nested counters, as `count` makes them), with "online"
    for its online slice."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    config = conversation.load_config()[0]
    ranges, months = plan(period.first, period.last, today, now)
    ensure(ranges, months, now, config)
    signed, online_key = slices(scope), online_slice(scope)
    keys = {key for key, _sign in signed}
    when = Q(span=ReportDay.Span.MONTH, day__in=months) if months else Q(pk__in=[])
    for a, b in ranges:
        when |= Q(span=ReportDay.Span.DAY, day__gte=a, day__lte=b)
    final, recent = [], []  # (pk, slice) of stored rows, by whether they may still change
    for pk, counted_at, span, day, *key in ReportDay.objects.filter(when, in_slices(keys | {online_key})).values_list(
            "pk", "counted_at", "span", "day", "department", "operator", "label"):
        settled = span == ReportDay.Span.MONTH or reporting.final(day, counted_at)
        (final if settled else recent).append((pk, counted_at, tuple(key)))
    # A final row never changes (a new count is a new row): the sum of the final ones is kept in
    # the cache, under the rows it adds up, and read whole from it by the next report.
    name = "reports:" + hashlib.sha256(repr((sorted(final), signed, online_key)).encode()).hexdigest()
    total, online = cache.get(name) or (None, None)
    if total is None:
        total, online = add_up([(pk, key) for pk, _at, key in final], signed, online_key)
        cache.set(name, (total, online), CACHE_SECONDS)
    more, more_online = add_up([(pk, key) for pk, _at, key in recent], signed, online_key)
    add(total, more)
    add(online, more_online)
    if period.last == today:
        for (_day, key), figures in count(midnight(today), now, config).items():
            for signed_key, sign in signed:
                if key == signed_key:
                    add(total, figures, sign)
            if key == online_key:
                add(online, figures.get("online", {}))
    total["online"] = online
    return total


def add_up(rows, signed, online_key):
    """(The signed sum of the figures of `rows`, (pk, slice) pairs; the sum of the hours online of
    those of the online slice.)"""
    signs = defaultdict(list)
    for key, sign in signed:
        signs[key].append(sign)
    slice_of = dict(rows)
    total, online = {}, {}
    # Always the same two statements, whatever the rows (0 is no row's id): the page's cost
    # does not depend on the data.
    whole = [0, *(pk for pk, key in rows if key in signs)]
    for pk, figures in ReportDay.objects.filter(pk__in=whole).values_list("pk", "figures"):
        for sign in signs[slice_of[pk]]:
            add(total, figures, sign)
        if slice_of[pk] == online_key:
            add(online, figures.get("online", {}))
    # The online slice when it is not one of the figures': only its hours online (it is often the
    # largest document, every department's).
    alone = [0, *(pk for pk, key in rows if key == online_key and key not in signs)]
    for hours in ReportDay.objects.filter(pk__in=alone).values_list("figures__online", flat=True):
        add(online, hours or {})
    return total, online


def in_slices(keys):
    condition = Q(pk__in=[])
    for d, o, label in keys:
        condition |= Q(department=d, operator=o, label=label)
    return condition


# --- The figures ---------------------------------------------------------------------------------


def percentile(histogram, fraction):
    """Nearest rank over {seconds: n}: the least value with at least `fraction` of them at or
    below it; None when there are none."""
    total = sum(n for n in histogram.values() if n > 0)
    if not total:
        return None
    rank, seen = max(1, math.ceil(round(fraction * total, 9))), 0
    for value in sorted(histogram, key=int):
        seen += max(histogram[value], 0)
        if seen >= rank:
            return int(value)
    return None


def seconds(value):
    return None if value is None else timedelta(seconds=value)


def durations(histograms):
    """{count, wall: {median, p90}, business: {median, p90}} (timedeltas or None)."""
    wall, business = histograms.get("wall", {}), histograms.get("business", {})
    return {"count": sum(wall.values()),
            **{name: {"median": seconds(percentile(h, 0.5)), "p90": seconds(percentile(h, 0.9))}
               for name, h in (("wall", wall), ("business", business))}}


def share(part, whole, digits=1):
    return round(100 * part / whole, digits) if whole else None


def survey(csat):
    scores = {int(score): n for score, n in csat.get("scores", {}).items()}
    answered = sum(scores.values())
    return {
        "asked": csat.get("asked", 0), "answered": answered, "rate": share(answered, csat.get("asked", 0)),
        "average": round(sum(score * n for score, n in scores.items()) / answered, 1) if answered else None,
        "distribution": [{"score": score, "count": scores.get(score, 0),
                          "percent": share(scores.get(score, 0), answered)} for score in range(1, 6)],
        "comments": csat.get("comments", 0),
    }


def waiting(histograms):
    """Conversations by first-response bucket (WAIT_BOUNDS), in wall-clock and business time."""
    buckets = [{"index": index, "wall": 0, "business": 0} for index in range(len(WAIT_BOUNDS) + 1)]
    for name in ("wall", "business"):
        for value, n in histograms.get(name, {}).items():
            index = next((i for i, bound in enumerate(WAIT_BOUNDS) if int(value) < bound), len(WAIT_BOUNDS))
            buckets[index][name] += n
    return buckets


def heat_map(received):
    """7 rows (Monday first) of 24 hours: {count, level 0-4 (a colour class, 4 the busiest)}."""
    top = max([*received.values(), 0])
    return {"top": top, "rows": [
        {"weekday": weekday, "cells": [
            {"hour": hour, "count": (n := received.get(str(weekday * 24 + hour), 0)),
             "level": math.ceil(4 * n / top) if n > 0 else 0} for hour in range(24)]}
        for weekday in range(7)]}


def staffing(received, online, period, now):
    """Per hour of the week: the average customers' messages and operators online in that hour
    over the period's days (today's hours up to now)."""
    hours = defaultdict(int)  # how many times each hour of the week happened in the period
    today = timezone.localdate(now)
    day = period.first
    while day <= period.last:
        for hour in range(timezone.localtime(now).hour + 1 if day == today else 24):
            hours[day.weekday() * 24 + hour] += 1
        day += timedelta(days=1)
    rows = []
    for slot in range(7 * 24):
        times = hours[slot]
        rows.append({"weekday": slot // 24, "hour": slot % 24,
                     "messages": round(received.get(str(slot), 0) / times, 1) if times else 0.0,
                     "online": round(online.get(str(slot), 0) / times, 1) if times else 0.0})
    return rows


def comments(scope, period):
    """The latest survey comments of conversations closed in the period (COMMENTS_SHOWN at most)."""
    return list(Session.objects.filter(session_filter(scope), closed_at__gte=midnight(period.first),
                                       closed_at__lt=midnight(period.last + timedelta(days=1)))
                .exclude(csat_comment="").select_related("contact").order_by("-closed_at", "-pk")[:COMMENTS_SHOWN])


def report(scope, period, now=None):
    """Every figure of the reports page for the scope and period."""
    now = now or timezone.now()
    raw = gather(scope, period, now)
    received = raw.get("received", {})
    return {
        "period": period, "started": raw.get("started", 0), "handled": raw.get("handled", 0),
        "closed": raw.get("closed", 0), "first_response": durations(raw.get("fr", {})),
        "resolution": durations(raw.get("res", {})), "csat": survey(raw.get("csat", {})),
        "waiting": waiting(raw.get("fr", {})), "heat_map": heat_map(received),
        "received": sum(received.values()), "staffing": staffing(received, raw["online"], period, now),
        "comments": comments(scope, period),
    }


def my_day(user, now=None):
    """An operator's own figures for the overview: conversations handled today and their median
    first response (wall-clock), and the survey of the last 30 days (the reports' "30 days")."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    waits, handled = {}, 0
    for waiting_since, responded in Session.objects.filter(
            assigned_to=user, first_response_at__gte=midnight(today)).values_list("waiting_since", "first_response_at"):
        handled += 1
        if waiting_since is not None and responded >= waiting_since:
            bump(waits, str(quantize((responded - waiting_since).total_seconds())))
    csat = Session.objects.filter(assigned_to=user, closed_at__gte=midnight(today - timedelta(days=29)),
                                  csat_score__isnull=False).aggregate(average=Avg("csat_score"), answered=Count("pk"))
    return {"handled": handled, "first_response": seconds(percentile(waits, 0.5)),
            "csat_average": round(csat["average"], 1) if csat["average"] is not None else None,
            "csat_answered": csat["answered"]}
