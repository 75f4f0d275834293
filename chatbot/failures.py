"""Why a message was not sent or delivered, in plain words: Meta's error codes explained
(`whatsapp.graph.explain`) and the titles our own refusals record (the rules at the outbox's claim,
a send whose answer was lost)."""

from django.utils.translation import gettext_lazy as _

from .whatsapp import graph

# The rules again when the outbox claims a message (it may have waited days: scheduled, a
# campaign's): the titles it records on the failure.
CONTACT_BLOCKED, CONTACT_OPTED_OUT = "contact blocked", "contact opted out"
# A send whose answer was lost and no status came (outbox.sweep).
UNKNOWN_DELIVERY = "delivery unknown"

EXPLANATIONS = {
    CONTACT_BLOCKED: _("Not sent: the customer was blocked after this message was queued."),
    CONTACT_OPTED_OUT: _("Not sent: the customer opted out of marketing messages after this message was "
                         "queued."),
    UNKNOWN_DELIVERY: _(
        "Meta's answer was lost (timeout or a stopped worker) and no status arrived: the message may "
        "or may not have been delivered. It was not sent again, to avoid a duplicate; check with the "
        "customer and resend if needed."
    ),
}


def explanation(message):
    """The plain explanation of a failed message's error, in the active language."""
    if message.error_code is not None:
        return graph.explain(message.error_code) or message.error_title
    return str(EXPLANATIONS.get(message.error_title, message.error_details or message.error_title))
