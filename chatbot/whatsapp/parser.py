"""Meta's webhook JSON in, typed events out (cloud-api.md §3-6). No I/O, standard library only.

`parse(body)` walks every entry, change, message, status, error and echo (never only `[0]`: one
POST can carry up to 1000 updates) and never raises: whatever it cannot read becomes an
`Unsupported` event carrying the raw piece, so nothing Meta sends is dropped silently.

Here: `messages` (messages, statuses, errors), `smb_message_echoes` and the Calling API's `calls`.
Every other field, a field Meta adds later among them, is read in `fields`.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from .fields import (
    FIELDS,
    AccountUpdate,
    MarketingPreference,
    QualityUpdate,
    TemplateCategoryUpdate,
    TemplateStatusUpdate,
    Unsupported,
    account_update,
    as_dict,
    as_list,
    as_raw,
    as_str,
    as_time,
    each,
    error_details,
)
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
    target_wamid: str
    raw: dict


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One event of the Calling API (`calls` field): `connect`, `terminate`, a call `status`
    (RINGING, ACCEPTED, REJECTED…), a recording or transcription made available."""
    phone_number_id: str
    display_phone_number: str
    call_id: str
    event: str
    direction: str
    status: str
    from_wa_id: str
    from_user_id: str
    to: str
    profile: Profile | None
    timestamp: datetime | None
    duration: int | None
    raw: dict

    @property
    def missed(self):
        """A customer's call that ended without being answered."""
        return (self.event == "terminate" and self.direction == "USER_INITIATED"
                and self.status != "COMPLETED" and not self.duration)


@dataclass(frozen=True, slots=True)
class WebhookError:
    phone_number_id: str
    code: int | None
    title: str
    message: str
    details: str
    raw: dict


Event = (
    InboundMessage | StatusUpdate | EchoMessage | TemplateStatusUpdate | TemplateCategoryUpdate | QualityUpdate
    | AccountUpdate | MarketingPreference | CallEvent | WebhookError | Unsupported
)


# --- Readable text of a message (the `text` of the read API) -----------------------------------


def _interactive_text(obj):
    kind = as_str(obj.get("type"))
    reply = as_dict(obj.get(kind))
    return as_str(reply.get("body")) if kind == "nfm_reply" else as_str(reply.get("title"))


def _location_text(obj):
    return as_str(obj.get("name")) or as_str(obj.get("address"))


def _contacts_text(cards):
    names = (as_str(as_dict(as_dict(card).get("name")).get("formatted_name")) for card in as_list(cards))
    return ", ".join(name for name in names if name)


def _edit_text(obj):
    inner = as_dict(obj.get("message"))
    kind = as_str(inner.get("type"))
    return message_text(kind, inner.get(kind)) if kind != MessageType.EDIT else ""


TEXT_OF = {
    MessageType.TEXT: lambda obj: as_str(obj.get("body")),
    MessageType.IMAGE: lambda obj: as_str(obj.get("caption")),
    MessageType.VIDEO: lambda obj: as_str(obj.get("caption")),
    MessageType.DOCUMENT: lambda obj: as_str(obj.get("caption")),
    MessageType.INTERACTIVE: _interactive_text,
    MessageType.BUTTON: lambda obj: as_str(obj.get("text")),
    MessageType.REACTION: lambda obj: as_str(obj.get("emoji")),
    MessageType.LOCATION: _location_text,
    MessageType.ORDER: lambda obj: as_str(obj.get("text")),
    MessageType.SYSTEM: lambda obj: as_str(obj.get("body")),
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
        id=as_str(obj.get("id")), mime_type=as_str(obj.get("mime_type")), sha256=as_str(obj.get("sha256")),
        url=as_str(obj.get("url")), filename=as_str(obj.get("filename")), caption=as_str(obj.get("caption")),
        voice=obj.get("voice") is True, animated=obj.get("animated") is True, raw=obj,
    )


def _target(type, obj):
    if type == MessageType.REACTION:
        return as_str(obj.get("message_id"))
    if type in (MessageType.EDIT, MessageType.REVOKE):
        return as_str(obj.get("original_message_id"))
    return ""


