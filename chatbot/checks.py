"""Django system checks for a deployment (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

# design.md's documented default: public, so anyone may pass Meta's webhook handshake with it.
DEFAULT_VERIFY_TOKEN = "hoz_tech_secure_token_2024"


def verify_token_is_public():
    """Live mode (an access token set) with the webhook verify token everyone can read."""
    return bool(settings.WHATSAPP_ACCESS_TOKEN) and settings.WEBHOOK_VERIFY_TOKEN == DEFAULT_VERIFY_TOKEN


@register(Tags.security, deploy=True)
def check_verify_token(app_configs, **kwargs):
    if not verify_token_is_public():
        return []
    return [Warning(
        "WEBHOOK_VERIFY_TOKEN is the public default while WHATSAPP_ACCESS_TOKEN is set (live mode).",
        hint="Set WEBHOOK_VERIFY_TOKEN to a long random string, e.g. python -c \"import secrets; "
             "print(secrets.token_urlsafe(32))\", and the same value in Meta's App Dashboard > WhatsApp > "
             "Configuration.",
        id="chatbot.W001",
    )]
