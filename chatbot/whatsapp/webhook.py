"""Meta's side of the webhook: the GET handshake and the POST signature (cloud-api.md §1-2)."""

import hashlib
import hmac
import json
import time

from django.conf import settings


def verify_handshake(params):
    """The challenge to echo when Meta's GET carries our verify token, else None."""
    token = params.get("hub.verify_token", "")
    if params.get("hub.mode") != "subscribe" or not settings.WEBHOOK_VERIFY_TOKEN:
        return None
    if not hmac.compare_digest(token.encode(), settings.WEBHOOK_VERIFY_TOKEN.encode()):
        return None
    return params.get("hub.challenge", "")


def signature_valid(body, header):
    """Whether `header` is `sha256=` + HMAC-SHA256(app secret, raw body), compared in constant time.

    Meta signs the bytes it sends, with non-ASCII escaped as \\uXXXX, so the HMAC runs over
    request.body as received; re-serialized JSON would differ for the first accented message.
    """
    secret = settings.WHATSAPP_APP_SECRET
    if not secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = header.removeprefix("sha256=").strip().lower()
    # compare_digest takes only ASCII text; anything else is not a hex digest anyway.
    return given.isascii() and hmac.compare_digest(expected, given)


def sign(body, secret=None):
    """The header value Meta would send for `body` (used by `simulate` and the tests)."""
    secret = secret if secret is not None else settings.WHATSAPP_APP_SECRET
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def decode(body):
    """The JSON object in `body`, or None when it is not one."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def customer_message(*, phone_number_id, wa_id, name, wamid, text="", choice="", moment=None):
    """The bytes Meta POSTs for one customer's text (or tapped list row `choice`), escaped the way
    Meta escapes them (cloud-api.md §4): for `simulate`, the benchmarks and the tests."""
    moment = moment or time.time()
    message = {"from": wa_id, "id": wamid, "timestamp": str(int(moment))}
    if choice:
        message |= {"type": "interactive", "interactive": {"type": "list_reply",
                                                           "list_reply": {"id": choice, "title": text}}}
    else:
        message |= {"type": "text", "text": {"body": text}}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": phone_number_id, "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [message],
    }
    document = {"object": "whatsapp_business_account",
                "entry": [{"id": "0", "changes": [{"field": "messages", "value": value}]}]}
    return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode()