def _payload(message, type):
    """The type's object as Meta sent it (a list for `contacts`), {} when there is none."""
    obj = message.get(type)
    return obj if isinstance(obj, dict | list) else {}


# --- One change's value -----------------------------------------------------------------------


def _metadata(value):
    metadata = as_dict(value.get("metadata"))
    return as_str(metadata.get("phone_number_id")), as_str(metadata.get("display_phone_number"))


def _profiles(value):
    profiles = []
    for item in as_list(value.get("contacts")):
        item = as_dict(item)
        profile = as_dict(item.get("profile"))
        profiles.append(Profile(
            wa_id=as_str(item.get("wa_id")), user_id=as_str(item.get("user_id")), name=as_str(profile.get("name")),
            username=as_str(profile.get("username")), raw=item,
        ))
    return profiles


def _profile_for(profiles, wa_id, user_id):
    """The contacts[] entry of the message's sender: never another's, whose BSUID and name would
    relabel the sender's contact. Meta writes a Brazilian mobile number with or without its ninth
    digit, `from` and `wa_id` not always alike (cloud-api.md §4), so both forms match."""
    for profile in profiles:
        if (wa_id and _same_number(profile.wa_id, wa_id)) or (user_id and profile.user_id == user_id):
            return profile
    return None


def _same_number(one, other):
    brazilian = one.startswith("55") and other.startswith("55")
    return one == other or (brazilian and _without_ninth(one) == _without_ninth(other))


def _without_ninth(number):
    return number[:4] + number[5:] if len(number) == 13 and number[4] == "9" else number


def _type(message):
    """Meta's `type`; without one (older or hand-made payloads), the known type whose object the
    message carries."""
    named = as_str(message.get("type"))
    if named:
        return named
    return next((kind.value for kind in MessageType if kind != MessageType.UNKNOWN and kind.value in message),
                MessageType.UNKNOWN.value)


def _inbound(message, value, profiles):
    phone_number_id, display = _metadata(value)
    type = _type(message)
    obj = message.get(type)
    context = as_dict(message.get("context"))
    wa_id, user_id = as_str(message.get("from")), as_str(message.get("from_user_id"))
    return InboundMessage(
        phone_number_id=phone_number_id, display_phone_number=display, wamid=as_str(message.get("id")),
        from_wa_id=wa_id, from_user_id=user_id, profile=_profile_for(profiles, wa_id, user_id),
        timestamp=as_time(message.get("timestamp")), type=type,
        text=message_text(type, obj if type != MessageType.CONTACTS else message.get("contacts")),
        payload=_payload(message, type), media=_media(type, obj), context=context,
        reply_to=as_str(context.get("id")), referral=as_dict(message.get("referral")),
        errors=as_list(message.get("errors")), target_wamid=_target(type, as_dict(obj)), raw=message,
    )


def _status(status, value):
    phone_number_id, _ = _metadata(value)
    return StatusUpdate(
        phone_number_id=phone_number_id, wamid=as_str(status.get("id")), status=as_str(status.get("status")).lower(),
        timestamp=as_time(status.get("timestamp")), recipient_id=as_str(status.get("recipient_id")),
        recipient_user_id=as_str(status.get("recipient_user_id")), errors=as_list(status.get("errors")),
        pricing=as_dict(status.get("pricing")), conversation=as_dict(status.get("conversation")),
        biz_opaque_callback_data=as_str(status.get("biz_opaque_callback_data")), raw=status,
    )


def _error(error, value):
    phone_number_id, _ = _metadata(value)
    code = error.get("code")
    return WebhookError(
        phone_number_id=phone_number_id, code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        title=as_str(error.get("title")), message=as_str(error.get("message")),
        details=error_details(error), raw=error,
    )


def _messages_change(value, waba_id):
    profiles = _profiles(value)
    return [
        *each(value, "messages", "messages", lambda item: _inbound(item, value, profiles)),
        *each(value, "statuses", "messages", lambda item: _status(item, value)),
        *each(value, "errors", "messages", lambda item: _error(item, value)),
    ]


