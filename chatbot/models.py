"""The data of the product: business numbers, contacts, sessions (tickets), messages, templates,
raw webhook events, API tokens and departments.

Idempotency lives in constraints, not in check-then-insert code: a `wamid` is unique, a contact
has one open session per business number, a template is unique per name and language.
"""

import hashlib
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
    blocked = models.BooleanField(_("blocked"), default=False)
    # Meta's pair rate limit (about 1 message per 6 s to one user, with bursts): the time our
    # sending to this contact is booked until (see `outbound.book_recipients`).
    send_booked_until = models.DateTimeField(_("sending booked until"), null=True, blank=True)
    anonymized_at = models.DateTimeField(_("anonymized at"), null=True, blank=True)

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
        CLOSED = "closed", _("closed")

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
        ]

    def __str__(self):
        return f"#{self.pk} {self.contact} ({self.get_status_display()})"


class Message(models.Model):
    """One WhatsApp message, inbound or outbound.

    Outbound messages start `queued` without a wamid; the sender stores Meta's wamid when the
    Graph API accepts them. Status webhooks then move them forward only (cloud-api.md §3, §5).
    """

    class Direction(models.TextChoices):
        IN = "in", _("received")
        OUT = "out", _("sent")

    class Status(models.TextChoices):
        RECEIVED = "received", _("received")
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        DELIVERED = "delivered", _("delivered")
        READ = "read", _("read")
        PLAYED = "played", _("played")
        FAILED = "failed", _("failed")

    class Source(models.TextChoices):
        CUSTOMER = "customer", _("customer")
        BOT = "bot", _("bot")
        OPERATOR = "operator", _("operator")
        API = "api", _("API")
        PHONE_APP = "phone_app", _("WhatsApp Business app")

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


# Status precedence, so any arrival order of status webhooks ends in the same state: a late `sent`
# never overwrites `failed`, and proof of delivery (`delivered`, `read`) outranks a `failed`.
STATUS_RANK = {"queued": 0, "sending": 0, "sent": 1, "failed": 2, "delivered": 3, "read": 4, "played": 5}


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


class AccountEvent(models.Model):
    """Meta's news about the account: template categories, number quality and limits, account
    updates and errors not tied to a message. Shown by health and the dashboard."""

    field = models.CharField(_("webhook field"), max_length=64)
    event = models.CharField(_("event"), max_length=64, blank=True)
    waba_id = models.CharField(_("WhatsApp Business Account ID"), max_length=64, blank=True)
    phone_number = models.ForeignKey(
        PhoneNumber, on_delete=models.SET_NULL, null=True, blank=True, related_name="account_events",
        verbose_name=_("business number"),
    )
    payload = models.JSONField(_("payload"), default=dict)
    created_at = models.DateTimeField(_("received at"), default=timezone.now)

    class Meta:
        verbose_name = _("account event")
        verbose_name_plural = _("account events")
        indexes = [models.Index(fields=["field", "-created_at"], name="account_event_field_idx")]

    def __str__(self):
        return f"{self.field} {self.event}"


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


