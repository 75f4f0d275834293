"""Meta's webhook JSON in, typed events out (cloud-api.md §3-6). No I/O, standard library only.

`parse(body)` walks every entry, change, message, status, error and echo (never only `[0]`: one
POST can carry up to 1000 updates) and never raises: whatever it cannot read becomes an
`Unsupported` event carrying the raw piece, so nothing Meta sends is dropped silently.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from .vocabulary import MEDIA_KINDS, MessageType


@dataclass(frozen=True, slots=True)
class Profile:
    wa_id: str
    user_id: str
    name: str
    username: str
    raw: dict


@dataclass(frozen=True, slots=True)
class Media:
    id: str
    mime_type: str
    sha256: str
    url: str
    filename: str
    caption: str
    voice: bool
    animated: bool
    raw: dict


@dataclass(frozen=True, slots=True)
class InboundMessage:
    phone_number_id: str
    display_phone_number: str
    wamid: str
    from_wa_id: str
    from_user_id: str
    profile: Profile | None
    timestamp: datetime | None
    type: str
    text: str
    payload: dict | list
    media: Media | None
    context: dict
    reply_to: str
    referral: dict
    errors: list
    target_wamid: str
    raw: dict


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    phone_number_id: str
    wamid: str
    status: str
    timestamp: datetime | None
    recipient_id: str
    recipient_user_id: str
    errors: list
    pricing: dict
    conversation: dict
    biz_opaque_callback_data: str
    raw: dict


@dataclass(frozen=True, slots=True)
class EchoMessage:
    phone_number_id: str
    display_phone_number: str
    wamid: str
    to_wa_id: str
    to_user_id: str
    timestamp: datetime | None
    type: str
    text: str
    payload: dict | list
    media: Media | None
    raw: dict


@dataclass(frozen=True, slots=True)
class TemplateStatusUpdate:
    waba_id: str
    template_id: str
    name: str
    language: str
    event: str
    reason: str
    category: str
    raw: dict


@dataclass(frozen=True, slots=True)
class TemplateCategoryUpdate:
    waba_id: str
    template_id: str
    name: str
    language: str
    new_category: str
    previous_category: str
    correct_category: str
    raw: dict


@dataclass(frozen=True, slots=True)
class QualityUpdate:
    waba_id: str
    display_phone_number: str
    event: str
    limit: str
    raw: dict


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    waba_id: str
    field: str
    event: str
    raw: dict


@dataclass(frozen=True, slots=True)
class MarketingPreference:
    """The customer's own stop, resume or signup for the business's marketing (`user_preferences`)."""
    wa_id: str
    user_id: str
    category: str
    value: str
    timestamp: datetime | None
    raw: dict


@dataclass(frozen=True, slots=True)
class WebhookError:
    phone_number_id: str
    code: int | None
    title: str
    message: str
    details: str
    raw: dict


@dataclass(frozen=True, slots=True)
class Unsupported:
    field: str
    reason: str
    raw: dict


Event = (
    InboundMessage | StatusUpdate | EchoMessage | TemplateStatusUpdate | TemplateCategoryUpdate | QualityUpdate
    | AccountUpdate | WebhookError | Unsupported
)


# --- Small readers that never raise ------------------------------------------------------------


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def _str(value):
    """Meta's IDs and texts as strings; numbers (template IDs) are accepted, other types are not."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _time(value):
    """Meta's timestamps are Unix seconds, usually as strings (cloud-api.md §4)."""
    try:
        return datetime.fromtimestamp(int(_str(value)), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _raw(piece):
    return piece if isinstance(piece, dict) else {"value": piece}


# --- Readable text of a message (the `text` of the read API) -----------------------------------


def _interactive_text(obj):
    kind = _str(obj.get("type"))
    reply = _dict(obj.get(kind))
    return _str(reply.get("body")) if kind == "nfm_reply" else _str(reply.get("title"))


def _location_text(obj):
    return _str(obj.get("name")) or _str(obj.get("address"))


def _contacts_text(cards):
    names = (_str(_dict(_dict(card).get("name")).get("formatted_name")) for card in _list(cards))
    return ", ".join(name for name in names if name)


def _edit_text(obj):
    inner = _dict(obj.get("message"))
    kind = _str(inner.get("type"))
    return message_text(kind, inner.get(kind)) if kind != MessageType.EDIT else ""


TEXT_OF = {
    MessageType.TEXT: lambda obj: _str(obj.get("body")),
    MessageType.IMAGE: lambda obj: _str(obj.get("caption")),
    MessageType.VIDEO: lambda obj: _str(obj.get("caption")),
    MessageType.DOCUMENT: lambda obj: _str(obj.get("caption")),
    MessageType.INTERACTIVE: _interactive_text,
    MessageType.BUTTON: lambda obj: _str(obj.get("text")),
    MessageType.REACTION: lambda obj: _str(obj.get("emoji")),
    MessageType.LOCATION: _location_text,
    MessageType.ORDER: lambda obj: _str(obj.get("text")),
    MessageType.SYSTEM: lambda obj: _str(obj.get("body")),
    MessageType.EDIT: _edit_text,
}


def message_text(type, obj):
    """The human-readable text of a message of `type` whose type object is `obj` ('' when none)."""
    if type == MessageType.CONTACTS:
        return _contacts_text(obj)
    reader = TEXT_OF.get(type)
    return reader(obj) if reader and isinstance(obj, dict) else ""


def _media(type, obj):
    if type not in MEDIA_KINDS or not isinstance(obj, dict):
        return None
    return Media(
        id=_str(obj.get("id")), mime_type=_str(obj.get("mime_type")), sha256=_str(obj.get("sha256")),
        url=_str(obj.get("url")), filename=_str(obj.get("filename")), caption=_str(obj.get("caption")),
        voice=obj.get("voice") is True, animated=obj.get("animated") is True, raw=obj,
    )


def _target(type, obj):
    if type == MessageType.REACTION:
        return _str(obj.get("message_id"))
    if type in (MessageType.EDIT, MessageType.REVOKE):
        return _str(obj.get("original_message_id"))
    return ""


def _payload(message, type):
    """The type's object as Meta sent it (a list for `contacts`), {} when there is none."""
    obj = message.get(type)
    return obj if isinstance(obj, dict | list) else {}


# --- One change's value -----------------------------------------------------------------------


def _metadata(value):
    metadata = _dict(value.get("metadata"))
    return _str(metadata.get("phone_number_id")), _str(metadata.get("display_phone_number"))


def _profiles(value):
    profiles = []
    for item in _list(value.get("contacts")):
        item = _dict(item)
        profile = _dict(item.get("profile"))
        profiles.append(Profile(
            wa_id=_str(item.get("wa_id")), user_id=_str(item.get("user_id")), name=_str(profile.get("name")),
            username=_str(profile.get("username")), raw=item,
        ))
    return profiles


def _profile_for(profiles, wa_id, user_id):
    for profile in profiles:
        if (wa_id and profile.wa_id == wa_id) or (user_id and profile.user_id == user_id):
            return profile
    return profiles[0] if len(profiles) == 1 else None


def _inbound(message, value, profiles):
    phone_number_id, display = _metadata(value)
    type = _str(message.get("type")) or MessageType.UNKNOWN.value
    obj = message.get(type)
    context = _dict(message.get("context"))
    wa_id, user_id = _str(message.get("from")), _str(message.get("from_user_id"))
    return InboundMessage(
        phone_number_id=phone_number_id, display_phone_number=display, wamid=_str(message.get("id")),
        from_wa_id=wa_id, from_user_id=user_id, profile=_profile_for(profiles, wa_id, user_id),
        timestamp=_time(message.get("timestamp")), type=type,
        text=message_text(type, obj if type != MessageType.CONTACTS else message.get("contacts")),
        payload=_payload(message, type), media=_media(type, obj), context=context,
        reply_to=_str(context.get("id")), referral=_dict(message.get("referral")),
        errors=_list(message.get("errors")), target_wamid=_target(type, _dict(obj)), raw=message,
    )


def _status(status, value):
    phone_number_id, _ = _metadata(value)
    return StatusUpdate(
        phone_number_id=phone_number_id, wamid=_str(status.get("id")), status=_str(status.get("status")).lower(),
        timestamp=_time(status.get("timestamp")), recipient_id=_str(status.get("recipient_id")),
        recipient_user_id=_str(status.get("recipient_user_id")), errors=_list(status.get("errors")),
        pricing=_dict(status.get("pricing")), conversation=_dict(status.get("conversation")),
        biz_opaque_callback_data=_str(status.get("biz_opaque_callback_data")), raw=status,
    )


def _error(error, value):
    phone_number_id, _ = _metadata(value)
    code = error.get("code")
    return WebhookError(
        phone_number_id=phone_number_id, code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        title=_str(error.get("title")), message=_str(error.get("message")),
        details=_str(_dict(error.get("error_data")).get("details")), raw=error,
    )


def _items(value, key, field, build):
    """Build an event for each object of value[key]; a non-object item becomes Unsupported."""
    events = []
    for item in _list(value.get(key)):
        if isinstance(item, dict):
            events.append(build(item))
        else:
            events.append(Unsupported(field=field, reason=f"{key} item is not an object", raw=_raw(item)))
    return events


def _messages_change(value, waba_id):
    profiles = _profiles(value)
    return [
        *_items(value, "messages", "messages", lambda item: _inbound(item, value, profiles)),
        *_items(value, "statuses", "messages", lambda item: _status(item, value)),
        *_items(value, "errors", "messages", lambda item: _error(item, value)),
    ]


def _echo(echo, value):
    phone_number_id, display = _metadata(value)
    type = _str(echo.get("type")) or MessageType.UNKNOWN.value
    obj = echo.get(type)
    return EchoMessage(
        phone_number_id=phone_number_id, display_phone_number=display, wamid=_str(echo.get("id")),
        to_wa_id=_str(echo.get("to")), to_user_id=_str(echo.get("to_user_id")), timestamp=_time(echo.get("timestamp")),
        type=type, text=message_text(type, obj if type != MessageType.CONTACTS else echo.get("contacts")),
        payload=_payload(echo, type), media=_media(type, obj), raw=echo,
    )


def _echoes_change(value, waba_id):
    return _items(value, "message_echoes", "smb_message_echoes", lambda item: _echo(item, value))


def _template_status(value, waba_id):
    return [TemplateStatusUpdate(
        waba_id=waba_id, template_id=_str(value.get("message_template_id")),
        name=_str(value.get("message_template_name")), language=_str(value.get("message_template_language")),
        event=_str(value.get("event")), reason=_str(value.get("reason")),
        category=_str(value.get("message_template_category")), raw=value,
    )]


def _template_category(value, waba_id):
    return [TemplateCategoryUpdate(
        waba_id=waba_id, template_id=_str(value.get("message_template_id")),
        name=_str(value.get("message_template_name")), language=_str(value.get("message_template_language")),
        new_category=_str(value.get("new_category")), previous_category=_str(value.get("previous_category")),
        correct_category=_str(value.get("correct_category")), raw=value,
    )]


def _quality(value, waba_id):
    limit = _str(value.get("max_daily_conversations_per_business")) or _str(value.get("current_limit"))
    return [QualityUpdate(
        waba_id=waba_id, display_phone_number=_str(value.get("display_phone_number")),
        event=_str(value.get("event")), limit=limit, raw=value,
    )]


def _account(field):
    def build(value, waba_id):
        return [AccountUpdate(waba_id=waba_id, field=field, event=_str(value.get("event")), raw=value)]

    return build


def _preferences(value, waba_id):
    return _items(value, "user_preferences", "user_preferences", lambda item: MarketingPreference(
        wa_id=_str(item.get("wa_id")), user_id=_str(item.get("user_id")), category=_str(item.get("category")),
        value=_str(item.get("value")), timestamp=_time(item.get("timestamp")), raw=item))


CHANGES = {
    "messages": _messages_change,
    "smb_message_echoes": _echoes_change,
    "message_template_status_update": _template_status,
    "template_category_update": _template_category,
    "phone_number_quality_update": _quality,
    "account_update": _account("account_update"),
    "business_capability_update": _account("business_capability_update"),
    "account_alerts": _account("account_alerts"),
    "user_preferences": _preferences,
}


def storable(value):
    """`value` with what no database column can hold replaced by U+FFFD: NUL characters, and
    halves of UTF-16 surrogate pairs (JSON can escape one alone; UTF-8 cannot encode it).

    A loop, not recursion: a body nests as deep as its sender likes."""
    if not isinstance(value, dict | list):
        return _storable_text(value) if isinstance(value, str) else value
    top = {} if isinstance(value, dict) else []
    stack = [(value, top)]
    while stack:
        source, target = stack.pop()
        for key, item in source.items() if isinstance(source, dict) else enumerate(source):
            if isinstance(item, dict | list):
                copied = {} if isinstance(item, dict) else []
                stack.append((item, copied))
            else:
                copied = _storable_text(item) if isinstance(item, str) else item
            if isinstance(target, dict):
                target[_storable_text(key)] = copied
            else:
                target.append(copied)
    return top


def _storable_text(text):
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def parse(body):
    """Every event of one webhook body, in payload order; never raises."""
    if not isinstance(body, dict):
        return [Unsupported(field="", reason="body is not an object", raw=_raw(body))]
    if body.get("object") != "whatsapp_business_account":
        return [Unsupported(field="", reason="object is not whatsapp_business_account", raw=body)]
    events = []
    for entry in _list(body.get("entry")):
        if not isinstance(entry, dict):
            events.append(Unsupported(field="", reason="entry is not an object", raw=_raw(entry)))
            continue
        waba_id = _str(entry.get("id"))
        for change in _list(entry.get("changes")):
            events.extend(_change(change, waba_id))
    if not events and not _list(body.get("entry")):
        events.append(Unsupported(field="", reason="no entry", raw=body))
    return events


def _change(change, waba_id):
    if not isinstance(change, dict):
        return [Unsupported(field="", reason="change is not an object", raw=_raw(change))]
    field = _str(change.get("field"))
    value = change.get("value")
    build = CHANGES.get(field)
    if build is None:
        return [Unsupported(field=field, reason=f"unknown field {field!r}", raw=change)]
    if not isinstance(value, dict):
        return [Unsupported(field=field, reason="value is not an object", raw=change)]
    return build(value, waba_id)


def count(body):
    """How many updates of each kind a body carries (for the log line), without building events."""
    counts = Counter()
    for entry in _list(_dict(body).get("entry")):
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            field = _str(change.get("field")) or "unknown"
            if field != "messages":
                counts[field] += 1
                continue
            value = _dict(change.get("value"))
            for key in ("messages", "statuses", "errors"):
                counts[key] += len(_list(value.get(key)))
    return +counts
