"""The integrators' HTTP API (design.md, "Send API", "Read API", "Contact export"): bearer
tokens, the rules checked before a message is queued, idempotency, and the JSON we answer with.
The views in `views.py` only translate HTTP to these functions and back."""

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import outbound, ratelimit, validation
from .models import ApiToken, Contact, IdempotencyKey, Message, PhoneNumber, Scope, Template

IDEMPOTENCY_TTL = timedelta(hours=24)


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
        raise ApiError(403, "forbidden_scope", _("This token may not %(action)s (scope \"%(scope)s\"); create one "
                                                 "with --scope %(scope)s.") % {"action": Scope(scope).label,
                                                                                "scope": scope})


# --- Send ------------------------------------------------------------------------------------


IDEMPOTENCY_KEY_MAX = IdempotencyKey._meta.get_field("key").max_length


def send(token, raw_body, idempotency_key=""):
    """Check and queue one message; returns (HTTP status, JSON body)."""
    if not idempotency_key:
        return 202, queue_message(token, parse(raw_body))
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
            answer = queue_message(token, parse(raw_body))
            IdempotencyKey.objects.create(
                token=token, key=idempotency_key, request_hash=request_hash, status_code=202, response=answer
            )
    except IntegrityError:
        # The same key raced in on another connection: its message is the one queued.
        previous = IdempotencyKey.objects.get(token=token, key=idempotency_key)
        return previous.status_code, previous.response
    return 202, answer


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


def queue_message(token, data):
    try:
        message = validation.clean_message(data)
    except validation.InvalidMessage as error:
        raise ApiError(400, "invalid_request", error.message, field=error.field) from None
    if "biz_opaque_callback_data" in message:
        raise ApiError(400, "invalid_request", _("biz_opaque_callback_data is reserved: the service tracks "
                                                 "messages with it."), field="biz_opaque_callback_data")
    number = sending_number(data.get("phone_number_id"))
    with transaction.atomic():
        contact = contact_for(message["to"])
        check_rules(message, contact)
        row = outbound.queue(phone_number=number, contact=contact, message=message,
                             source=Message.Source.API, api_token=token)
    return {"id": row.pk, "status": row.status, "to": message["to"], "type": row.type}


def sending_number(phone_number_id):
    if not phone_number_id:
        return PhoneNumber.objects.default()
    number = PhoneNumber.objects.filter(phone_number_id=phone_number_id).first()
    if number is None:
        raise ApiError(400, "invalid_request", _("Unknown business number %(id)s.") % {"id": phone_number_id},
                       field="phone_number_id")
    return number


def phone_variants(number):
    """A Brazilian mobile number with and without its ninth digit (55 + area code + 9 + 8 digits):
    Meta knows each user under one of them, integrators write either."""
    if number.startswith("55") and len(number) == 13 and number[4] == "9":
        return [number, number[:4] + number[5:]]
    if number.startswith("55") and len(number) == 12 and number[4] in "6789":
        return [number, number[:4] + "9" + number[4:]]
    return [number]


def contact_for(to):
    """The contact `to` names (phone number in either Brazilian form, or BSUID), created if new."""
    if not to.isdigit():
        contact, _created = Contact.objects.get_or_create(user_id=to)
        return contact
    variants = phone_variants(to)
    found = {contact.wa_id: contact for contact in Contact.objects.filter(wa_id__in=variants)}
    for variant in variants:
        if variant in found:
            return found[variant]
    try:
        with transaction.atomic():
            return Contact.objects.create(wa_id=to)
    except IntegrityError:
        return Contact.objects.get(wa_id=to)


def check_rules(message, contact):
    """The rules Meta would enforce after we queued (422): 24-hour window, opt-out, templates."""
    if contact.blocked:
        raise ApiError(422, "contact_blocked", _("This contact is blocked."))
    if message["type"] != "template":
        if not contact.window_open():
            raise ApiError(422, "outside_customer_service_window", _(
                "More than 24 hours since the customer's last message (or they never wrote): only a "
                "template message can be sent now."
            ))
        return
    template = Template.objects.filter(
        name=message["template"]["name"], language=message["template"]["language"]["code"]
    ).first()
    if template is None:
        return
    if template.category.upper() == "MARKETING" and contact.opted_out:
        raise ApiError(422, "opted_out", _("The customer opted out of marketing messages."))
    try:
        validation.check_template_parameters(message, template.components)
    except validation.InvalidMessage as error:
        raise ApiError(400, "invalid_request", error.message, field=error.field) from None


# --- Read ------------------------------------------------------------------------------------


def _iso(moment):
    return moment.isoformat() if moment else None


def message_object(message):
    """The contract's message object for one row (design.md, "Read API")."""
    error = None
    if message.status == Message.Status.FAILED or message.error_code is not None:
        error = {"code": message.error_code, "title": message.error_title, "details": message.error_details,
                 "explanation": outbound.explanation(message)}
    return {
        "id": message.pk,
        "wamid": message.wamid,
        "direction": message.direction,
        "contact": message.contact.wa_id or message.contact.user_id,
        "phone_number_id": message.phone_number.phone_number_id,
        "type": message.type,
        "text": message.text,
        "payload": message.payload,
        "reply_to": message.reply_to or None,
        "status": message.status,
        "error": error,
        "timestamp": _iso(message.timestamp),
        "status_at": {name: _iso(getattr(message, f"{name}_at")) for name in ("sent", "delivered", "read", "failed")},
    }


def get_message(message_id):
    message = Message.objects.select_related("contact", "phone_number").filter(pk=message_id).first()
    if message is None:
        raise ApiError(404, "not_found", _("No message with this id."))
    return message_object(message)


def contact_export(contact):
    """Everything we keep about one contact (LGPD data portability; design.md, "Contact export")."""
    messages = contact.messages.select_related("contact", "phone_number").order_by("timestamp", "pk")
    return {
        "contact": {
            "wa_id": contact.wa_id, "user_id": contact.user_id, "name": contact.name,
            "first_seen": _iso(contact.first_seen_at), "last_seen": _iso(contact.last_seen_at),
            "opted_out": contact.opted_out,
        },
        "sessions": [
            {"id": session.pk, "status": session.status,
             "queue": session.department.name if session.department else None,
             "started_at": _iso(session.started_at), "closed_at": _iso(session.closed_at)}
            for session in contact.sessions.select_related("department").order_by("started_at", "pk")
        ],
        "messages": [message_object(message) for message in messages.iterator()],
        # Beyond the contract's keys: the files kept for the contact's messages.
        "media": [
            {"message_id": message.pk, "type": message.type, "mime_type": message.media_mime_type,
             "filename": message.media_filename, "size": message.media_size, "sha256": message.media_sha256,
             "file": message.media_file.name or None, "status": message.media_status}
            for message in contact.messages.exclude(media_id="", media_file="").order_by("timestamp", "pk")
        ],
    }


def find_contact(wa_id):
    """The contact a number (either Brazilian form) or a BSUID names, or None; never creates one."""
    contact = None
    if wa_id.isdigit():
        contact = Contact.objects.filter(wa_id__in=phone_variants(wa_id)).first()
    if contact is None and wa_id:
        contact = Contact.objects.filter(user_id=wa_id).first()
    return contact


def get_contact(wa_id):
    contact = find_contact(wa_id)
    if contact is None:
        raise ApiError(404, "not_found", _("No contact with this WhatsApp ID."))
    return contact_export(contact)
