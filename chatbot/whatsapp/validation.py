"""Outbound Cloud API message objects checked against Meta's documented limits before they are
queued (cloud-api.md §7, WM:* pages), so an integrator hears at once, with the field named, what
Meta would otherwise refuse minutes later in a status webhook. Pure: no I/O, no database.
"""

import math
import re
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from .vocabulary import MediaKind, MessageType

# Meta fills these in itself when they are missing, so we accept them and send our own.
DROPPED = {"messaging_product": "whatsapp", "recipient_type": "individual"}
KEPT = {"to", "type", "context", "biz_opaque_callback_data", "phone_number_id"}
# Keys each media object may carry besides id/link (WM:image-messages … WM:sticker-messages).
MEDIA = {MediaKind.IMAGE: {"caption"}, MediaKind.VIDEO: {"caption"}, MediaKind.DOCUMENT: {"caption", "filename"},
         MediaKind.AUDIO: {"voice"}, MediaKind.STICKER: set()}
# Send-side template component types; Meta compares them case-insensitively.
COMPONENT_TYPES = {"header", "body", "footer", "button", "carousel", "limited_time_offer"}
TEMPLATE_NAME = re.compile(r"[a-z0-9_]+")
# A business-scoped user ID: a two-letter country code, a period, up to 128 letters and digits
# (US.13491208655302741918), with ENT. before them for a parent BSUID (WA:business-scoped-user-ids).
BSUID = re.compile(r"[A-Z]{2}(\.[A-Za-z0-9]+)+")
PLACEHOLDER = re.compile(r"{{\s*([A-Za-z0-9_]+)\s*}}")
WAMID_MAX = 255  # our column; Meta's message IDs are far shorter


class InvalidMessage(Exception):
    def __init__(self, message, field=""):
        super().__init__(message)
        self.message = str(message)
        self.field = field


def _at(path, key):
    return f"{path}.{key}" if path else key


def _fail(message, field, **params):
    """Raise with message (already passed through _ for extraction), %-formatted with field and params."""
    raise InvalidMessage(message % {"field": field, **params}, field)


def _object(value, path):
    if not isinstance(value, dict):
        _fail(_("%(what)s must be a JSON object."), path, what=path or _("The request body"))
    return value


def _list(value, path, low=None, high=None):
    if not isinstance(value, list):
        _fail(_("%(field)s must be a list."), path)
    if low is not None and not low <= len(value) <= high:
        _fail(_("%(field)s holds %(low)d to %(high)d items (got %(count)d)."), path, low=low, high=high,
              count=len(value))
    return value


def _text(obj, key, path, max_len=None, required=True):
    """obj[key] as a string of at most max_len characters; "" when absent and not required."""
    field, value = _at(path, key), obj.get(key)
    if value is None:
        if required:
            _fail(_("%(field)s is required."), field)
        return ""
    if not isinstance(value, str):
        _fail(_("%(field)s must be a string."), field)
    if required and not value.strip():
        _fail(_("%(field)s must not be empty."), field)
    if max_len is not None and len(value) > max_len:
        _fail(_("%(field)s has at most %(limit)d characters (got %(count)d)."), field, limit=max_len,
              count=len(value))
    return value


def _equals(obj, key, path, expected):
    if obj.get(key) != expected:
        _fail(_("%(field)s must be \"%(value)s\"."), _at(path, key), value=expected)


def _url(obj, key, path):
    value = _text(obj, key, path)
    parts = urlsplit(value)
    if value != value.strip() or parts.scheme not in {"http", "https"} or not parts.hostname:
        _fail(_("%(field)s must be an http(s) URL."), _at(path, key))
    return value


def _bool(obj, key, path):
    if key in obj and not isinstance(obj[key], bool):
        _fail(_("%(field)s must be true or false."), _at(path, key))


def _only(obj, keys, path):
    for key in obj:
        if key not in keys:
            _fail(_("%(field)s is not a field Meta accepts here."), _at(path, key))


def recipient(value, field="to"):
    """A customer's address as Meta takes it: a phone number's digits (written with or without +,
    spaces, dots, dashes, parentheses) or a business-scoped user ID. The one check of a number,
    for the API, the `send` and `simulate` commands and the dashboard."""
    if not isinstance(value, str) or not value.strip():
        _fail(_("%(field)s is required: the customer's phone number with country code."), field)
    value = value.strip()
    digits = re.sub(r"[\s().-]", "", value).removeprefix("+")
    if digits.isascii() and digits.isdigit():
        if not 8 <= len(digits) <= 15:
            _fail(_("%(field)s must be a phone number with country code: 8 to 15 digits (got %(count)d)."), field,
                  count=len(digits))
        return digits
    if len(value) <= 256 and BSUID.fullmatch(value):
        return value
    _fail(_("%(field)s must be a phone number with country code (5511987654321) or a business-scoped user ID "
            "(US.13491208655302741918)."), field)


