"""Business numbers, departments, contacts (customers) and sessions (tickets), with operators'
notes on them."""

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class PhoneNumberQuerySet(models.QuerySet):
    def default(self):
        """The number named by WHATSAPP_PHONE_NUMBER_ID (created on first use).

        In sandbox mode without a number id, a local "sandbox" number stands in, so the whole
        pipeline runs for a newcomer without a Meta account.
        """
        phone_number_id = settings.WHATSAPP_PHONE_NUMBER_ID or "sandbox"
        number, _created = self.get_or_create(
            phone_number_id=phone_number_id,
            defaults={"waba_id": settings.WHATSAPP_BUSINESS_ACCOUNT_ID},
        )
        return number


class PhoneNumber(models.Model):
    """A business WhatsApp number; several can share one deployment."""

    phone_number_id = models.CharField(_("phone number ID"), max_length=64, unique=True)
    display_phone_number = models.CharField(_("display number"), max_length=32, blank=True)
    verified_name = models.CharField(_("verified name"), max_length=255, blank=True)
    waba_id = models.CharField(_("WhatsApp Business Account ID"), max_length=64, blank=True)
    quality_rating = models.CharField(_("quality rating"), max_length=16, blank=True)
    messaging_limit = models.CharField(_("messaging limit"), max_length=32, blank=True)
    throughput_level = models.CharField(_("throughput level"), max_length=32, blank=True)
    checked_at = models.DateTimeField(_("last checked at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Meta refused the access token (codes 0/190) while sending from this number: sending pauses
    # until the token changes (its fingerprint differs) or a retry after a pause succeeds.
    token_invalid_at = models.DateTimeField(_("access token refused at"), null=True, blank=True)
    token_fingerprint = models.CharField(_("refused token fingerprint"), max_length=16, blank=True)

    objects = PhoneNumberQuerySet.as_manager()

    class Meta:
        verbose_name = _("business number")
        verbose_name_plural = _("business numbers")

    def __str__(self):
        return self.display_phone_number or self.phone_number_id


class Department(models.Model):
    """A queue of human operators (Vendas, Suporte, Financeiro…)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    position = models.PositiveSmallIntegerField(_("position in menus"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    operators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="departments", verbose_name=_("operators")
    )
    class Assignment(models.TextChoices):
        OFF = "off", _("off: operators take conversations")
        ROUND_ROBIN = "round_robin", _("round-robin among online operators")
        LEAST_BUSY = "least_busy", _("the least busy online operator")

    assignment = models.CharField(_("automatic assignment"), max_length=12, choices=Assignment.choices,
                                  default=Assignment.OFF)
    restricted = models.BooleanField(
        _("only its operators see its conversations"), default=False,
        help_text=_("Other operators neither see nor answer them (administrators see everything)."),
    )

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")

    def __str__(self):
        return self.name


class Label(models.Model):
    """A coloured label the business defines, put on conversations and contacts (filters, bulk
    actions, and the audiences of campaigns)."""

    class Color(models.TextChoices):
        # Dark enough for white text (WCAG AA, 4.5:1).
        GREEN = "#1b7a43", _("green")
        BLUE = "#1d5fa8", _("blue")
        PURPLE = "#6b3fa0", _("purple")
        RED = "#b3261e", _("red")
        ORANGE = "#a84b00", _("orange")
        TEAL = "#0b6e6e", _("teal")
        GREY = "#4f5b62", _("grey")

    name = models.CharField(_("name"), max_length=40, unique=True)
    color = models.CharField(_("colour"), max_length=7, choices=Color.choices, default=Color.BLUE)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("label")
        verbose_name_plural = _("labels")

    def __str__(self):
        return self.name


class ContactAttribute(models.Model):
    """A field the business keeps for each contact (CPF, pedido, plano…), shown in the contact panel."""

    key = models.SlugField(_("key"), max_length=40, unique=True,
                           help_text=_("Used in texts and imports, e.g. cpf or pedido."))
    name = models.CharField(_("name"), max_length=60)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("contact attribute")
        verbose_name_plural = _("contact attributes")

    def __str__(self):
        return self.name


# Meta's customer service window: free-form messages only within 24 h of the customer's last one.
WINDOW = timedelta(hours=24)


class Contact(models.Model):
    """A customer. Meta identifies users by phone (`wa_id`) and, since 2026, by a business-scoped
    user ID (`user_id`, BSUID); either may be missing, never both (cloud-api.md §4)."""

    wa_id = models.CharField(_("WhatsApp ID"), max_length=32, blank=True)
    user_id = models.CharField(_("business-scoped user ID"), max_length=256, blank=True)
    username = models.CharField(_("username"), max_length=255, blank=True)
    name = models.CharField(_("profile name"), max_length=255, blank=True)
    first_seen_at = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    last_inbound_at = models.DateTimeField(
        _("last message from the customer"),
        null=True,
        blank=True,
        help_text=_("Opens Meta's 24-hour customer service window."),
    )
    opted_out = models.BooleanField(_("opted out of marketing"), default=False)
    opted_out_at = models.DateTimeField(_("opted out at"), null=True, blank=True)
    # Where and when the customer agreed to receive the business's messages (an import's opt-in
    # columns): what a campaign shows when the business sends only to those who agreed.
    opted_in_at = models.DateTimeField(_("opted in at"), null=True, blank=True)
    opt_in_source = models.CharField(_("opt-in source"), max_length=255, blank=True,
                                     help_text=_("Where the customer agreed, e.g. the website's form."))
    blocked = models.BooleanField(_("blocked"), default=False)
    # The last campaign message handed to the outbox for this contact: their next message within 72 h
    # is a reply to it (read with the contact, so other customers' messages cost no query).
    campaign_sent_at = models.DateTimeField(_("last campaign message at"), null=True, blank=True)
    # Meta's pair rate limit (about 1 message per 6 s to one user, with bursts): the time our
    # sending to this contact is booked until (see `outbox.book_recipients`).
    send_booked_until = models.DateTimeField(_("sending booked until"), null=True, blank=True)
    anonymized_at = models.DateTimeField(_("anonymized at"), null=True, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    labels = models.ManyToManyField(Label, blank=True, related_name="contacts", verbose_name=_("labels"))

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(fields=["wa_id"], condition=~Q(wa_id=""), name="contact_unique_wa_id"),
            models.UniqueConstraint(fields=["user_id"], condition=~Q(user_id=""), name="contact_unique_user_id"),
        ]
        indexes = [
            models.Index(fields=["-last_seen_at"], name="contact_last_seen_idx"),
            # The dashboard's "window closing soonest" order.
            models.Index(fields=["last_inbound_at"], name="contact_last_inbound_idx"),
        ]

    def __str__(self):
        return self.name or self.wa_id or self.user_id

    @property
    def address(self):
        """What Meta's `to` accepts for this contact: the phone number, else the BSUID."""
        return self.wa_id or self.user_id

    def window_open(self, now=None):
        """Whether a free-form (non-template) message may be sent (cloud-api.md §11)."""
        if self.last_inbound_at is None:
            return False
        return (now or timezone.now()) - self.last_inbound_at < WINDOW


class Session(models.Model):
    """A conversation (ticket): bot → waiting (handoff) → open (an operator took it) → closed."""

    class Status(models.TextChoices):
        BOT = "bot", _("with the bot")
        WAITING = "waiting", _("waiting for an operator")
        OPEN = "open", _("with an operator")
        CLOSED = "closed", pgettext_lazy("conversation", "closed")

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="sessions", verbose_name=_("contact"))
    phone_number = models.ForeignKey(
        PhoneNumber, on_delete=models.PROTECT, related_name="sessions", verbose_name=_("business number")
    )
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.BOT)
    department = models.ForeignKey(
        Department,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sessions",
        verbose_name=_("department"),
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_sessions",
        verbose_name=_("assigned operator"),
    )
    bot_state = models.JSONField(_("bot state"), default=dict, blank=True)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    last_message_at = models.DateTimeField(_("last activity"), default=timezone.now)
    waiting_since = models.DateTimeField(_("waiting since"), null=True, blank=True)
    first_response_at = models.DateTimeField(_("first human response"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    unread = models.PositiveIntegerField(_("unread messages"), default=0)
    # Over MESSAGES_PER_MINUTE: the bot is silent until then and operators see the flag.
    muted_until = models.DateTimeField(_("bot silent until (spam guard)"), null=True, blank=True)
    data = models.JSONField(_("collected answers"), default=dict, blank=True)
    labels = models.ManyToManyField(Label, blank=True, related_name="sessions", verbose_name=_("labels"))
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    # The satisfaction survey (CSAT), asked when a conversation an operator handled closes.
    csat_asked_at = models.DateTimeField(_("survey sent at"), null=True, blank=True)
    csat_score = models.PositiveSmallIntegerField(
        _("satisfaction (1-5)"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)])
    csat_answered_at = models.DateTimeField(_("survey answered at"), null=True, blank=True)
    csat_comment_asked_at = models.DateTimeField(_("comment asked at"), null=True, blank=True)
    csat_comment = models.TextField(_("survey comment"), blank=True, default="")
    campaign = models.ForeignKey("Campaign", on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions",
                                 verbose_name=_("started by a reply to the campaign"))

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "phone_number"],
                condition=~Q(status="closed"),
                name="session_one_open_per_contact_and_number",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-last_message_at"], name="session_status_activity_idx"),
            models.Index(fields=["-last_message_at"], name="session_activity_idx"),
            # The dashboard: the waiting queue in order, and first response times.
            models.Index(fields=["status", "waiting_since"], name="session_status_waiting_idx"),
            models.Index(fields=["first_response_at"], name="session_first_response_idx"),
            # Reports by period; the survey's answers by the contact's latest asked session.
            models.Index(fields=["started_at"], name="session_started_idx"),
            models.Index(fields=["closed_at"], name="session_closed_idx"),
            # The reports' latest survey comments: few conversations have one.
            models.Index(fields=["closed_at"], name="session_comment_idx", condition=~Q(csat_comment="")),
            models.Index(fields=["contact", "-csat_asked_at"], name="session_csat_asked_idx",
                         condition=Q(csat_asked_at__isnull=False)),
        ]

    def __str__(self):
        return f"#{self.pk} {self.contact} ({self.get_status_display()})"


class Note(models.Model):
    """An operator's internal note on a session: never sent to the customer."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="notes", verbose_name=_("session"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+",
                               verbose_name=_("author"))
    text = models.TextField(_("text"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("internal note")
        verbose_name_plural = _("internal notes")

    def __str__(self):
        return self.text[:50]
