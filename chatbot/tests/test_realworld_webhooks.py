"""Every webhook body of ../shared/realworld-webhooks/ (176 payloads other public projects wrote
for their tests, provenance in its SOURCES.md) posted signed and applied: each update is stored as
what it is, nothing fails and nothing is left unsupported. The folder is read where it lies, never
copied here; without it (a clone elsewhere) the test is skipped."""

import json
from collections import Counter
from pathlib import Path

import pytest

from chatbot.models import AccountEvent, Message, WebhookEvent
from chatbot.tests.helpers import post_signed

pytestmark = pytest.mark.django_db

FOLDER = Path(__file__).resolve().parents[3] / "shared" / "realworld-webhooks"
FILES = sorted(FOLDER.glob("*.json")) if FOLDER.is_dir() else []
# Message types known by their object when Meta's `type` is missing.
OBJECTS = ("text", "image", "audio", "video", "document", "sticker", "location", "contacts", "interactive",
           "button", "reaction", "order", "system")
# Fields applied other than as account events.
OWN_WAY = {"messages", "smb_message_echoes", "calls", "message_template_status_update", "user_preferences"}


def changes():
    for path in FILES:
        for entry in json.loads(path.read_bytes())["entry"]:
            for change in entry["changes"]:
                yield change["field"], change["value"]


def missed(call):
    return (call.get("event") == "terminate" and call.get("direction") == "USER_INITIATED"
            and call.get("status") != "COMPLETED" and not call.get("duration"))


def expected():
    """What the files should leave stored, worked out from the files alone: each wamid stored once
    (the first delivery; these fixtures reuse placeholder ids), every other update counted."""
    first = {}
    statuses = Counter()
    events = Counter()
    for field, value in changes():
        items = [("in", m.get("type") or next((k for k in OBJECTS if k in m), "unknown"), m.get("id"))
                 for m in value.get("messages", [])]
        items += [("out", echo.get("type"), echo.get("id")) for echo in value.get("message_echoes", [])]
        items += [("in", "call", call["id"]) for call in value.get("calls", []) if missed(call)]
        for number, (direction, kind, wamid) in enumerate(items):
            first.setdefault(wamid or f"no id {len(first)}.{number}", (direction, kind))
        if field == "calls":
            events["calls"] += sum(not missed(call) for call in value.get("calls", []))
            events["calls"] += len(value.get("statuses", []))
        elif field == "messages":
            statuses["statuses"] += len(value.get("statuses", []))
        elif field not in OWN_WAY:
            events[field] += 1
        events["errors"] += len(value.get("errors", []))
    return Counter(first.values()), statuses, +events


@pytest.mark.skipif(not FILES, reason=f"no real-world webhook corpus at {FOLDER} (it lives beside the repository)")
def test_every_realworld_payload_is_stored_as_what_it_is(client, run_tasks):
    for path in FILES:
        assert post_signed(client, path.read_bytes()).status_code == 200, path.name
    run_tasks()
    assert WebhookEvent.objects.count() == len(FILES)
    assert list(WebhookEvent.objects.exclude(result=WebhookEvent.Result.PROCESSED).values_list("error")) == []
    applied = Counter()
    for summary in WebhookEvent.objects.values_list("summary", flat=True):
        applied.update({key: value for key, value in summary.items() if isinstance(value, int)})
    messages, statuses, events = expected()
    stored = Counter(Message.objects.values_list("direction", "type"))
    assert stored == messages
    assert applied["statuses"] + applied["pending_statuses"] == statuses["statuses"]
    assert Counter(AccountEvent.objects.values_list("field", flat=True)) == events
    assert applied["unsupported"] == 0