# --- Per type --------------------------------------------------------------------------------


def _media_source(obj, path):
    if ("id" in obj) == ("link" in obj):
        _fail(_("%(field)s needs exactly one of id (an uploaded media ID) or link (an http(s) URL)."), path)
    if "id" in obj:
        _text(obj, "id", path)
    else:
        _url(obj, "link", path)


def check_media(obj, path):
    extra = MEDIA[path]
    if "caption" in obj and "caption" not in extra:
        _fail(_("%(type)s messages take no caption (only image, video and document do)."), f"{path}.caption",
              type=path)
    _only(obj, {"id", "link"} | extra, path)
    _media_source(obj, path)
    _text(obj, "caption", path, 1024, required=False)
    _text(obj, "filename", path, 240, required=False)
    _bool(obj, "voice", path)


def check_text(obj, path):
    _only(obj, {"body", "preview_url"}, path)
    _text(obj, "body", path, 4096)
    _bool(obj, "preview_url", path)


def _coordinate(obj, key, path, bound):
    value = obj.get(key)
    try:
        # Meta accepts numeric strings too; a bool is a number to Python, not to Meta.
        number = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond any float
        number = None
    if number is None or not math.isfinite(number) or not -bound <= number <= bound:
        _fail(_("%(field)s must be a number from -%(bound)d to %(bound)d."), _at(path, key), bound=bound)


def check_location(obj, path):
    _only(obj, {"latitude", "longitude", "name", "address"}, path)
    _coordinate(obj, "latitude", path, 90)
    _coordinate(obj, "longitude", path, 180)
    _text(obj, "name", path, 1000, required=False)
    _text(obj, "address", path, 1000, required=False)


def check_contacts(cards, path):
    for index, card in enumerate(_list(cards, path, 1, 100)):
        card_path = f"{path}[{index}]"
        _object(card, card_path)
        _text(_object(card.get("name"), f"{card_path}.name"), "formatted_name", f"{card_path}.name")
        for key in ("phones", "emails", "urls", "addresses"):
            if key in card:
                for item_index, item in enumerate(_list(card[key], f"{card_path}.{key}")):
                    _object(item, f"{card_path}.{key}[{item_index}]")


def _unique(values, what, fold=False):
    """values: (value, field) pairs; the second occurrence of a value is the error."""
    seen = set()
    for value, field in values:
        key = value.casefold() if fold else value
        if key in seen:
            _fail(_("%(what)s must be unique (\"%(value)s\" repeats)."), field, what=what, value=value)
        seen.add(key)


def _button_action(action, path):
    ids, titles = [], []
    for index, button in enumerate(_list(action.get("buttons"), f"{path}.buttons", 1, 3)):
        button_path = f"{path}.buttons[{index}]"
        _equals(_object(button, button_path), "type", button_path, "reply")
        reply = _object(button.get("reply"), f"{button_path}.reply")
        ids.append((_text(reply, "id", f"{button_path}.reply", 256), f"{button_path}.reply.id"))
        titles.append((_text(reply, "title", f"{button_path}.reply", 20), f"{button_path}.reply.title"))
    _unique(ids, _("Each reply button id"))
    # Two titles that differ only in case look the same on the phone; Meta refuses them.
    _unique(titles, _("Each reply button title (ignoring case)"), fold=True)


def _list_action(action, path):
    _text(action, "button", path, 20)
    sections = _list(action.get("sections"), f"{path}.sections", 1, 10)
    ids, total = [], 0
    for index, section in enumerate(sections):
        section_path = f"{path}.sections[{index}]"
        _object(section, section_path)
        _text(section, "title", section_path, 24, required=len(sections) > 1)
        rows = _list(section.get("rows"), f"{section_path}.rows", 1, 10)
        total += len(rows)
        for row_index, row in enumerate(rows):
            row_path = f"{section_path}.rows[{row_index}]"
            _object(row, row_path)
            ids.append((_text(row, "id", row_path, 200), f"{row_path}.id"))
            _text(row, "title", row_path, 24)
            _text(row, "description", row_path, 72, required=False)
    if total > 10:
        _fail(_("A list message has at most 10 rows across all its sections (got %(count)d)."), f"{path}.sections",
              count=total)
    _unique(ids, _("Each row id of a list message"))


