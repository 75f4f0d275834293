"""Messages both ways, statuses that came before their message, and the message templates."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chatbot.whatsapp.vocabulary import Status

from .contacts import Contact, PhoneNumber, Session


class Message(models.Model):
    """One WhatsApp message, inbound or outbound.

    Outbound messages start `queued` without a wamid; the sender stores Meta's wamid when the
    Graph API accepts them. Status webhooks then move them forward only (cloud-api.md §3, §5).
    """

    class Direction(models.TextChoices):
        IN = "in", _("received")
        OUT = "out", _("sent")

    class Status(models.TextChoices):
        """Meta's statuses and ours (chatbot/whatsapp/vocabulary.py), with their labels."""

        RECEIVED = Status.RECEIVED, _("received")
        QUEUED = Status.QUEUED, _("queued")
        SENDING = Status.SENDING, _("sending")
        SENT = Status.SENT, _("sent")
        DELIVERED = Status.DELIVERED, _("delivered")
        READ = Status.READ, _("read")
        PLAYED = Status.PLAYED, _("played")
        FAILED = Status.FAILED, _("failed")

    class Source(models.TextChoices):
        CUSTOMER = "customer", _("customer")
        BOT = "bot", _("bot")
        OPERATOR = "operator", _("operator")
        API = "api", _("API")
        PHONE_APP = "phone_app", _("WhatsApp Business app")
        CAMPAIGN = "campaign", _("campaign")

    class MediaStatus(models.TextChoices):
        NONE = "", _("no media")
        PENDING = "pending", _("downloading")
        READY = "ready", _("available")
        FAILED = "failed", _("unavailable")

    phone_number = models.ForeignKey(
        PhoneNumber, on_delete=models.PROTECT, related_name="messages", verbose_name=_("business number")
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="messages", verbose_name=_("contact"))
    session = models.ForeignKey(
        Session, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages", verbose_name=_("session")
    )
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    type = models.CharField(_("type"), max_length=32)
    text = models.TextField(_("text"), blank=True)
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    context = models.JSONField(_("context"), default=dict, blank=True)
    referral = models.JSONField(_("ad referral"), default=dict, blank=True)
    wamid = models.CharField(_("WhatsApp message ID"), max_length=255, unique=True, null=True, blank=True)
    reply_to = models.CharField(_("replies to (wamid)"), max_length=255, blank=True)
    # The message a reaction, edit or revoke is about; a wamid, since the target may arrive later.
    target_wamid = models.CharField(_("refers to (wamid)"), max_length=255, blank=True, db_index=True)
    edited_at = models.DateTimeField(_("edited by the customer at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("deleted by the customer at"), null=True, blank=True)

    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    timestamp = models.DateTimeField(_("time"), default=timezone.now)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    played_at = models.DateTimeField(_("played at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)

    error_code = models.IntegerField(_("error code"), null=True, blank=True)
    error_title = models.CharField(_("error title"), max_length=255, blank=True)
    error_details = models.TextField(_("error details"), blank=True)
    pricing_category = models.CharField(_("pricing category"), max_length=32, blank=True)
    pricing_type = models.CharField(_("pricing type"), max_length=32, blank=True)
    pricing_model = models.CharField(_("pricing model"), max_length=16, blank=True)
    billable = models.BooleanField(_("billable"), null=True, blank=True)
    # Meta's conversation block on statuses (cloud-api.md §5): left out from v24.0 but for free
    # entry points, kept when it comes.
    conversation_id = models.CharField(_("Meta conversation ID"), max_length=128, blank=True)
    conversation_origin = models.CharField(_("conversation origin"), max_length=32, blank=True)
    conversation_expires_at = models.DateTimeField(_("conversation expires at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("send attempts"), default=0)
    pair_limit_hits = models.PositiveSmallIntegerField(_("pair rate limit hits"), default=0)
    send_after = models.DateTimeField(_("send after"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("sending since"), null=True, blank=True)

    media_id = models.CharField(_("media ID"), max_length=128, blank=True)
    media_mime_type = models.CharField(_("media type"), max_length=128, blank=True)
    media_sha256 = models.CharField(_("media SHA-256"), max_length=128, blank=True)
    media_filename = models.CharField(_("file name"), max_length=255, blank=True)
    media_size = models.PositiveBigIntegerField(_("media size"), null=True, blank=True)
    media_file = models.FileField(_("media file"), upload_to="media/%Y/%m/", blank=True)
    media_status = models.CharField(
        _("media status"), max_length=8, choices=MediaStatus.choices, default=MediaStatus.NONE, blank=True
    )

    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sent_messages",
        verbose_name=_("sent by"),
    )
    api_token = models.ForeignKey(
        "ApiToken",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("API token"),
    )

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        indexes = [
            models.Index(fields=["contact", "timestamp"], name="message_contact_time_idx"),
            models.Index(fields=["session", "timestamp"], name="message_session_time_idx"),
            models.Index(fields=["session", "id"], name="message_session_id_idx"),  # a thread's last page
            models.Index(fields=["-timestamp"], name="message_time_idx"),
            # The outbox: queued messages in order, and those in flight (for the stale-send sweep).
            models.Index(fields=["id"], name="message_queued_idx", condition=Q(status="queued")),
            models.Index(fields=["claimed_at"], name="message_sending_idx", condition=Q(status="sending")),
            # The dashboard's "failed sends in the last 24 h".
            models.Index(fields=["failed_at"], name="message_failed_idx", condition=Q(status="failed")),
        ]

    def __str__(self):
        return f"{self.get_direction_display()} {self.type} {self.wamid or self.pk}"


def fit(model, fields):
    """`fields` with each string cut to its column's length: PostgreSQL refuses longer ones, and a
    customer's 300-character file name must not cost the message (SQLite ignores lengths)."""
    for name, value in fields.items():
        limit = getattr(model._meta.get_field(name), "max_length", None)
        if limit and isinstance(value, str) and len(value) > limit:
            fields[name] = value[:limit]
    return fields


class PendingStatus(models.Model):
    """A status webhook for a wamid we do not know yet (its send is still being recorded, or an echo
    is late); applied when the message appears, purged with the retention period otherwise."""

    wamid = models.CharField(_("WhatsApp message ID"), max_length=255)
    status = models.CharField(_("status"), max_length=16)
    timestamp = models.DateTimeField(_("time"))
    payload = models.JSONField(_("payload"), default=dict)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)

    class Meta:
        verbose_name = _("pending status")
        verbose_name_plural = _("pending statuses")
        constraints = [models.UniqueConstraint(fields=["wamid", "status"], name="pending_status_unique")]

    def __str__(self):
        return f"{self.wamid} {self.status}"


class Template(models.Model):
    """A WhatsApp message template, kept in step with Meta (sync and status webhooks)."""

    waba_id = models.CharField(_("WhatsApp Business Account ID"), max_length=64, blank=True)
    template_id = models.CharField(_("Meta template ID"), max_length=64, blank=True)
    name = models.CharField(_("name"), max_length=512)
    language = models.CharField(_("language"), max_length=16)
    category = models.CharField(_("category"), max_length=32, blank=True)
    status = models.CharField(_("status"), max_length=32, blank=True)
    parameter_format = models.CharField(_("parameter format"), max_length=16, blank=True)
    components = models.JSONField(_("components"), default=list, blank=True)
    reason = models.CharField(_("status reason"), max_length=255, blank=True)
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("template")
        verbose_name_plural = _("templates")
        ordering = ["name", "language"]
        constraints = [
            models.UniqueConstraint(fields=["name", "language"], name="template_unique_name_language"),
        ]

    def __str__(self):
        return f"{self.name} ({self.language})"
