"""Campaigns: one approved template sent to an audience, paced, scheduled and stoppable; one row
per recipient, so each is sent at most once (chatbot/campaigns.py)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .contacts import Contact, Department, PhoneNumber
from .messages import Message, Template


class Campaign(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("scheduled")
        RUNNING = "running", _("sending")
        PAUSED = "paused", _("paused")
        FINISHED = "finished", _("finished")
        CANCELLED = "cancelled", _("cancelled")

    class PauseReason(models.TextChoices):
        NONE = "", _("none")
        MANUAL = "manual", _("paused by a person")
        QUALITY = "quality", _("the number's quality dropped")
        SPAM = "spam", _("Meta refused too many sends as spam")
        TEMPLATE = "template", _("the template is no longer usable")

    name = models.CharField(_("name"), max_length=120)
    phone_number = models.ForeignKey(PhoneNumber, on_delete=models.PROTECT, related_name="campaigns",
                                     verbose_name=_("business number"))
    template = models.ForeignKey(Template, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                 verbose_name=_("template"))
    # What is sent, kept as chosen: the template row may be synced, renamed or deleted meanwhile.
    template_name = models.CharField(_("template name"), max_length=512)
    template_language = models.CharField(_("template language"), max_length=16)
    template_category = models.CharField(_("template category"), max_length=32, blank=True)
    # {"1": "{name|cliente}", "2": "{attr:pedido}"}: each placeholder's value per recipient.
    variables = models.JSONField(_("variables"), default=dict, blank=True)
    # The header's media parameter ({"type": "image", "image": {"link": …}}), when the template has one.
    header = models.JSONField(_("header media"), default=dict, blank=True)
    # {"0": "{attr:pedido}"}: the suffix of a dynamic URL button, by the button's index.
    buttons = models.JSONField(_("URL button suffixes"), default=dict, blank=True)
    audience = models.JSONField(_("audience"), default=dict, blank=True)
    department = models.ForeignKey(
        Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("department for replies"), help_text=_("Empty: the bot answers replies."))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    pause_reason = models.CharField(_("pause reason"), max_length=10, choices=PauseReason.choices, blank=True)
    pause_detail = models.CharField(_("pause detail"), max_length=255, blank=True)
    scheduled_at = models.DateTimeField(_("scheduled for"))
    # A daily sending window in TIME_ZONE (e.g. 08:00-20:00); none: any hour.
    window_start = models.TimeField(_("send from"), null=True, blank=True)
    window_end = models.TimeField(_("send until"), null=True, blank=True)
    delay_ms = models.PositiveIntegerField(_("milliseconds between messages"), default=0)
    next_send_at = models.DateTimeField(_("next message not before"), null=True, blank=True)
    recipients = models.PositiveIntegerField(_("recipients"), default=0)
    skipped = models.JSONField(_("skipped when created"), default=dict, blank=True)
    # The report's figures, counted by the worker (campaign_report.refresh): a page reads them at once.
    figures = models.JSONField(_("report figures"), default=dict, blank=True)
    figures_at = models.DateTimeField(_("figures counted at"), null=True, blank=True)
    figures_requested_at = models.DateTimeField(_("figures requested at"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", verbose_name=_("created by"))
    api_token = models.ForeignKey("ApiToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                  verbose_name=_("API token"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaign_status_idx")]

    def __str__(self):
        return self.name

    @property
    def active(self):
        return self.status in (self.Status.SCHEDULED, self.Status.RUNNING, self.Status.PAUSED)


class Recipient(models.Model):
    """One contact of a campaign: `pending` until the sender turns it into its one `Message`."""

    class State(models.TextChoices):
        PENDING = "pending", _("waiting")
        QUEUED = "queued", _("handed to the outbox")
        SKIPPED = "skipped", _("skipped")
        CANCELLED = "cancelled", _("cancelled")

    class Skip(models.TextChoices):
        NONE = "", _("none")
        OPTED_OUT = "opted_out", _("opted out of marketing")
        BLOCKED = "blocked", _("blocked")
        INVALID = "invalid", _("no valid WhatsApp number")
        NO_OPT_IN = "no_opt_in", _("no recorded opt-in")
        INCOMPLETE = "incomplete", _("a variable has no value and no fallback")

    # No index of their own: the unique (campaign, contact) and recipient_contact_idx lead with them
    # (each index costs every one of a 100,000-recipient campaign's inserts).
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipient_rows",
                                 verbose_name=_("campaign"), db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="campaign_rows",
                                verbose_name=_("contact"), db_index=False)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    skip_reason = models.CharField(_("skipped because"), max_length=10, choices=Skip.choices, blank=True)
    message = models.OneToOneField(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="recipient",
                                   verbose_name=_("message"))
    queued_at = models.DateTimeField(_("handed to the outbox at"), null=True, blank=True)
    replied_at = models.DateTimeField(_("replied at"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign recipient")
        verbose_name_plural = _("campaign recipients")
        constraints = [models.UniqueConstraint(fields=["campaign", "contact"], name="recipient_unique_contact")]
        indexes = [
            # The sender's next pending recipients, in order.
            models.Index(fields=["campaign", "id"], name="recipient_pending_idx", condition=Q(state="pending")),
            # Meta's messaging limit: unique recipients reached in the last 24 h.
            models.Index(fields=["queued_at"], name="recipient_queued_idx", condition=Q(queued_at__isnull=False)),
            # A reply within 72 h marks the latest recipient row of its contact.
            models.Index(fields=["contact", "-queued_at"], name="recipient_contact_idx"),
        ]

    def __str__(self):
        return f"{self.campaign} → {self.contact}"