def _cta_url_action(action, path):
    _equals(action, "name", path, "cta_url")
    parameters = _object(action.get("parameters"), f"{path}.parameters")
    _text(parameters, "display_text", f"{path}.parameters", 20)
    _url(parameters, "url", f"{path}.parameters")


# interactive.type → (body.text limit, header types allowed, action checker). Other interactive
# types (product, product_list, flow, …) need catalog or Flow setup this service does not manage,
# so they are refused rather than passed through unchecked.
HEADER_MEDIA = ("text", "image", "video", "document")
INTERACTIVE = {
    "button": (1024, HEADER_MEDIA, _button_action),
    "list": (4096, ("text",), _list_action),
    "cta_url": (1024, HEADER_MEDIA, _cta_url_action),
    "location_request_message": (1024, (), lambda action, path: _equals(action, "name", path, "send_location")),
}


def _header(header, path, allowed):
    _object(header, path)
    kind = header.get("type")
    if not allowed:
        _fail(_("This interactive message takes no header."), f"{path}.type")
    if not isinstance(kind, str) or kind not in allowed:
        _fail(_("%(field)s must be one of: %(allowed)s."), f"{path}.type", allowed=", ".join(allowed))
    if kind == "text":
        _text(header, "text", path, 60)
    else:
        _media_source(_object(header.get(kind), f"{path}.{kind}"), f"{path}.{kind}")


def check_interactive(obj, path):
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in INTERACTIVE:
        _fail(_("%(field)s must be one of: %(allowed)s."), f"{path}.type", allowed=", ".join(INTERACTIVE))
    body_limit, headers, check_action = INTERACTIVE[kind]
    if "header" in obj:
        _header(obj["header"], f"{path}.header", headers)
    _text(_object(obj.get("body"), f"{path}.body"), "text", f"{path}.body", body_limit)
    if "footer" in obj:
        _text(_object(obj["footer"], f"{path}.footer"), "text", f"{path}.footer", 60)
    check_action(_object(obj.get("action"), f"{path}.action"), f"{path}.action")


def check_template(obj, path):
    name = _text(obj, "name", path, 512)
    if not TEMPLATE_NAME.fullmatch(name):
        _fail(_("A template name has only lowercase letters, digits and underscores."), f"{path}.name")
    _text(_object(obj.get("language"), f"{path}.language"), "code", f"{path}.language")
    for index, component in enumerate(_list(obj.get("components", []), f"{path}.components")):
        component_path = f"{path}.components[{index}]"
        kind = _object(component, component_path).get("type")
        if not isinstance(kind, str) or kind.lower() not in COMPONENT_TYPES:
            _fail(_("%(field)s must be one of: %(allowed)s."), f"{component_path}.type",
                  allowed=", ".join(sorted(COMPONENT_TYPES)))
        if kind.lower() == "button":
            for key in ("sub_type", "index"):
                if key not in component:
                    _fail(_("A button component needs sub_type and index."), f"{component_path}.{key}")
        parameters = _list(component.get("parameters", []), f"{component_path}.parameters")
        for parameter_index, parameter in enumerate(parameters):
            parameter_path = f"{component_path}.parameters[{parameter_index}]"
            _text(_object(parameter, parameter_path), "type", parameter_path)


def check_reaction(obj, path):
    _only(obj, {"message_id", "emoji"}, path)
    _text(obj, "message_id", path, WAMID_MAX)
    emoji = obj.get("emoji")
    # "" removes the reaction; 10 characters leave room for flags, skin tones and ZWJ sequences.
    if not isinstance(emoji, str) or len(emoji) > 10:
        _fail(_("%(field)s must be one emoji (at most 10 characters), or \"\" to remove the reaction."),
              f"{path}.emoji")


CHECKS = {MessageType.TEXT: check_text, **dict.fromkeys(MEDIA, check_media), MessageType.LOCATION: check_location,
          MessageType.CONTACTS: check_contacts, MessageType.INTERACTIVE: check_interactive,
          MessageType.TEMPLATE: check_template, MessageType.REACTION: check_reaction}


