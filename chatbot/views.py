"""The endpoints machines call without a login: Meta's webhook (design.md, "Webhook") and the
health check. The integrators' API is chatbot/api.py, the operators' pages chatbot/dashboard/."""

import logging
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import health as health_checks
from . import inbound
from .whatsapp import parser, webhook

logger = logging.getLogger("chatbot.webhook")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request):
    if request.method == "GET":
        challenge = webhook.verify_handshake(request.GET)
        if challenge is None:
            return HttpResponse("Forbidden", status=403, content_type="text/plain")
        return HttpResponse(challenge, content_type="text/plain")
    return receive_webhook(request)


def receive_webhook(request):
    started = time.perf_counter()
    if declared_length(request) > settings.WEBHOOK_MAX_BODY:
        return refuse(413, "body over 3 MB")
    header = request.headers.get("X-Hub-Signature-256")
    if header is None:
        return refuse(401, "missing X-Hub-Signature-256")
    try:
        body = request.body
    except RequestDataTooBig:
        return refuse(413, "body over 3 MB")
    if not webhook.signature_valid(body, header):
        return refuse(403, "bad signature" if settings.WHATSAPP_APP_SECRET else "WHATSAPP_APP_SECRET is not set")
    document = webhook.decode(body)
    if document is None:
        return refuse(400, "body is not a JSON object")
    try:
        event_id = inbound.store(body)
    except DatabaseError:
        # Nothing was committed: a non-200 makes Meta deliver it again later.
        logger.exception("webhook 503: database unavailable")
        return HttpResponse("Service Unavailable", status=503, content_type="text/plain")
    counts = " ".join(f"{kind}={number}" for kind, number in sorted(parser.count(document).items()))
    logger.info("webhook 200 event=%s stored %s in %.1f ms", event_id, counts, (time.perf_counter() - started) * 1000)
    return HttpResponse("OK", content_type="text/plain")


def declared_length(request):
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def refuse(status, reason):
    logger.warning("webhook %s: %s", status, reason)
    return HttpResponse(reason, status=status, content_type="text/plain")


@require_GET
@cache_control(max_age=5)  # load balancers and monitors may poll hard; the report is cached as long
def health(request):
    report = health_checks.report()
    return JsonResponse(report, status=503 if report["status"] == "down" else 200)
