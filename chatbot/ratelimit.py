"""Rates shared by every process on every machine, kept in the database (one `RateLimit` row per
key, moved under a row lock), never in one process's memory.

The algorithm is GCRA (the "generic cell rate algorithm"): a rate of one event per `interval`
is a single timestamp, the time the booked events run until. An event is allowed while that time
is at most `burst - 1` intervals ahead of now, which allows short bursts and holds the average.

Keys are stored as their SHA-256 (`stored_key`): callers build them from usernames, addresses and
ids of any length, and no outside string should reach the table as it is.
"""

import hashlib
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from .models import RateLimit


def number_key(number):
    """The rate of a business number's messages (its throughput cap), shared by all workers."""
    return f"number:{number.phone_number_id}"


def booked_until(key):
    """The time rate `key` is booked until (None if never used), read without a lock."""
    return RateLimit.objects.filter(key=stored_key(key)).values_list("booked_until", flat=True).first()


def gcra(booked_until, now, interval, burst=1):
    """One event at `now`: returns (allowed, new booked_until, seconds to wait when refused)."""
    start = max(booked_until or now, now)
    ahead = (start - now).total_seconds() - (burst - 1) * interval
    if ahead > 0:
        return False, booked_until, ahead
    return True, start + timedelta(seconds=interval), 0.0


def stored_key(key):
    """The row's key for rate `key`: 64 hex characters, whatever the key's length or alphabet."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _locked(key):
    key = stored_key(key)
    try:
        return RateLimit.objects.select_for_update().get(key=key)
    except RateLimit.DoesNotExist:
        RateLimit.objects.bulk_create([RateLimit(key=key)], ignore_conflicts=True)  # a race creates it once
        return RateLimit.objects.select_for_update().get(key=key)


@transaction.atomic
def allow(key, *, interval, burst=1):
    """Take one event of rate `key`; returns 0 when allowed, else the seconds to wait."""
    row = _locked(key)
    allowed, row.booked_until, wait = gcra(row.booked_until, timezone.now(), interval, burst)
    if allowed:
        row.save(update_fields=["booked_until"])
    return wait


@transaction.atomic
def refund(key, *, interval):
    """Give back one event of rate `key` taken by `allow` (it turned out not to count)."""
    row = _locked(key)
    row.booked_until = max(row.booked_until - timedelta(seconds=interval), timezone.now())
    row.save(update_fields=["booked_until"])


def reserve(key, count, *, interval):
    """Book `count` events `interval` seconds apart; returns when the first may start (the i-th
    starts `i * interval` later). Every caller, in any process, gets slots of its own."""
    span, now = timedelta(seconds=count * interval), timezone.now()
    if connection.vendor == "postgresql":
        # One statement, one round trip: the UPDATE locks the row, and a concurrent one waits and
        # then books after it (PostgreSQL re-reads the row it waited for).
        table = connection.ops.quote_name(RateLimit._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET booked_until = GREATEST(booked_until, %s) + %s "  # noqa: S608
                "WHERE key = %s RETURNING booked_until",
                [now, span, stored_key(key)],
            )
            row = cursor.fetchone()
        if row:
            return row[0] - span
    with transaction.atomic():
        row = _locked(key)
        start = max(row.booked_until, now)
        row.booked_until = start + span
        row.save(update_fields=["booked_until"])
    return start


def delay(key, seconds):
    """Push rate `key` back by `seconds` (Meta said we went too fast)."""
    with transaction.atomic():
        row = _locked(key)
        row.booked_until = max(row.booked_until, timezone.now()) + timedelta(seconds=seconds)
        row.save(update_fields=["booked_until"])

