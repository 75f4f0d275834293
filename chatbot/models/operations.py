"""The product's own bookkeeping: raw webhook events, Meta's account news, worker heartbeats,
shared rate limits, API tokens and their idempotency keys, and the daily figures."""

import hashlib
import secrets
from datetime import timedelta

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .contacts import PhoneNumber


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


# The first answer to a request with an Idempotency-Key is replayed this long (design.md).
IDEMPOTENCY_TTL = timedelta(hours=24)


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
    EXPORT = "export", _("export contacts")
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
