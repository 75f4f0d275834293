"""The data of the product: business numbers, contacts, sessions (tickets), messages, templates,
raw webhook events, API tokens and departments.

Idempotency lives in constraints, not in check-then-insert code: a `wamid` is unique, a contact
has one open session per business number, a template is unique per name and language.
"""

from .bot import (
    Action,
    BotSettings,
    BusinessHours,
    CannedReply,
    Flow,
    FlowOption,
    FlowStep,
    Holiday,
    KeywordRule,
)
from .campaigns import Campaign, Recipient
from .contacts import (
    WINDOW,
    Contact,
    ContactAttribute,
    Department,
    Label,
    Note,
    PhoneNumber,
    PhoneNumberQuerySet,
    Session,
)
from .integrations import EventDelivery, WebhookEndpoint
from .messages import Message, PendingStatus, Template, fit
from .operations import (
    DEFAULT_SCOPES,
    IDEMPOTENCY_TTL,
    AccountEvent,
    ApiToken,
    DailyStats,
    IdempotencyKey,
    RateLimit,
    Scope,
    WebhookEvent,
    WorkerBeat,
    hash_token,
)
from .reporting import ReportDay
from .team import DEFAULT_LIMIT, OnlineHour, OperatorProfile

__all__ = [
    "AccountEvent", "Action", "ApiToken", "BotSettings", "BusinessHours", "Campaign", "CannedReply", "Contact",
    "ContactAttribute", "DEFAULT_LIMIT", "DEFAULT_SCOPES", "DailyStats", "Department", "EventDelivery", "Flow",
    "FlowOption", "FlowStep", "Holiday", "IDEMPOTENCY_TTL", "IdempotencyKey", "KeywordRule", "Label", "Message",
    "Note", "OnlineHour", "OperatorProfile", "PendingStatus", "PhoneNumber", "PhoneNumberQuerySet", "RateLimit",
    "Recipient", "ReportDay", "Scope", "Session", "Template", "WINDOW", "WebhookEndpoint", "WebhookEvent",
    "WorkerBeat", "fit", "hash_token",
]
