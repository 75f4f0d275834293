"""The health report of the contract (design.md, "Health"): no secrets, no personal data, and no
call to Meta, so load balancers may poll it as often as they like."""

import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Max, Min
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

import hoztech

from .models import WebhookEvent

# A task waiting longer than this means no worker is keeping up (or none runs).
QUEUE_MAX_AGE = timedelta(seconds=60)
WORKER_MAX_SILENCE = timedelta(seconds=60)

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
    ready = DBTaskResult.objects.ready()
    stats = ready.aggregate(oldest=Min("enqueued_at"))
    pending = ready.count()
    oldest_s = round((now - stats["oldest"]).total_seconds(), 1) if stats["oldest"] else 0
    return {"ok": oldest_s < QUEUE_MAX_AGE.total_seconds(), "pending": pending, "oldest_pending_s": oldest_s}


def check_worker(now, queue):
    last_seen = DBTaskResult.objects.aggregate(last=Max("started_at"))["last"]
    recent = last_seen is not None and now - last_seen < WORKER_MAX_SILENCE
    # An idle queue says nothing against the worker; a waiting task it has not taken does.
    return {"ok": recent or queue["pending"] == 0, "last_seen": _iso(last_seen)}


def check_whatsapp():
    missing = [name for name in REQUIRED_LIVE_SETTINGS if not getattr(settings, name)]
    mode = "live" if settings.WHATSAPP_ACCESS_TOKEN else "sandbox"
    token = "unknown"
    # Without the app secret every webhook is refused (401/403), so nothing arrives from Meta.
    ok = bool(settings.WHATSAPP_APP_SECRET) and token != "invalid"
    if mode == "live":
        ok = ok and not missing
    return {"ok": ok, "mode": mode, "missing": missing, "token": token}


def check_webhook(now):
    last = WebhookEvent.objects.aggregate(last=Max("received_at"))["last"]
    failed = WebhookEvent.objects.filter(
        result=WebhookEvent.Result.FAILED, received_at__gte=now - timedelta(hours=24)
    ).count()
    return {"last_received_at": _iso(last), "failed_last_24h": failed}


def report():
    """Return the health document; `status` is ok, degraded or down (database unreachable)."""
    now = timezone.now()
    checks = {"database": check_database(), "whatsapp": check_whatsapp()}
    if checks["database"]["ok"]:
        try:
            checks["queue"] = check_queue(now)
            checks["worker"] = check_worker(now, checks["queue"])
            checks["webhook"] = check_webhook(now)
        except DatabaseError:
            checks["database"] = {"ok": False, "latency_ms": None}
    if not checks["database"]["ok"]:
        checks["queue"] = {"ok": False, "pending": None, "oldest_pending_s": None}
        checks["worker"] = {"ok": False, "last_seen": None}
        checks["webhook"] = {"last_received_at": None, "failed_last_24h": None}
        status = "down"
    elif all(checks[name]["ok"] for name in ("queue", "worker", "whatsapp")):
        status = "ok"
    else:
        status = "degraded"
    return {
        "status": status,
        "version": hoztech.__version__,
        "time": now.isoformat(),
        "checks": {name: checks[name] for name in ("database", "queue", "worker", "whatsapp", "webhook")},
    }
