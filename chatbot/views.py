import logging
import time
from functools import wraps

from csp.constants import NONE
from csp.decorators import csp
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import FileResponse, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import api, inbound, media, openapi, parser, webhook
from . import health as health_checks
from .models import Message, Scope
from .permissions import operator_required, visible

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


# --- Integrators' API (design.md, "Send API", "Read API") ---


def api_view(scope):
    """Bearer-token auth, per-token rate limit and the token's `scope` (403 without it); an
    `api.ApiError` becomes its JSON answer."""

    def decorator(view):
        @csrf_exempt
        @never_cache
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                token = api.authenticate(request.headers.get("Authorization"), request.META.get("REMOTE_ADDR", ""))
                api.require_scope(token, scope)
                status, body = view(request, token, *args, **kwargs)
            except api.ApiError as error:
                response = JsonResponse(error.body(), status=error.status, json_dumps_params={"ensure_ascii": False})
                for name, value in error.headers.items():
                    response[name] = value
                return response
            return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})

        return wrapper

    return decorator


@require_http_methods(["POST"])
@api_view(Scope.SEND)
def send_message(request, token):
    try:
        body = request.body
    except RequestDataTooBig:
        raise api.ApiError(413, "too_large", _("The request body is too large.")) from None
    return api.send(token, body, request.headers.get("Idempotency-Key", ""))


@require_GET
@api_view(Scope.READ)
def message_detail(request, token, message_id):
    return 200, api.get_message(message_id)


@require_GET
@api_view(Scope.EXPORT)
def contact_detail(request, token, wa_id):
    return 200, api.get_contact(wa_id)


@require_http_methods(["POST"])
@api_view(Scope.SEND)
def upload_media(request, token):
    try:
        uploaded = request.FILES.get("file")
        number = api.sending_number(request.POST.get("phone_number_id"))
        return 200, {"id": media.upload(number, uploaded)}
    except RequestDataTooBig:
        raise api.ApiError(413, "too_large", _("The file is larger than the upload limit.")) from None
    except media.MediaRefused as refused:
        raise api.ApiError(refused.status, "invalid_media", refused.message, field="file") from None


@require_GET
@operator_required
@csp({"default-src": [NONE], "sandbox": [True]})
def media_file(request, message_id):
    """A stored media file, for logged-in operators only (customers' files are personal data).

    The customer chose its bytes, its name and its declared type: only an allow-listed type is
    shown inline, under our own Content-Type string; everything else downloads as octet-stream.
    The sandbox policy keeps even a file a browser renders from running script in our origin."""
    message = get_object_or_404(visible(Message.objects.all(), request.user, "session__"), pk=message_id,
                                media_status=Message.MediaStatus.READY)
    content_type, inline = media.served_type(message.media_mime_type)
    filename = media.download_name(message.media_filename or message.media_file.name.rsplit("/", 1)[-1],
                                   f"arquivo-{message.pk}")
    response = FileResponse(message.media_file.open("rb"), content_type=content_type, as_attachment=not inline,
                            filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
def api_schema(request):
    return JsonResponse(openapi.SCHEMA, json_dumps_params={"ensure_ascii": False})