class WebhookEvent(models.Model):
    """The raw body of one webhook POST, stored before we answer Meta 200.

    Meta offers no API for past webhooks, so this row is the only copy; applying it may fail
    and be retried (`whatsapp_chatbot reprocess --failed`) without losing anything.
    """

    class Result(models.TextChoices):
        PENDING = "pending", _("pending")
        PROCESSED = "processed", _("processed")
        FAILED = "failed", _("failed")

    body = models.TextField(_("raw body"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    # Database defaults too: the webhook inserts only the body and the time (`inbound.store`).
    result = models.CharField(
        _("result"), max_length=10, choices=Result.choices, default=Result.PENDING, db_default=Result.PENDING
    )
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    summary = models.JSONField(_("summary"), default=dict, db_default={}, blank=True)
    error = models.TextField(_("error"), blank=True, default="", db_default="")
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0, db_default=0)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        indexes = [
            models.Index(fields=["-received_at"], name="webhook_received_idx"),
            models.Index(fields=["result", "received_at"], name="webhook_result_idx"),
            # The workers' inbox: pending events, oldest first.
            models.Index(fields=["id"], condition=models.Q(result="pending"), name="webhook_pending_idx"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.received_at:%Y-%m-%d %H:%M:%S} {self.result}"


class WorkerBeat(models.Model):
    """The last sign of life of one `db_worker` process, written every few seconds by its inbox thread."""

    worker_id = models.CharField(_("worker"), max_length=64, unique=True)
    hostname = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("process"))
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    last_seen = models.DateTimeField(_("last seen"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("worker")
        verbose_name_plural = _("workers")

    def __str__(self):
        return f"{self.hostname}:{self.pid}"


class RateLimit(models.Model):
    """A rate shared by every process on every machine: the time its next slot is free (GCRA's
    "theoretical arrival time"), moved forward under a row lock by `chatbot.ratelimit`, which
    stores each key as its SHA-256."""

    key = models.CharField(_("key"), max_length=100, unique=True)
    booked_until = models.DateTimeField(_("booked until"), default=timezone.now)

    class Meta:
        verbose_name = _("rate limit")
        verbose_name_plural = _("rate limits")

    def __str__(self):
        return self.key


class IdempotencyKey(models.Model):
    """The first answer to a send request with an `Idempotency-Key`, replayed for 24 h."""

    token = models.ForeignKey("ApiToken", on_delete=models.CASCADE, related_name="+", verbose_name=_("API token"))
    key = models.CharField(_("key"), max_length=255)
    request_hash = models.CharField(_("request hash"), max_length=64)
    status_code = models.PositiveSmallIntegerField(_("status code"))
    response = models.JSONField(_("response"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="idempotency_unique_key")]

    def __str__(self):
        return self.key


def hash_token(token):
    # Tokens are 256-bit random strings, so a fast hash is enough: no dictionary to guess from.
    return hashlib.sha256(token.encode()).hexdigest()


class Scope(models.TextChoices):
    """What an API token may do (design.md, "Send API")."""

    SEND = "send", _("send messages and upload media")
    READ = "read", _("read messages")
    EXPORT = "export", _("export contacts (LGPD)")
    CAMPAIGNS = "campaigns", _("manage campaigns")


DEFAULT_SCOPES = [Scope.SEND, Scope.READ]


class ApiTokenQuerySet(models.QuerySet):
    def create_token(self, name, scopes=None):
        """Create a token; returns (ApiToken, plaintext). The plaintext is never stored."""
        plaintext = "hzt_" + secrets.token_urlsafe(32)
        scopes = sorted(set(DEFAULT_SCOPES if scopes is None else scopes))
        token = self.create(name=name, prefix=plaintext[:10], token_hash=hash_token(plaintext), scopes=scopes)
        return token, plaintext

    def authenticate(self, plaintext):
        return self.filter(token_hash=hash_token(plaintext), revoked_at__isnull=True).first()


class ApiToken(models.Model):
    """A bearer token for the send and read APIs, stored only as its SHA-256."""

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, help_text=_("The first characters, to recognise it."))
    token_hash = models.CharField(_("hash"), max_length=64, unique=True, editable=False)
    scopes = models.JSONField(_("scopes"), default=list, blank=True,
                              help_text=_("What the token may do: send, read, export, campaigns."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def allows(self, scope):
        return scope in self.scopes


# --- The bot's configuration, edited in the admin (chatbot/bot.py reads a snapshot of it) -------


class BotSettings(models.Model):
    """The bot's texts and timings: one row, created with pt-BR defaults on first use.

    Texts may use {name} (the customer's profile name), {department}, {position} and {hours}.
    """

    greeting = models.TextField(_("greeting"), default="Olá, {name}! 👋 Bem-vindo(a) ao nosso atendimento.")
    menu_text = models.TextField(_("menu text"), default="Como podemos ajudar? Escolha uma opção:")
    menu_button = models.CharField(_("menu button (lists)"), max_length=20, default="Ver opções")
    human_option = models.CharField(_("'talk to a person' option"), max_length=20, default="Falar com atendente")
    fallback_text = models.TextField(
        _("didn't understand"),
        default="Desculpe, não entendi. 🤔 Digite *menu* para ver as opções ou *atendente* para falar com uma pessoa.",
    )
    fallback_limit = models.PositiveSmallIntegerField(
        _("misunderstandings before offering a person"), default=2
    )
    handoff_text = models.TextField(
        _("handoff message"),
        default="Certo! Você está na fila de *{department}* (posição {position}). Um atendente vai falar com "
        "você em breve.",
    )
    handoff_timeout_minutes = models.PositiveIntegerField(_("minutes before the waiting message"), default=15)
    handoff_timeout_text = models.TextField(
        _("waiting message"),
        blank=True,
        default="Nossa equipe está ocupada no momento, mas sua mensagem está guardada: retornaremos assim que "
        "possível. Obrigado pela paciência! 🙏",
    )
    out_of_hours_text = models.TextField(
        _("out-of-hours message"),
        default="Estamos fora do horário de atendimento ({hours}). Deixe sua mensagem que responderemos assim "
        "que abrirmos. Enquanto isso, digite *menu* para ver as opções.",
    )
    opt_out_confirm_text = models.TextField(
        _("opt-out confirmation question"),
        default="Quer deixar de receber nossas mensagens promocionais? Responda *SIM* para confirmar.",
    )
    opt_out_done_text = models.TextField(
        _("opt-out done"),
        default="Pronto, você não receberá mais mensagens promocionais. Se mudar de ideia, digite *voltar*.",
    )
    opt_in_text = models.TextField(_("opt-in done"), default="Que bom! Você voltará a receber nossas novidades.")
    inactivity_hours = models.PositiveIntegerField(_("close sessions after hours without messages"), default=24)
    closing_text = models.TextField(
        _("closing message"),
        blank=True,
        default="Encerramos este atendimento. Se precisar de algo, é só escrever! 😊",
    )
    spam_cooldown_minutes = models.PositiveIntegerField(_("spam guard: minutes of silence"), default=10)
    followup_template = models.CharField(
        _("template when the 24-hour window is closed"),
        max_length=512,
        blank=True,
        help_text=_("Name of an approved template (no parameters), sent instead of the waiting message."),
    )
    followup_template_language = models.CharField(_("template language"), max_length=16, default="pt_BR")
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("bot settings")
        verbose_name_plural = _("bot settings")

    def __str__(self):
        return str(_("Bot settings"))

    @classmethod
    def load(cls):
        return cls.objects.get_or_create(pk=1)[0]


class BusinessHours(models.Model):
    """Opening hours for one weekday (in TIME_ZONE); no rows at all means always open."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    class Meta:
        ordering = ["weekday", "opens"]
        verbose_name = _("business hours")
        verbose_name_plural = _("business hours")
        constraints = [
            models.CheckConstraint(condition=Q(closes__gt=F("opens")), name="business_hours_closes_after_opens"),
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


class Holiday(models.Model):
    date = models.DateField(_("date"), unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["date"]
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")

    def __str__(self):
        return f"{self.date:%d/%m/%Y} {self.name}"


class Flow(models.Model):
    """A guided conversation: steps that ask, offer options and lead to other steps or actions."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    menu_title = models.CharField(_("title in the main menu"), max_length=24, blank=True,
                                  help_text=_("Leave empty to keep it out of the main menu."))
    first_step = models.ForeignKey("FlowStep", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                   verbose_name=_("first step"))
    position = models.PositiveSmallIntegerField(_("position in menus"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("flow")
        verbose_name_plural = _("flows")

    def __str__(self):
        return self.name


class Action(models.TextChoices):
    """What an option or a keyword rule does once chosen."""

    REPLY = "reply", _("reply with a text")
    STEP = "step", _("go to a step")
    FLOW = "flow", _("start a flow")
    MENU = "menu", _("show the main menu")
    HANDOFF = "handoff", _("hand off to a department")
    CLOSE = "close", _("close the session")


class FlowStep(models.Model):
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="steps", verbose_name=_("flow"))
    name = models.CharField(_("name"), max_length=100)
    text = models.TextField(_("text"))
    save_as = models.SlugField(_("save the answer as"), max_length=50, blank=True,
                               help_text=_("A question: the customer's answer is kept in the session under this name."))
    next_step = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                  verbose_name=_("next step (after an answer)"))
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["flow", "position", "pk"]
        verbose_name = _("flow step")
        verbose_name_plural = _("flow steps")

    def __str__(self):
        return f"{self.flow} › {self.name}"


class FlowOption(models.Model):
    """A button (up to 3 per step) or list row (up to 10) under a step."""

    step = models.ForeignKey(FlowStep, on_delete=models.CASCADE, related_name="options", verbose_name=_("step"))
    title = models.CharField(_("title"), max_length=24)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices, default=Action.STEP)
    next_step = models.ForeignKey(FlowStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                  verbose_name=_("step"))
    department = models.ForeignKey(Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                   verbose_name=_("department"))
    reply_text = models.TextField(_("reply"), blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["step", "position", "pk"]
        verbose_name = _("option")
        verbose_name_plural = _("options")

    def __str__(self):
        return self.title


class KeywordRule(models.Model):
    """When a customer's message matches, the bot does the action (first matching rule wins)."""

    class Match(models.TextChoices):
        EXACT = "exact", _("is exactly")
        CONTAINS = "contains", _("contains")
        REGEX = "regex", _("matches the regular expression")

    match = models.CharField(_("match"), max_length=8, choices=Match.choices, default=Match.CONTAINS)
    pattern = models.CharField(_("words"), max_length=255,
                               help_text=_("Case and accents are ignored. Separate alternatives with commas."))
    action = models.CharField(_("action"), max_length=8, choices=Action.choices, default=Action.REPLY)
    reply_text = models.TextField(_("reply"), blank=True)
    department = models.ForeignKey(Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                   verbose_name=_("department"))
    flow = models.ForeignKey(Flow, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                             verbose_name=_("flow"))
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("keyword rule")
        verbose_name_plural = _("keyword rules")

    def __str__(self):
        return f"{self.get_match_display()} {self.pattern}"

    def clean(self):
        if self.match == self.Match.REGEX:
            try:
                re.compile(self.pattern)
            except re.error as error:
                message = _("Not a valid regular expression: %(error)s") % {"error": error}
                raise ValidationError({"pattern": message}) from None


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


class CannedReply(models.Model):
    """A ready answer operators insert into the reply box (`{name}` becomes the customer's name)."""

    title = models.CharField(_("title"), max_length=60)
    text = models.TextField(_("text"), max_length=4096)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "title"]
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")

    def __str__(self):
        return self.title


class DailyStats(models.Model):
    """The messages of one finished day (in TIME_ZONE), counted once for the dashboard's charts: a
    fortnight of messages is not recounted on every visit, and the counts outlive the retention purge
    and anonymization."""

    day = models.DateField(_("day"), unique=True)
    received = models.PositiveIntegerField(_("messages received"), default=0)
    sent = models.PositiveIntegerField(_("messages sent"), default=0)
    pricing = models.JSONField(_("billable messages by pricing category"), default=dict, blank=True)
    counted_at = models.DateTimeField(_("counted at"), default=timezone.now)

    class Meta:
        ordering = ["-day"]
        verbose_name = _("daily statistics")
        verbose_name_plural = _("daily statistics")

    def __str__(self):
        return str(self.day)