def _call(call, value, profiles):
    phone_number_id, display = _metadata(value)
    wa_id, user_id = as_str(call.get("from")), as_str(call.get("from_user_id"))
    duration = call.get("duration")
    return CallEvent(
        phone_number_id=phone_number_id, display_phone_number=display, call_id=as_str(call.get("id")),
        event=as_str(call.get("event")), direction=as_str(call.get("direction")).upper(),
        status=as_str(call.get("status")).upper(), from_wa_id=wa_id, from_user_id=user_id,
        to=as_str(call.get("to")), profile=_profile_for(profiles, wa_id, user_id),
        timestamp=as_time(call.get("timestamp")),
        duration=duration if isinstance(duration, int) and not isinstance(duration, bool) else None, raw=call,
    )


def _call_status(status, value):
    phone_number_id, display = _metadata(value)
    return CallEvent(
        phone_number_id=phone_number_id, display_phone_number=display, call_id=as_str(status.get("id")),
        event="status", direction="", status=as_str(status.get("status")).upper(), from_wa_id="", from_user_id="",
        to=as_str(status.get("recipient_id")), profile=None, timestamp=as_time(status.get("timestamp")),
        duration=None, raw=status,
    )


def _calls_change(value, waba_id):
    """The Calling API: calls, the statuses of the business's calls, and errors."""
    profiles = _profiles(value)
    return [
        *each(value, "calls", "calls", lambda item: _call(item, value, profiles)),
        *each(value, "statuses", "calls", lambda item: _call_status(item, value)),
        *each(value, "errors", "calls", lambda item: _error(item, value)),
    ]


def _echo(echo, value):
    phone_number_id, display = _metadata(value)
    type = _type(echo)
    obj = echo.get(type)
    return EchoMessage(
        phone_number_id=phone_number_id, display_phone_number=display, wamid=as_str(echo.get("id")),
        to_wa_id=as_str(echo.get("to")), to_user_id=as_str(echo.get("to_user_id")),
        timestamp=as_time(echo.get("timestamp")),
        type=type, text=message_text(type, obj if type != MessageType.CONTACTS else echo.get("contacts")),
        payload=_payload(echo, type), media=_media(type, obj), target_wamid=_target(type, as_dict(obj)), raw=echo,
    )


def _echoes_change(value, waba_id):
    return each(value, "message_echoes", "smb_message_echoes", lambda item: _echo(item, value))


CHANGES = {
    "messages": _messages_change,
    "smb_message_echoes": _echoes_change,
    "calls": _calls_change,
    **FIELDS,
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
        return [Unsupported(field="", reason="body is not an object", raw=as_raw(body))]
    if body.get("object") != "whatsapp_business_account":
        return [Unsupported(field="", reason="object is not whatsapp_business_account", raw=body)]
    events = []
    for entry in as_list(body.get("entry")):
        if not isinstance(entry, dict):
            events.append(Unsupported(field="", reason="entry is not an object", raw=as_raw(entry)))
            continue
        waba_id = as_str(entry.get("id"))
        for change in as_list(entry.get("changes")):
            events.extend(_change(change, waba_id))
    if not events and not as_list(body.get("entry")):
        events.append(Unsupported(field="", reason="no entry", raw=body))
    return events


def _change(change, waba_id):
    if not isinstance(change, dict):
        return [Unsupported(field="", reason="change is not an object", raw=as_raw(change))]
    field = as_str(change.get("field"))
    value = change.get("value")
    if not field:
        return [Unsupported(field=field, reason="change has no field", raw=change)]
    if not isinstance(value, dict):
        return [Unsupported(field=field, reason="value is not an object", raw=change)]
    build = CHANGES.get(field)
    # A field Meta added after this was written: kept as an account event, visible, never lost.
    return build(value, waba_id) if build else account_update(field, value, waba_id)


def count(body):
    """How many updates of each kind a body carries (for the log line), without building events."""
    counts = Counter()
    for entry in as_list(as_dict(body).get("entry")):
        for change in as_list(as_dict(entry).get("changes")):
            change = as_dict(change)
            field = as_str(change.get("field")) or "unknown"
            if field not in ("messages", "calls"):
                counts[field] += 1
                continue
            value = as_dict(change.get("value"))
            for key in ("messages", "calls", "statuses", "errors"):
                counts[key] += len(as_list(value.get(key)))
    return +counts
