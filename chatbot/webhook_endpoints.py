"""The endpoints other systems give us for events (design.md, "Event webhooks"): adding one (its
URL checked, its secret made), the types it wants, removing, disabling and enabling it, and
replaying deliveries. The command (`whatsapp_chatbot webhook-endpoint`) and the settings page call
these; `event_delivery` posts."""

import secrets
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from . import event_delivery, event_http, events
from .models import EventDelivery, WebhookEndpoint


class EndpointRefused(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


def check_url(url):
    """`url`, stripped, when events may go there; EndpointRefused saying why not."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EndpointRefused(_("Enter a valid URL, such as https://example.com/webhooks.")) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointRefused(_("Enter a valid http:// or https:// URL, such as https://example.com/webhooks."))
    if len(url) > WebhookEndpoint._meta.get_field("url").max_length:
        raise EndpointRefused(_("The URL is too long (at most 2,000 characters)."))
    if parts.username or parts.password:
        raise EndpointRefused(_("Leave the user and password out of the URL: receivers check the signature instead."))
    try:
        event_http.resolve(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    except event_http.TargetRefused:
        raise EndpointRefused(_(
            "%(host)s is a private, loopback or link-local address; events go only to public addresses "
            "unless WEBHOOK_ALLOW_PRIVATE_TARGETS is set.") % {"host": parts.hostname}) from None
    except (OSError, UnicodeError):  # UnicodeError: a label over 63 characters
        raise EndpointRefused(
            _("%(host)s could not be resolved; check the address.") % {"host": parts.hostname}) from None
    return url


def check_types(types):
    unknown = sorted(set(types) - set(events.TYPES))
    if unknown:
        raise EndpointRefused(_("Unknown event type: %(types)s. Known types: %(known)s.") % {
            "types": ", ".join(unknown), "known": ", ".join(events.TYPES)})
    return [event_type for event_type in events.TYPES if event_type in set(types)]


def new_secret():
    return f"whsec_{secrets.token_urlsafe(32)}"


def add(url, *, types=(), description=""):
    """A new active endpoint for `types` (every type when empty)."""
    return WebhookEndpoint.objects.create(url=check_url(url), events=check_types(types),
                                          description=description.strip()[:200], secret=new_secret())


def change(endpoint, *, url, types, description):
    endpoint.url, endpoint.events = check_url(url), check_types(types)
    endpoint.description = description.strip()[:200]
    endpoint.save(update_fields=["url", "events", "description"])
    return endpoint


def set_active(endpoint, active):
    """Disable, or enable again (not a removed one): its waiting deliveries go on, the failing
    streak forgotten."""
    if endpoint.removed_at is not None:
        raise EndpointRefused(_("This endpoint was removed."))
    now = timezone.now()
    if active:
        event_delivery.enable(endpoint, now)
        transaction.on_commit(events.RECORDED.set)
    else:
        event_delivery.disable(endpoint, "", now)
    endpoint.refresh_from_db()


def remove(endpoint):
    """No more events for it, and its deliveries (waiting ones and the log) deleted. The row stays,
    hidden (see WebhookEndpoint.removed_at)."""
    endpoint.active, endpoint.removed_at = False, timezone.now()
    endpoint.save(update_fields=["active", "removed_at"])
    endpoint.deliveries.all().delete()


def new_signing_secret(endpoint):
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret"])
    return endpoint.secret


def backlog(endpoints):
    """{endpoint id: {"pending": n, "failed": n}} for `endpoints`, in one grouped query that never
    reads the delivered rows (most of the table)."""
    found = {endpoint.pk: {"pending": 0, "failed": 0} for endpoint in endpoints}
    for endpoint_id, status, count in (
            EventDelivery.objects.filter(endpoint__in=list(found), status__in=["pending", "failed"])
            .values_list("endpoint_id", "status").annotate(n=Count("pk")).order_by()):
        found[endpoint_id][status] = count
    return found


def last_attempt(endpoint):
    """Its newest delivery tried at least once (newest by creation: the delivery log's index)."""
    return endpoint.deliveries.filter(last_attempt_at__isnull=False).order_by("-created_at").first()


def replay(deliveries):
    """Post these deliveries again (same id and body), at once; returns how many."""
    count = deliveries.update(status=EventDelivery.Status.PENDING, next_attempt_at=timezone.now())
    transaction.on_commit(events.RECORDED.set)
    return count
