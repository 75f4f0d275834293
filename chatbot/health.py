"""The health report of the contract (design.md, "Health"): no secrets, no personal data, and no
call to Meta, so load balancers may poll it as often as they like.

The WhatsApp token state comes from the last real call (a send, or `whatsapp_chatbot check`), and
the numbers' quality and messaging tier from Meta's webhooks or the last check: never a call per
request. The report is cached a few seconds in Django's cache (shared through Redis when
REDIS_URL is set), so a dozen probes a second cost one set of queries.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.db import DatabaseError, connection
from django.db.models import Count, Max, Min
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

import hoztech

from . import outbox
from .models import EventDelivery, Message, PhoneNumber, WebhookEvent, WorkerBeat

logger = logging.getLogger(__name__)

# Work waiting longer than this means the workers are not keeping up (or none runs).
QUEUE_MAX_AGE = timedelta(seconds=60)
# Workers beat every 5 s (db_worker's inbox thread); a minute of silence means none is running.
WORKER_MAX_SILENCE = timedelta(seconds=60)

# Seconds a report is reused; short enough that an outage shows within one probe interval.
CACHE_SECONDS = 5
CACHE_KEY = "chatbot:health"

REQUIRED_LIVE_SETTINGS = [
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_BUSINESS_ACCOUNT_ID",
    "WHATSAPP_APP_SECRET",
]


def _iso(moment):
    return moment.isoformat() if moment else None


def check_database():
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return {"ok": False, "latency_ms": None}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def check_queue(now):
    """Work waiting for a worker: ready tasks, webhook events not yet applied, and events due to
    other systems' endpoints (a retry not yet due is not waiting for a worker)."""
    tasks = DBTaskResult.objects.ready().aggregate(pending=Count("pk"), oldest=Min("enqueued_at"))
    events = WebhookEvent.objects.filter(result=WebhookEvent.Result.PENDING).aggregate(
        pending=Count("pk"), oldest=Min("received_at")
    )
    deliveries = EventDelivery.objects.filter(status=EventDelivery.Status.PENDING, next_attempt_at__lte=now,
                                              endpoint__active=True).aggregate(
        pending=Count("pk"), oldest=Min("next_attempt_at"))
    queues = (tasks, events, deliveries)
    oldest = min((queue["oldest"] for queue in queues if queue["oldest"]), default=None)
    oldest_s = round((now - oldest).total_seconds(), 1) if oldest else 0
    return {
        "ok": oldest_s < QUEUE_MAX_AGE.total_seconds(),
        "pending": sum(queue["pending"] for queue in queues),
        "oldest_pending_s": oldest_s,
    }


def check_worker(now):
    last_seen = WorkerBeat.objects.aggregate(last=Max("last_seen"))["last"]
    return {"ok": last_seen is not None and now - last_seen < WORKER_MAX_SILENCE, "last_seen": _iso(last_seen)}


def token_state():
    """ok | invalid | unknown, from the last real call to Meta with the current token."""
    if not settings.WHATSAPP_ACCESS_TOKEN:
        return "unknown"
    if outbox.token_refused():
        return "invalid"
    # `whatsapp_chatbot check` records the fingerprint of a token Meta accepted (token_invalid_at empty).
    if PhoneNumber.objects.filter(token_fingerprint=outbox.token_fingerprint(), token_invalid_at=None).exists():
        return "ok"
    # Else the last message sent: accepted by Meta (not a sandbox wamid) means the token worked.
    # Newest first on the time index, so this reads a handful of rows, not the table.
    last = (Message.objects.filter(direction=Message.Direction.OUT, sent_at__isnull=False)
            .order_by("-timestamp").values_list("wamid", flat=True).first())
    return "ok" if last and not last.startswith("sandbox.") else "unknown"


def numbers():
    """Quality rating and messaging tier of each business number, as Meta last told us."""
    return [
        {"phone_number_id": number.phone_number_id, "quality_rating": number.quality_rating or None,
         "messaging_limit": number.messaging_limit or None, "throughput": number.throughput_level or None,
         "checked_at": _iso(number.checked_at)}
        for number in PhoneNumber.objects.exclude(phone_number_id="sandbox").order_by("pk")
    ]


def check_whatsapp(database_ok=True):
    missing = [name for name in REQUIRED_LIVE_SETTINGS if not getattr(settings, name)]
    mode = "live" if settings.WHATSAPP_ACCESS_TOKEN else "sandbox"
    token = token_state() if database_ok else "unknown"
    # Without the app secret every webhook is refused (401/403), so nothing arrives from Meta.
    ok = bool(settings.WHATSAPP_APP_SECRET) and token != "invalid"
    if mode == "live":
        ok = ok and not missing
    return {"ok": ok, "mode": mode, "missing": missing, "token": token,
            "numbers": numbers() if database_ok else []}


def webhook_figures(now):
    """The last webhook's arrival time and how many failed to apply in 24 h (health, dashboard)."""
    return {
        "last": WebhookEvent.objects.aggregate(last=Max("received_at"))["last"],
        "failed": WebhookEvent.objects.filter(result=WebhookEvent.Result.FAILED,
                                              received_at__gte=now - timedelta(hours=24)).count(),
    }


def check_webhook(now):
    figures = webhook_figures(now)
    return {"last_received_at": _iso(figures["last"]), "failed_last_24h": figures["failed"]}


def report(cached=True):
    """The health document; `status` is ok, degraded or down.

    The database is asked on every call (one `SELECT 1`), so an outage shows at once; the other
    checks, which count rows, come from the cache when `cached` and under CACHE_SECONDS old."""
    now = timezone.now()
    database = check_database()
    others = None
    if database["ok"]:
        others = cached_checks() if cached else None
        if others is None:
            try:
                others = other_checks(now)
            except DatabaseError:
                database = {"ok": False, "latency_ms": None}
            else:
                if cached:
                    cache_checks(others)
    return document(now, database, others)


def cached_checks():
    try:
        return cache.get(CACHE_KEY)
    except Exception:  # noqa: BLE001 - a cache outage (Redis down) must not take health down with it
        return None


def cache_checks(checks):
    try:
        cache.set(CACHE_KEY, checks, CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        logger.warning("health report not cached: the cache is unreachable")


def forget(**kwargs):
    """Drop the cached report: configuration changed (tests, override_settings), so it is stale."""
    try:
        cache.delete(CACHE_KEY)
    except Exception:  # noqa: BLE001
        logger.warning("health report not forgotten: the cache is unreachable")


setting_changed.connect(forget, dispatch_uid="chatbot.health.forget")


def other_checks(now):
    """Every check but the database's (which must have answered)."""
    return {"whatsapp": check_whatsapp(), "queue": check_queue(now), "worker": check_worker(now),
            "webhook": check_webhook(now)}


def document(now, database, others):
    if not database["ok"]:
        others = {
            "whatsapp": check_whatsapp(database_ok=False),
            "queue": {"ok": False, "pending": None, "oldest_pending_s": None},
            "worker": {"ok": False, "last_seen": None},
            "webhook": {"last_received_at": None, "failed_last_24h": None},
        }
        status = "down"
    elif all(others[name]["ok"] for name in ("queue", "worker", "whatsapp")):
        status = "ok"
    else:
        status = "degraded"
    checks = {"database": database, **others}
    return {
        "status": status,
        "version": hoztech.__version__,
        "time": now.isoformat(),
        "checks": {name: checks[name] for name in ("database", "queue", "worker", "whatsapp", "webhook")},
    }
