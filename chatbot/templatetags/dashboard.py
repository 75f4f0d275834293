"""Small formatting filters for the dashboard's templates."""

import re

from django import template
from django.conf import settings
from django.utils import formats, timezone
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from chatbot import failures, media
from chatbot.dashboard import selectors
from chatbot.dashboard.permissions import may_cancel_scheduled
from chatbot.models import Label, Message, OperatorProfile

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
def status_times(message):
    """The tick's tooltip: when the message was queued, sent, delivered, read, played or failed
    (one strftime each: Django's date filter costs more, and a thread shows 50 of these)."""
    moments = [(_("Queued"), message.created_at), (_("Sent"), message.sent_at), (_("Delivered"), message.delivered_at),
               (_("Read"), message.read_at), (_("Played"), message.played_at), (_("Failed"), message.failed_at)]
    return " · ".join(f"{label}: {timezone.localtime(moment):%d/%m %H:%M:%S}" for label, moment in moments if moment)


@register.filter
def scheduled(message):
    """Whether the message is a scheduled one still waiting to go (chatbot/scheduling.py)."""
    return message.status == Message.Status.QUEUED and message.timestamp > message.created_at


@register.filter
def may_cancel(message, user):
    return may_cancel_scheduled(user, message)


@register.filter
def list_time(moment, now):
    """A list row's time: the hour today, the date before."""
    if not moment:
        return ""
    local = timezone.localtime(moment)
    if local.date() == timezone.localtime(now).date():
        return f"{local:%H:%M}"
    return formats.date_format(local, "SHORT_DATE_FORMAT")


@register.filter
def explanation(message):
    return failures.explanation(message)


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


# WhatsApp's formatting (WA:messages/text-messages): *bold*, _italic_, ~strike~, ```monospace```.
# Applied to escaped text, so only these tags can come out of a customer's or the bot's words.
MONOSPACE = re.compile(r"```(.+?)```", re.DOTALL)
INLINE = [(re.compile(rf"(?<![\w{mark}]){re.escape(mark)}(?=\S)(.+?)(?<=\S){re.escape(mark)}(?![\w{mark}])"), tag)
          for mark, tag in (("*", "strong"), ("_", "em"), ("~", "s"))]


@register.filter(needs_autoescape=True)
def whatsapp(text, autoescape=True):
    """A message's text as WhatsApp shows it: formatting marks rendered, line breaks kept."""
    html = conditional_escape(text or "") if autoescape else str(text or "")
    html = MONOSPACE.sub(r"<code>\1</code>", html)
    for pattern, tag in INLINE:
        html = pattern.sub(rf"<{tag}>\1</{tag}>", html)
    return mark_safe(html.replace("\n", "<br>"))  # noqa: S308 (escaped above; only our tags added)


@register.filter
def plain(text):
    """A message's text for a one-line preview: formatting marks dropped, lines joined."""
    text = MONOSPACE.sub(r"\1", text or "")
    for pattern, _tag in INLINE:
        text = pattern.sub(r"\1", text)
    return " ".join(text.split())


@register.filter
def phone(wa_id):
    """A number as people write it: +55 11 97000-0032 for Brazil, +<digits> for the rest."""
    digits = str(wa_id or "")
    if not digits.isdigit():
        return digits
    if digits.startswith("55") and len(digits) in (12, 13):
        area, local = digits[2:4], digits[4:]
        return f"+55 {area} {local[:-4]}-{local[-4:]}"
    return f"+{digits}"


@register.filter
def label_class(label):
    """The CSS class of a label's colour (the page's policy allows no inline style)."""
    try:
        return f"label-{Label.Color(label.color).name.lower()}"
    except ValueError:
        return "label-grey"


# Presence is told by a word beside a mark of its own shape, never by colour alone.
PRESENCE_MARKS = {"online": "●", "away": "◐", "offline": "○"}


@register.filter
def presence_of(user):
    """What others see of an operator: "online", "away" or "offline" by the rule (the stored value
    waits for the worker's sweep); read with the user through select_related("profile"), offline
    when they never opened the dashboard."""
    profile = getattr(user, "profile", None)
    return profile.presence_at(timezone.now()) if profile else OperatorProfile.Presence.OFFLINE


@register.filter
def presence_mark(state):
    return PRESENCE_MARKS.get(state, PRESENCE_MARKS["offline"])


@register.filter
def presence_label(state):
    """The presence's word in the page's language."""
    try:
        return OperatorProfile.Presence(state).label
    except ValueError:
        return OperatorProfile.Presence.OFFLINE.label


@register.filter
def with_presence(user):
    """An operator's name with their presence, e.g. "● bia (online)", for lists and menus."""
    state = presence_of(user)
    return f"{presence_mark(state)} {user.get_username()} ({presence_label(state)})"


@register.simple_tag
def presence_minutes():
    """The presence thresholds in minutes (settings), for the words that explain them."""
    return {"away": int(settings.PRESENCE_AWAY_AFTER.total_seconds() // 60),
            "offline": int(settings.PRESENCE_OFFLINE_AFTER.total_seconds() // 60)}
