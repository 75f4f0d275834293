"""The operators' side of the team: each operator's preferences and where they are."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .contacts import Session

DEFAULT_LIMIT = 5  # conversations at once an operator is given automatically, until set otherwise


class OperatorProfileQuerySet(models.QuerySet):
    def online(self, now):
        """The operators online at `now` by the rule of `OperatorProfile.presence_at`, whatever
        the stored `presence` (which the worker's sweep brings in line every minute)."""
        return self.filter(chosen_presence=OperatorProfile.Presence.ONLINE,
                           seen_at__gte=now - settings.PRESENCE_OFFLINE_AFTER,
                           active_at__gte=now - settings.PRESENCE_AWAY_AFTER)


class OperatorProfile(models.Model):
    """One operator's dashboard preferences, and what their open tabs last said (every poll): the
    conversation on screen, so that colleagues see who else has it open."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile",
                                verbose_name=_("operator"))
    sound = models.BooleanField(_("sound on new messages"), default=True)
    notifications = models.BooleanField(_("browser notifications"), default=True)
    seen_at = models.DateTimeField(_("last seen in the dashboard"), null=True, blank=True)
    viewing = models.ForeignKey(Session, on_delete=models.SET_NULL, null=True, blank=True, related_name="viewers",
                                verbose_name=_("conversation on screen"))
    viewing_at = models.DateTimeField(_("on screen at"), null=True, blank=True)

    class Presence(models.TextChoices):
        ONLINE = "online", _("online")
        AWAY = "away", _("away")
        OFFLINE = "offline", _("offline")

    # What the operator chose (online or away), and what the others see: away after a while
    # without a key or a click, offline when no dashboard tab has polled for a while.
    presence = models.CharField(_("presence"), max_length=8, choices=Presence.choices, default=Presence.OFFLINE)
    chosen_presence = models.CharField(_("presence chosen"), max_length=8, choices=Presence.choices,
                                       default=Presence.ONLINE)
    active_at = models.DateTimeField(_("last active in the dashboard"), null=True, blank=True)
    max_conversations = models.PositiveSmallIntegerField(
        _("conversations at once"), default=DEFAULT_LIMIT,
        help_text=_("Automatic assignment gives this operator no more open conversations than this."))
    last_assigned_at = models.DateTimeField(_("last given a conversation"), null=True, blank=True)

    objects = OperatorProfileQuerySet.as_manager()

    class Meta:
        verbose_name = _("operator profile")
        verbose_name_plural = _("operator profiles")
        indexes = [models.Index(fields=["viewing", "viewing_at"], name="profile_viewing_idx")]

    def __str__(self):
        return str(self.user)

    def presence_at(self, now):
        """Offline when no dashboard tab polled within PRESENCE_OFFLINE_AFTER; else away when the
        operator chose it or gave no input within PRESENCE_AWAY_AFTER; else online."""
        if self.seen_at is None or now - self.seen_at > settings.PRESENCE_OFFLINE_AFTER:
            return self.Presence.OFFLINE
        if (self.chosen_presence == self.Presence.AWAY or self.active_at is None
                or now - self.active_at > settings.PRESENCE_AWAY_AFTER):
            return self.Presence.AWAY
        return self.Presence.ONLINE


class OnlineHour(models.Model):
    """An hour in which an operator was online (sampled every minute by the worker): the reports'
    operators online by hour of the week."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("operator"))
    hour = models.DateTimeField(_("hour"))

    class Meta:
        verbose_name = _("online hour")
        verbose_name_plural = _("online hours")
        constraints = [models.UniqueConstraint(fields=["hour", "user"], name="online_hour_unique")]

    def __str__(self):
        return f"{self.user} {timezone.localtime(self.hour):%Y-%m-%d %H:00}"
