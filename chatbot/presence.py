"""Operators' presence: online, away or offline, what colleagues see and what automatic assignment
(`assignment`) goes by.

- The operator chooses online or away (the top bar's control: `choose`).
- Every dashboard tab polls the pulse (every 2 s while shown, every 30 s while hidden) and says
  whether there was a key, click, touch or mouse move since its last poll (`record_pulse`): the
  poll is `seen_at`, the input `active_at`.
- Away after PRESENCE_AWAY_AFTER without input, offline after PRESENCE_OFFLINE_AFTER without a
  poll (settings; the rule is `OperatorProfile.presence_at`); logging out is offline at once.
- The worker's minute sweep (`sweep`) applies those decays to operators whose tabs are gone, and
  records the hour as an `OnlineHour` for everyone online (the reports' operators online by hour).

Coming online (a choice, input after a while away, a tab opened again) hands out the waiting
conversations of the operator's departments at once.
"""

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import assignment
from .models import OnlineHour, OperatorProfile

Presence = OperatorProfile.Presence


def _update(user, now, **changes):
    """Set `changes` on the operator's profile (created on first use) and its presence by the
    rule, under the profile's row lock: two tabs polling at once never undo each other's input.
    Returns (profile, whether the operator just came online)."""
    with transaction.atomic():
        profile, _created = OperatorProfile.objects.select_for_update().get_or_create(user=user)
        # As stored, and by the rule: a tab back after a while was not online, whatever the
        # stored presence said until the sweep.
        was_online = profile.presence == Presence.ONLINE and profile.presence_at(now) == Presence.ONLINE
        for field, value in changes.items():
            setattr(profile, field, value)
        profile.presence = profile.presence_at(now)
        profile.save(update_fields=[*changes, "presence"])
    return profile, not was_online and profile.presence == Presence.ONLINE


def record_pulse(user, *, active, now=None):
    """A dashboard tab's poll; `active`: there was input in it since its last poll. Returns the
    profile (its presence as others now see it)."""
    now = now or timezone.now()
    changes = {"seen_at": now, "active_at": now} if active else {"seen_at": now}
    profile, came_online = _update(user, now, **changes)
    if came_online:
        assignment.hand_out(operators=[user.pk], now=now)
    return profile


def choose(user, chosen, now=None):
    """The operator chose to be online or away (a click: input too). Returns the profile."""
    if chosen not in (Presence.ONLINE, Presence.AWAY):
        raise ValueError(f"an operator chooses online or away, not {chosen!r}")
    now = now or timezone.now()
    profile, came_online = _update(user, now, chosen_presence=chosen, seen_at=now, active_at=now)
    if came_online:
        assignment.hand_out(operators=[user.pk], now=now)
    return profile


def leave(user):
    """Offline at once (logging out): no tab of this login will poll again."""
    OperatorProfile.objects.filter(user=user).update(presence=Presence.OFFLINE, seen_at=None, viewing=None)


def logged_out(sender, request, user, **kwargs):
    """`user_logged_out` receiver (Django's logout view and the admin's); `user` is None when the
    session had expired."""
    if user is not None:
        leave(user)


def sweep(now=None):
    """The minute's presence work: decay operators whose tabs went quiet (offline) or who gave
    no input (away), then record this hour for every operator online. Returns (decayed, online)."""
    now = now or timezone.now()
    gone = Q(seen_at__isnull=True) | Q(seen_at__lt=now - settings.PRESENCE_OFFLINE_AFTER)
    decayed = OperatorProfile.objects.exclude(presence=Presence.OFFLINE).filter(gone).update(presence=Presence.OFFLINE)
    idle = (Q(chosen_presence=Presence.AWAY) | Q(active_at__isnull=True)
            | Q(active_at__lt=now - settings.PRESENCE_AWAY_AFTER))
    decayed += OperatorProfile.objects.filter(idle, presence=Presence.ONLINE).update(presence=Presence.AWAY)
    online = list(OperatorProfile.objects.online(now).filter(presence=Presence.ONLINE)
                  .values_list("user_id", flat=True))
    hour = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    # One row per operator and hour (unique): the first sample inserts it, the others find it.
    OnlineHour.objects.bulk_create([OnlineHour(user_id=user_id, hour=hour) for user_id in online],
                                   ignore_conflicts=True)
    return decayed, len(online)
