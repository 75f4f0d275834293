"""What the owner's command reports: the status document (configuration with secrets as set or
missing, database, counts, the health checks) and the self-test against Meta (token, number,
subscribed app, templates, webhook secret, verify token). chatbot/management/commands/
whatsapp_chatbot.py prints them."""

from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

import hoztech

from . import campaigns, checks, health, message_templates, outbox
from .models import ApiToken, Contact, EventDelivery, Message, PhoneNumber, Session, Template, WebhookEndpoint
from .whatsapp import graph

# Shown as set/missing only: their values never reach a terminal, a log or a support ticket.
SECRET_SETTINGS = ["SECRET_KEY", "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_APP_SECRET", "WEBHOOK_VERIFY_TOKEN", "REDIS_URL"]


PLAIN_SETTINGS = [
    "DEBUG", "ALLOWED_HOSTS", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_BUSINESS_ACCOUNT_ID", "WHATSAPP_API_VERSION",
    "WHATSAPP_GRAPH_URL", "WHATSAPP_MESSAGES_PER_SECOND", "MESSAGES_PER_MINUTE", "STORE_MESSAGE_UP_TO",
    "TIME_ZONE", "LANGUAGE_CODE",
]


def configuration():
    values = {}
    for name in SECRET_SETTINGS:
        values[name] = "set" if getattr(settings, name, "") else "missing"
    for name in PLAIN_SETTINGS:
        value = getattr(settings, name)
        values[name] = ",".join(value) if isinstance(value, list) else (value if value != "" else "missing")
    return values


def database_description():
    config = connection.settings_dict
    name = str(config.get("NAME") or "")
    if connection.vendor != "sqlite" and config.get("HOST"):
        name = f"{config['HOST']}/{name}"
    return {"engine": connection.vendor, "name": name}


def counts():
    now = timezone.now()
    day = now - timedelta(hours=24)
    open_sessions = Session.objects.exclude(status=Session.Status.CLOSED)
    return {
        "contacts": Contact.objects.count(),
        "sessions_open": open_sessions.count(),
        "sessions_waiting": open_sessions.filter(status=Session.Status.WAITING).count(),
        "messages": Message.objects.count(),
        "messages_24h": Message.objects.filter(timestamp__gte=day, timestamp__lte=now).count(),  # not scheduled ones
        "failed_24h": Message.objects.filter(status=Message.Status.FAILED, failed_at__gte=day).count(),
        "templates": Template.objects.exclude(status=message_templates.GONE).count(),
        "api_tokens": ApiToken.objects.filter(revoked_at__isnull=True).count(),
        **event_webhooks(day),
    }


def event_webhooks(day):
    endpoints = WebhookEndpoint.objects.listed()
    return {
        "event_endpoints": endpoints.filter(active=True).count(),
        "event_endpoints_disabled": endpoints.filter(active=False, disabled_reason=WebhookEndpoint.DISABLED_FAILING)
        .count(),
        "event_deliveries_failed_24h": EventDelivery.objects.filter(
            status=EventDelivery.Status.FAILED, last_attempt_at__gte=day).count(),
    }


def status_document():
    """The health report (fresh, not cached) with the configuration and the counts."""
    report = health.report(cached=False)
    checks = report["checks"]
    down = report["status"] == "down"
    try:
        figures = None if down else counts()
    except DatabaseError:
        figures, down = None, True
    return {
        "status": "down" if down else report["status"],
        "version": hoztech.__version__,
        "time": report["time"],
        "mode": checks["whatsapp"]["mode"],
        "configuration": configuration(),
        "database": {**checks["database"], **database_description(), **({"ok": False} if down else {})},
        "counts": figures,
        "queue": checks["queue"],
        "worker": checks["worker"],
        "webhook": checks["webhook"],
        "whatsapp": checks["whatsapp"],
    }


def self_test():
    """(ok, sentence) per check: the live checks against Meta, then the local ones."""
    if not settings.WHATSAPP_ACCESS_TOKEN:
        yield False, _("Sandbox mode: WHATSAPP_ACCESS_TOKEN is empty, so nothing was checked against Meta. "
                       "Set it (with WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_BUSINESS_ACCOUNT_ID) in .env to go live.")
    else:
        yield from meta_checks()
    if settings.WHATSAPP_APP_SECRET:
        yield True, _("Webhook secret: WHATSAPP_APP_SECRET is set, so signed webhooks are accepted.")
    else:
        yield False, _("Webhook secret: WHATSAPP_APP_SECRET is missing, so every webhook is refused. "
                       "Copy the app secret from App settings > Basic.")
    if checks.verify_token_is_public():
        yield False, _("Verify token: WEBHOOK_VERIFY_TOKEN is the public default. Set a long random value in .env "
                       "and the same in Meta's App Dashboard > WhatsApp > Configuration.")


