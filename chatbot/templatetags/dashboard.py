"""Small formatting filters for the dashboard's templates."""

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _

from chatbot import media, outbox
from chatbot.dashboard import selectors

register = template.Library()


@register.filter
def duration(value):
    """A timedelta as people say it: "45 s", "12 min", "3 h 05 min", "2 d 4 h"."""
    if value is None:
        return "—"
    seconds = max(int(value.total_seconds()), 0)
    if seconds < 60:
        return _("%(s)d s") % {"s": seconds}
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 3600:
        return _("%(m)d min") % {"m": minutes}
    if seconds < 86400:
        return _("%(h)d h %(m)02d min") % {"h": hours, "m": minutes % 60}
    return _("%(d)d d %(h)d h") % {"d": days, "h": hours % 24}


@register.filter
def since(moment):
    """The time from `moment` to now (None for no moment)."""
    return timezone.now() - moment if moment else None


@register.filter
def explanation(message):
    return outbox.explanation(message)


@register.filter
def get_item(mapping, key):
    return mapping.get(key)


@register.filter
def media_kind(message):
    """How the thread shows a message's file: image, audio, video (as the file view serves it
    inline) or a download."""
    return media.inline_kind(message.media_mime_type) or "file"


@register.filter
def window_left(contact, now=None):
    return selectors.window_left(contact, now)


@register.filter
def get_index(sequence, index):
    """The item at `index`, or "" past the end (for refilling a refused form)."""
    try:
        return sequence[index]
    except (IndexError, TypeError):
        return ""
