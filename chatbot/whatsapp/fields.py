"""Meta's webhook fields other than `messages` and `smb_message_echoes` (cloud-api.md §6), and the
small readers every part of the parser uses. No I/O, standard library only.

Templates, quality and the marketing preference have their own events, applied each its own way;
every other field (account, groups, ad events, a field Meta adds later) is an `AccountUpdate`,
kept as an account event with its raw value.
"""

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class Unsupported:
    field: str
    reason: str
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


# --- Small readers that never raise ------------------------------------------------------------


def as_dict(value):
    return value if isinstance(value, dict) else {}


def as_list(value):
    return value if isinstance(value, list) else []


def as_str(value):
    """Meta's IDs and texts as strings; numbers (template IDs) are accepted, other types are not."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def as_time(value):
    """Meta's timestamps are Unix seconds, usually as strings (cloud-api.md §4)."""
    try:
        return datetime.fromtimestamp(int(as_str(value)), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def as_raw(piece):
    return piece if isinstance(piece, dict) else {"value": piece}


def error_details(error):
    """An error's details: `error_data.details`, or `details` beside the code in Meta's older shape."""
    return as_str(as_dict(error.get("error_data")).get("details")) or as_str(error.get("details"))


def each(value, key, field, build):
    """Build an event for each object of value[key]; a non-object item becomes Unsupported."""
    events = []
    for item in as_list(value.get(key)):
        if isinstance(item, dict):
            events.append(build(item))
        else:
            events.append(Unsupported(field=field, reason=f"{key} item is not an object", raw=as_raw(item)))
    return events


def _template_status(value, waba_id):
    return [TemplateStatusUpdate(
        waba_id=waba_id, template_id=as_str(value.get("message_template_id")),
        name=as_str(value.get("message_template_name")), language=as_str(value.get("message_template_language")),
        event=as_str(value.get("event")), reason=as_str(value.get("reason")),
        category=as_str(value.get("message_template_category")), raw=value,
    )]


def _template_category(value, waba_id):
    return [TemplateCategoryUpdate(
        waba_id=waba_id, template_id=as_str(value.get("message_template_id")),
        name=as_str(value.get("message_template_name")), language=as_str(value.get("message_template_language")),
        new_category=as_str(value.get("new_category")), previous_category=as_str(value.get("previous_category")),
        correct_category=as_str(value.get("correct_category")), raw=value,
    )]


def _quality(value, waba_id):
    limit = as_str(value.get("max_daily_conversations_per_business")) or as_str(value.get("current_limit"))
    return [QualityUpdate(
        waba_id=waba_id, display_phone_number=as_str(value.get("display_phone_number")),
        event=as_str(value.get("event")), limit=limit, raw=value,
    )]


def account_update(field, value, waba_id):
    """Any field kept as an account event: what happened is its `event`, `decision` or `type`, or
    that of the first item of the list it carries (`groups[]`, `automatic_events[]`)."""
    event = as_str(value.get("event")) or as_str(value.get("decision")) or as_str(value.get("type"))
    if not event:
        first = next((as_dict(items[0]) for items in value.values() if isinstance(items, list) and items), {})
        event = as_str(first.get("type")) or as_str(first.get("event_name")) or as_str(first.get("event"))
    return [AccountUpdate(waba_id=waba_id, field=field, event=event, raw=value)]


def _account(field):
    return lambda value, waba_id: account_update(field, value, waba_id)


def _preferences(value, waba_id):
    return each(value, "user_preferences", "user_preferences", lambda item: MarketingPreference(
        wa_id=as_str(item.get("wa_id")), user_id=as_str(item.get("user_id")), category=as_str(item.get("category")),
        value=as_str(item.get("value")), timestamp=as_time(item.get("timestamp")), raw=item))




# The fields kept as account events (cloud-api.md §6, and what other projects' payloads carry); a
# field not named anywhere here is kept the same way (parser.parse), so a new one is never lost.
ACCOUNT_FIELDS = (
    "account_update", "business_capability_update", "account_alerts", "account_review_update",
    "account_settings_update", "phone_number_name_update", "message_template_components_update",
    "message_template_quality_update", "automatic_events", "group_lifecycle_update",
    "group_participants_update", "group_settings_update", "group_status_update",
)

FIELDS = {
    "message_template_status_update": _template_status,
    "template_category_update": _template_category,
    "phone_number_quality_update": _quality,
    "user_preferences": _preferences,
    **{field: _account(field) for field in ACCOUNT_FIELDS},
}