def meta_checks():
    pnid, waba_id = settings.WHATSAPP_PHONE_NUMBER_ID, settings.WHATSAPP_BUSINESS_ACCOUNT_ID
    if not pnid:
        yield False, _("Number: WHATSAPP_PHONE_NUMBER_ID is missing. Copy the Phone number ID from WhatsApp > "
                       "API Setup.")
    else:
        try:
            fields = graph.phone_number(pnid)
        except graph.GraphError as error:
            if error.token_invalid:
                # As a refused send does: health shows "invalid" and sending pauses until the token works.
                PhoneNumber.objects.filter(phone_number_id=pnid).update(
                    token_invalid_at=timezone.now(), token_fingerprint=outbox.token_fingerprint())
            yield False, graph_failure(error)
            if error.token_invalid or error.code is None:
                return  # a refused token or an unreachable Meta fails every other call the same way
        else:
            yield True, _("Access token: accepted by Meta.")
            yield number_check(pnid, fields)
    if not waba_id:
        yield False, _("WhatsApp account: WHATSAPP_BUSINESS_ACCOUNT_ID is missing. Copy it from WhatsApp > "
                       "API Setup.")
        return
    yield subscription_check(waba_id)
    yield templates_check(waba_id)


def graph_failure(error):
    if error.token_invalid:
        return _("Access token: Meta refused it (%(code)s). %(what)s") % {"code": error.code,
                                                                          "what": error.explanation}
    if error.http_status is None:
        return _("Meta could not be reached at %(url)s: %(reason)s. Check the network or WHATSAPP_GRAPH_URL.") % {
            "url": settings.WHATSAPP_GRAPH_URL, "reason": error.message}
    if error.code is None:
        return _("%(url)s answered %(reason)s, not like Meta's Graph API. Check WHATSAPP_GRAPH_URL and "
                 "WHATSAPP_API_VERSION.") % {"url": settings.WHATSAPP_GRAPH_URL, "reason": error.message}
    return _("Number: Meta refused the request (%(code)s): %(reason)s Check WHATSAPP_PHONE_NUMBER_ID and the "
             "token's permissions.") % {"code": error.code, "reason": error.message}


def number_check(pnid, fields):
    """Record what Meta says about the number (health shows it) and judge it."""
    number, _created = PhoneNumber.objects.get_or_create(phone_number_id=pnid)
    number.display_phone_number = str(fields.get("display_phone_number") or number.display_phone_number)
    number.verified_name = str(fields.get("verified_name") or number.verified_name)
    number.quality_rating = str(fields.get("quality_rating") or "")
    number.messaging_limit = str(fields.get("whatsapp_business_manager_messaging_limit") or number.messaging_limit)
    number.throughput_level = str((fields.get("throughput") or {}).get("level") or "")
    number.waba_id = number.waba_id or settings.WHATSAPP_BUSINESS_ACCOUNT_ID
    number.checked_at = timezone.now()
    # The token worked just now: health reports it "ok", and a pause after a refusal ends.
    number.token_fingerprint, number.token_invalid_at = outbox.token_fingerprint(), None
    number.save()
    campaigns.quality_changed(number, rating=number.quality_rating)
    values = {"number": number.display_phone_number or pnid, "name": number.verified_name or "?",
              "quality": number.quality_rating or "?", "limit": number.messaging_limit or "?",
              "throughput": number.throughput_level or "?", "status": fields.get("status") or "?"}
    line = _("Number %(number)s (%(name)s): status %(status)s, quality %(quality)s, messaging limit %(limit)s, "
             "throughput %(throughput)s.") % values
    if fields.get("status") not in (None, "CONNECTED"):
        return False, line + " " + _("Meta does not show it connected: see WhatsApp Manager > Phone numbers.")
    if number.quality_rating == "RED":
        return False, line + " " + _("Quality is low: send fewer marketing messages, and only to customers who "
                                     "asked for them.")
    return True, line


def subscription_check(waba_id):
    try:
        apps = graph.subscribed_apps(waba_id)
    except graph.GraphError as error:
        return False, _("Subscribed apps: Meta refused the request (%(reason)s). Check WHATSAPP_BUSINESS_ACCOUNT_ID "
                        "and the token's whatsapp_business_management permission.") % {"reason": error.message}
    names = [str((app.get("whatsapp_business_api_data") or app).get("name") or "?") for app in apps]
    if not names:
        return False, _("Subscribed apps: no app is subscribed to the WhatsApp account, so Meta sends no webhooks. "
                        "Subscribe it: POST /%(waba)s/subscribed_apps with the token.") % {"waba": waba_id}
    return True, _("Subscribed apps: %(names)s.") % {"names": ", ".join(names)}


def templates_check(waba_id):
    try:
        listed = list(graph.list_templates(waba_id))
    except graph.GraphError as error:
        return False, _("Templates: Meta refused the list (%(reason)s).") % {"reason": error.message}
    at_meta = {(str(t.get("name")), str(t.get("language"))): str(t.get("status") or "") for t in listed}
    ours = Template.objects.filter(Q(waba_id=waba_id) | Q(waba_id="")).exclude(status=message_templates.GONE)
    stored = {(t.name, t.language): t.status for t in ours}
    if at_meta != stored:
        return False, _("Templates: %(meta)d at Meta, %(stored)d stored here, not in step. Run: python manage.py "
                        "whatsapp_chatbot sync-templates") % {"meta": len(at_meta), "stored": len(stored)}
    approved = sum(1 for value in at_meta.values() if value == "APPROVED")
    return True, _("Templates: %(count)d in step with Meta (%(approved)d approved).") % {
        "count": len(at_meta), "approved": approved}
