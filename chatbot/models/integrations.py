"""Event webhooks to other systems (design.md, "Event webhooks"): the endpoints staff register and
one delivery row per event and endpoint, which is both the queue the workers post from and the
endpoint's delivery log (chatbot/events.py records them, chatbot/event_delivery.py posts them)."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .contacts import Contact


class WebhookEndpointQuerySet(models.QuerySet):
    def listed(self):
        """The endpoints not removed."""
        return self.filter(removed_at__isnull=True)


class WebhookEndpoint(models.Model):
    # Why the workers stopped posting to it (`disabled_reason`).
    DISABLED_FAILING = "failing"

    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(_("description"), max_length=200, blank=True)
    # The signing key: kept as is, since every delivery is signed with it (receivers hold a copy).
    secret = models.CharField(max_length=100, editable=False)
    # The event types sent; empty: every type.
    events = models.JSONField(_("events"), default=list, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The first failure since the last success; 24 h of failures disable the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    # Removed endpoints stay as rows: a process that read the endpoints a moment before may still
    # record an event for one, and that row must not break the transaction it is part of.
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        app_label = "chatbot"
        ordering = ["pk"]
        verbose_name = _("event webhook")
        verbose_name_plural = _("event webhooks")

    def __str__(self):
        return self.url

    def wants(self, event_type):
        return not self.events or event_type in self.events


class EventDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=40)
    type = models.CharField(max_length=40)
    # The JSON posted, fixed when the event was recorded: every attempt sends the same bytes.
    body = models.TextField()
    # Whose data the body carries (erased with them); none for campaigns and tests.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When a worker may take it next (a claim moves it past the claim's lease).
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The last attempt: the receiver's status code, how long it took, the first KB of its answer.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=255, blank=True)

    class Meta:
        app_label = "chatbot"
        constraints = [models.UniqueConstraint(fields=["endpoint", "event_id"], name="event_delivery_unique")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="event_delivery_due_idx"),
            models.Index(fields=["endpoint", "-created_at"], name="event_delivery_log_idx"),
            # What waits or failed, per endpoint (the settings page's counts), without the delivered bulk.
            models.Index(fields=["endpoint", "status"], condition=Q(status__in=["pending", "failed"]),
                         name="event_delivery_backlog_idx"),
            models.Index(fields=["created_at"], name="event_delivery_age_idx"),
        ]

    def __str__(self):
        return f"{self.type} {self.event_id}"
