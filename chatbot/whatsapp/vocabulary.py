"""Meta's vocabulary as types (cloud-api.md §4-8): message types, message statuses with their one
rank table, media kinds with Meta's size limits. Each enum falls back to UNKNOWN for a value Meta
adds later, as pywa's do, so new values are handled visibly instead of crashing.

Stored rows keep Meta's own string (an unknown type such as "hologram" is stored as sent); these
enums are what the code compares it with.
"""

from enum import StrEnum


class _WithUnknown(StrEnum):
    @classmethod
    def _missing_(cls, value):
        return cls.UNKNOWN


class MessageType(_WithUnknown):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    INTERACTIVE = "interactive"
    BUTTON = "button"
    REACTION = "reaction"
    ORDER = "order"
    SYSTEM = "system"
    UNSUPPORTED = "unsupported"
    REQUEST_WELCOME = "request_welcome"
    EDIT = "edit"
    REVOKE = "revoke"
    TEMPLATE = "template"
    CALL = "call"  # ours: a customer's missed call (Calling API), shown in the conversation
    UNKNOWN = "unknown"


# Messages about another message (shown on it, not in the thread on their own).
FOLLOW_UP_TYPES = frozenset({MessageType.REACTION, MessageType.EDIT, MessageType.REVOKE})
# What the customer did not write: it opens no 24-hour window (cloud-api.md §11). A missed call is
# kept on the safe side: Meta's sheet here does not say that a call opens the window.
NOT_FROM_CUSTOMER = frozenset({MessageType.SYSTEM, MessageType.CALL})


class Status(_WithUnknown):
    """A message's status: `received` for inbound; our own `queued` and `sending`, then Meta's."""

    RECEIVED = "received"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def rank(self):
        return STATUS_RANK.get(self, -1)


# Precedence, so any arrival order of status webhooks ends in the same state: a late `sent` never
# overwrites `failed`, and proof of delivery (`delivered`, `read`) outranks a `failed`.
STATUS_RANK = {Status.QUEUED: 0, Status.SENDING: 0, Status.SENT: 1, Status.FAILED: 2, Status.DELIVERED: 3,
               Status.READ: 4, Status.PLAYED: 5}
# The statuses Meta's webhooks report.
META_STATUSES = frozenset({Status.SENT, Status.DELIVERED, Status.READ, Status.PLAYED, Status.FAILED})


class MediaKind(_WithUnknown):
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    UNKNOWN = "unknown"


MB = 1024 * 1024
# Meta's size limits per media kind (cloud-api.md §8); a file over them is refused by Meta anyway.
MEDIA_LIMITS = {MediaKind.AUDIO: 16 * MB, MediaKind.DOCUMENT: 100 * MB, MediaKind.IMAGE: 5 * MB,
                MediaKind.STICKER: 500 * 1024, MediaKind.VIDEO: 16 * MB}
MEDIA_KINDS = frozenset(MEDIA_LIMITS)
# The media kinds that take a caption when sent (cloud-api.md §7).
CAPTIONED = frozenset({MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.DOCUMENT})
