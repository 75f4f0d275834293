"""The integrators' HTTP API (design.md, "Send API", "Read API", "Contact export", "Campaigns API"):
the views, bearer tokens with their scopes and rate limit, idempotency, and the one place where
refusals of the services (`sending.SendRefused`, `media.MediaRefused`, `CampaignRefused`,
`CampaignConflict`) become HTTP statuses and the contract's error JSON. The campaigns' views are
chatbot/api_campaigns.py; the OpenAPI description is chatbot/openapi/."""

import hashlib
import json
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpResponseBase, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from . import campaigns, contacts, documents, media, openapi, ratelimit, sending
from .campaign_content import CampaignRefused
from .models import IDEMPOTENCY_TTL, ApiToken, IdempotencyKey, Message, Scope


class ApiError(Exception):
    """An answer other than success: HTTP status, a stable `code` and a sentence for people."""

    def __init__(self, status, code, message, field="", headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, str(message), field
        self.headers = headers or {}

    def body(self):
        error = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


# The services' refusals, by code: what the contract answers for each.
SEND_REFUSED = {"invalid_request": 400, "contact_blocked": 422, "outside_customer_service_window": 422,
                "opted_out": 422}
MEDIA_REFUSED = {"missing_file": 400, "type_not_allowed": 400, "too_large": 413, "meta_refused": 502}


def api_view(scope, method):
    """The HTTP `method` (405 otherwise), bearer-token auth, per-token rate limit and the token's
    `scope` (403 without it); an `ApiError` or a service's refusal becomes its JSON answer. The view
    returns (status, JSON body), or (status, a response) for a file."""

    def decorator(view):
        @csrf_exempt
        @never_cache
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                if request.method != method:
                    raise ApiError(405, "method_not_allowed", _("Use %(method)s here.") % {"method": method},
                                   headers={"Allow": method})
                token = authenticate(request.headers.get("Authorization"), request.META.get("REMOTE_ADDR", ""))
                require_scope(token, scope)
                status, body = view(request, token, *args, **kwargs)
            except sending.SendRefused as refused:
                return answer_error(ApiError(SEND_REFUSED[refused.code], refused.code, refused.message,
                                             field=refused.field))
            except media.MediaRefused as refused:
                return answer_error(ApiError(MEDIA_REFUSED[refused.code], "invalid_media", refused.message,
                                             field="file"))
            except CampaignRefused as refused:
                return answer_error(ApiError(400, "invalid_request", refused.message, field=refused.field))
            except campaigns.CampaignConflict as conflict:
                return answer_error(ApiError(409, "conflict", str(conflict)))
            except ApiError as error:
                return answer_error(error)
            if isinstance(body, HttpResponseBase):  # a file (the campaign's CSV)
                return body
            return JsonResponse(body, status=status, safe=False, json_dumps_params={"ensure_ascii": False})

        return wrapper

    return decorator


def answer_error(error):
    response = JsonResponse(error.body(), status=error.status, json_dumps_params={"ensure_ascii": False})
    for name, value in error.headers.items():
        response[name] = value
    return response


# --- Views ---------------------------------------------------------------------------------------


@api_view(Scope.SEND, "POST")
def send_message(request, token):
    try:
        body = request.body
    except RequestDataTooBig:
        raise ApiError(413, "too_large", _("The request body is too large.")) from None
    return send(token, body, request.headers.get("Idempotency-Key", ""))


@api_view(Scope.READ, "GET")
def message_detail(request, token, message_id):
    message = Message.objects.select_related("contact", "phone_number").filter(pk=message_id).first()
    if message is None:
        raise ApiError(404, "not_found", _("No message with this id."))
    return 200, documents.message_object(message)


@api_view(Scope.EXPORT, "GET")
def contact_detail(request, token, wa_id):
    contact = contacts.find(wa_id)
    if contact is None:
        raise ApiError(404, "not_found", _("No contact with this WhatsApp ID."))
    return 200, documents.contact_export(contact)


@api_view(Scope.SEND, "POST")
def upload_media(request, token):
    try:
        uploaded = request.FILES.get("file")
        number = sending.sending_number(request.POST.get("phone_number_id"))
    except RequestDataTooBig:
        raise ApiError(413, "too_large", _("The file is larger than the upload limit.")) from None
    return 200, {"id": media.upload(number, uploaded)}


@require_GET
def schema(request):
    return JsonResponse(openapi.SCHEMA, json_dumps_params={"ensure_ascii": False})


# --- Tokens ---------------------------------------------------------------------------------------


# Wrong tokens from one address: a burst of typos, then one guess every few seconds.
FAILURES_INTERVAL, FAILURES_BURST = 6.0, 10


def too_many(wait, message):
    seconds = max(1, round(wait + 0.5))
    return ApiError(429, "rate_limited", message % {"seconds": seconds}, headers={"Retry-After": str(seconds)})


def authenticate(header, address=""):
    """The API token of an `Authorization: Bearer …` header, rate-limited per token.

    Wrong tokens are answered 429 instead of 401 after a burst from one address. A valid token is
    never refused for others' mistakes: behind a proxy every client shares one address, and a
    stranger's typos must not lock the integrators out (the tokens' 256 random bits, not this
    limit, are what makes guessing hopeless)."""
    scheme, _space, plaintext = (header or "").partition(" ")
    token = ApiToken.objects.authenticate(plaintext.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        wait = ratelimit.allow(f"api-auth:{address}", interval=FAILURES_INTERVAL, burst=FAILURES_BURST)
        if wait:
            raise too_many(wait, _("Too many wrong API tokens from this address; try again in %(seconds)d s."))
        raise ApiError(401, "unauthorized", _("Missing or invalid API token (Authorization: Bearer <token>)."),
                       headers={"WWW-Authenticate": 'Bearer realm="chatbot"'})
    interval = 60 / settings.API_REQUESTS_PER_MINUTE
    wait = ratelimit.allow(f"token:{token.pk}", interval=interval, burst=max(1, settings.API_REQUESTS_PER_MINUTE // 10))
    if wait:
        raise too_many(wait, _("Too many requests for this token; try again in %(seconds)d s."))
    if token.last_used_at is None or timezone.now() - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


def require_scope(token, scope):
    if not token.allows(scope):
        raise ApiError(403, "forbidden_scope", _("This token lacks the scope \"%(scope)s\" (%(action)s); create one "
                                                 "with --scope %(scope)s.") % {"action": Scope(scope).label,
                                                                                "scope": scope})


# --- Send -----------------------------------------------------------------------------------------


IDEMPOTENCY_KEY_MAX = IdempotencyKey._meta.get_field("key").max_length


def send(token, raw_body, idempotency_key=""):
    """Check and queue one message; returns (HTTP status, JSON body)."""
    return once(token, raw_body, idempotency_key, 202, lambda: queue(token, parse(raw_body)))


def once(token, raw_body, idempotency_key, status, make):
    """(status, make()); with an Idempotency-Key, a repeat within 24 h with the same body gets the
    first answer and `make` is not called again (a message queued, a campaign created once)."""
    if not idempotency_key:
        return status, make()
    if len(idempotency_key) > IDEMPOTENCY_KEY_MAX or not (idempotency_key.isascii() and idempotency_key.isprintable()):
        raise ApiError(400, "invalid_request", _("The Idempotency-Key header must be 1 to %(max)d printable ASCII "
                                                 "characters.") % {"max": IDEMPOTENCY_KEY_MAX},
                       field="Idempotency-Key")
    request_hash = hashlib.sha256(raw_body).hexdigest()
    previous = IdempotencyKey.objects.filter(
        token=token, key=idempotency_key, created_at__gte=timezone.now() - IDEMPOTENCY_TTL
    ).first()
    if previous:
        if previous.request_hash != request_hash:
            raise ApiError(409, "idempotency_key_reused",
                           _("This Idempotency-Key was already used with a different body."))
        return previous.status_code, previous.response
    IdempotencyKey.objects.filter(token=token, key=idempotency_key).delete()  # expired
    try:
        with transaction.atomic():
            answer = make()
            IdempotencyKey.objects.create(
                token=token, key=idempotency_key, request_hash=request_hash, status_code=status, response=answer
            )
    except IntegrityError:
        # The same key raced in on another connection: its answer is the one given.
        previous = IdempotencyKey.objects.get(token=token, key=idempotency_key)
        return previous.status_code, previous.response
    return status, answer


def queue(token, data):
    message = sending.check(data)
    row = sending.submit(message, phone_number_id=data.get("phone_number_id"), source=Message.Source.API,
                         api_token=token)
    return {"id": row.pk, "status": row.status, "to": message["to"], "type": row.type}


# Meta's deepest message object (a template's currency parameter) is 6 levels deep.
MAX_DEPTH = 20


def parse(raw_body):
    too_deep = ApiError(400, "invalid_request", _("The JSON is nested more than %(max)d levels deep; no message "
                                                  "object is.") % {"max": MAX_DEPTH})
    try:
        data = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_request", _("The body is not valid JSON.")) from None
    except RecursionError:
        raise too_deep from None
    if depth(data) > MAX_DEPTH:
        raise too_deep
    return data


def depth(value):
    """How deeply lists and objects nest in a parsed JSON value (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest
