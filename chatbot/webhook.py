"""Meta's side of the webhook: the GET handshake and the POST signature (cloud-api.md §1-2)."""

import hashlib
import hmac
import json

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
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


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
