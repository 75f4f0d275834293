"""The operators' side of the team: each operator's preferences and where they are."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .contacts import Session


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

    class Meta:
        verbose_name = _("operator profile")
        verbose_name_plural = _("operator profiles")
        indexes = [models.Index(fields=["viewing", "viewing_at"], name="profile_viewing_idx")]

    def __str__(self):
        return str(self.user)