def _storable(value, path):
    """Refuse text no database can store and no message needs: a NUL character, or half of a
    UTF-16 surrogate pair (JSON can escape one, UTF-8 cannot encode it)."""
    if isinstance(value, str):
        if "\x00" in value:
            _fail(_("%(field)s contains a NUL character (\\u0000)."), path or "body")
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                _fail(_("%(field)s contains an unpaired UTF-16 surrogate (an escape like \\ud83d alone)."),
                      path or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, path or "body")
            _storable(item, _at(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _storable(item, f"{path}[{index}]")


def clean_message(data):
    """The message object to send to Meta for an integrator's parsed JSON body (design.md, "Send API"):
    to (digits only, or a BSUID), type, the type's object, and context / biz_opaque_callback_data when
    given. Raises InvalidMessage naming the first field Meta would refuse."""
    _object(data, "")
    _storable(data, "")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in CHECKS:
        _fail(_("%(field)s must be one of: %(allowed)s."), "type", allowed=", ".join(CHECKS))
    for key in data:
        if key in DROPPED:
            _equals(data, key, "", DROPPED[key])
    _only(data, DROPPED.keys() | KEPT | {kind}, "")
    if "phone_number_id" in data:
        _text(data, "phone_number_id", "")
    message = {"to": recipient(data.get("to")), "type": kind}
    body = data.get(kind)
    if body is None:
        _fail(_("A %(field)s message needs a \"%(field)s\" object."), kind)
    CHECKS[kind](body if kind == MessageType.CONTACTS else _object(body, kind), kind)
    message[kind] = body
    if "context" in data:
        if kind == "reaction":
            _fail(_("A reaction cannot reply to a message: leave out context."), "context")
        message["context"] = {"message_id": _text(_object(data["context"], "context"), "message_id", "context",
                                                  WAMID_MAX)}
    if data.get("biz_opaque_callback_data") is not None:
        message["biz_opaque_callback_data"] = _text(data, "biz_opaque_callback_data", "", 512, required=False)
    return message


# --- Templates -------------------------------------------------------------------------------


def template_parameter_counts(components):
    """{"header": n, "body": m}: the distinct {{1}} / {{name}} placeholders of a synced template's
    HEADER (text) and BODY components (Meta's management shape, WA:templates/template-management)."""
    counts = {"header": 0, "body": 0}
    for component in components or []:
        kind = str(component.get("type", "")).lower() if isinstance(component, dict) else ""
        if kind in counts and isinstance(component.get("text"), str):
            counts[kind] = len(set(PLACEHOLDER.findall(component["text"])))
    return counts


def _media_header(components):
    return any(isinstance(c, dict) and str(c.get("type", "")).upper() == "HEADER"
               and str(c.get("format", "TEXT")).upper() != "TEXT" for c in components or [])


def check_template_parameters(message, components):
    """Raise InvalidMessage when a cleaned template message gives a different number of body (or
    text header) parameters than the synced template expects: Meta would fail it with 132000 after
    we queued it."""
    expected = template_parameter_counts(components)
    given, where = {"header": 0, "body": 0}, {}
    for index, component in enumerate(message["template"].get("components", [])):
        kind = str(component.get("type", "")).lower()
        if kind in given:
            given[kind] = len(component.get("parameters", []))
            where[kind] = f"template.components[{index}].parameters"
    for kind in ("header", "body"):
        if kind == "header" and _media_header(components):
            continue  # an image/video/document header's parameter is the media, not a placeholder
        if given[kind] != expected[kind]:
            _fail(_("The synced template's %(part)s expects %(expected)d parameters (got %(given)d)."),
                  where.get(kind, "template.components"), part=kind, expected=expected[kind], given=given[kind])


def outbound_text(message):
    """What a person reads of an outbound message object, for the dashboard and the read API."""
    kind = message.get("type")
    body = message.get(kind)
    if kind == "contacts" and isinstance(body, list) and body and isinstance(body[0], dict):
        return (body[0].get("name") or {}).get("formatted_name", "")
    if not isinstance(body, dict):
        return ""
    if kind == "text":
        return body.get("body", "")
    if kind in MEDIA:
        return body.get("caption") or body.get("filename") or ""
    if kind == "interactive":
        return (body.get("body") or {}).get("text", "")
    if kind == "location":
        return body.get("name") or f"{body.get('latitude')}, {body.get('longitude')}"
    if kind in ("template", "reaction"):
        return body.get("name" if kind == "template" else "emoji", "")
    return ""
