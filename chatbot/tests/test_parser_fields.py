"""chatbot/whatsapp/parser.py and fields.py on the shapes other projects' real payloads carry (issue 17):
calls, echoes of edits and deletions, Meta's older error shape, a message without `type`, the
statuses' billing blocks, the fields kept as account events, and contacts[] matched to senders.
Payloads are written inline, each the shape of one in ../shared/realworld-webhooks/."""

import pytest

from chatbot.whatsapp import parser

METADATA = {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}


def body(field, value):
    """Meta's envelope around one change."""
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "time": 1752583107, "changes": [{"field": field, "value": value}]}]}


def messages(*items, contacts=(), key="messages"):
    return body("messages", {"messaging_product": "whatsapp", "metadata": METADATA, "contacts": list(contacts),
                             key: list(items)})


def contact(wa_id, name="Test Name", user_id=""):
    return {"profile": {"name": name}, "wa_id": wa_id, **({"user_id": user_id} if user_id else {})}


def call(event, **extra):
    return {"id": "wacid.HBgLMTU1", "from": "5511987654321", "to": "15550783881", "event": event,
            "timestamp": "1752583107", **extra}


def calls(*items, contacts=(), statuses=()):
    return body("calls", {"messaging_product": "whatsapp", "metadata": METADATA, "contacts": list(contacts),
                          "calls": list(items), **({"statuses": list(statuses)} if statuses else {})})


# --- 1. Calls ---


def test_call_events_are_parsed_with_their_caller():
    events = parser.parse(calls(
        call("connect", direction="USER_INITIATED", session={"sdp": "…", "sdp_type": "offer"}),
        call("terminate", direction="USER_INITIATED", status="FAILED"),
        call("terminate", direction="USER_INITIATED", status="COMPLETED", duration=120),
        contacts=[contact("5511987654321", "Maria", "BR.1")],
        statuses=[{"id": "wacid.X", "timestamp": "1671644824", "type": "call", "status": "RINGING",
                   "recipient_id": "5511987654321"}],
    ))
    assert [type(event).__name__ for event in events] == ["CallEvent"] * 4
    connect, missed, answered, ringing = events
    assert (connect.event, connect.direction, connect.call_id) == ("connect", "USER_INITIATED", "wacid.HBgLMTU1")
    assert connect.profile.name == "Maria" and connect.from_wa_id == "5511987654321"
    assert [event.missed for event in events] == [False, True, False, False]
    assert answered.duration == 120
    assert (ringing.event, ringing.status, ringing.to) == ("status", "RINGING", "5511987654321")


def test_a_business_call_that_failed_is_not_a_missed_call():
    event, = parser.parse(calls(call("terminate", direction="BUSINESS_INITIATED", status="FAILED")))
    assert not event.missed


def test_call_errors_are_webhook_errors():
    value = calls(call("terminate", direction="BUSINESS_INITIATED", status="COMPLETED", duration=5))
    value["entry"][0]["changes"][0]["value"]["errors"] = [
        {"code": 12455, "message": "ERROR_TITLE", "error_data": {"details": "ERROR_DETAILS"}}]
    error = parser.parse(value)[-1]
    assert isinstance(error, parser.WebhookError) and (error.code, error.details) == (12455, "ERROR_DETAILS")


def test_call_permission_reply_is_an_interactive_message():
    event, = parser.parse(messages({
        "from": "5511987654321", "id": "wamid.CPR", "timestamp": "1752582182", "type": "interactive",
        "context": {"from": "15550783881", "id": "wamid.REQ"},
        "interactive": {"type": "call_permission_reply",
                        "call_permission_reply": {"response": "accept", "expiration_timestamp": 1753186982}},
    }))
    assert event.type == "interactive" and event.payload["type"] == "call_permission_reply"
    assert event.reply_to == "wamid.REQ"


# --- 2. Echoes of edits and deletions ---


@pytest.mark.parametrize(("kind", "obj", "text"), [
    ("edit", {"original_message_id": "wamid.ORIG", "message": {"type": "text", "text": {"body": "Corrigido"}}},
     "Corrigido"),
    ("revoke", {"original_message_id": "wamid.ORIG"}, ""),
])
def test_echoes_of_edits_and_deletions_name_their_original(kind, obj, text):
    event, = parser.parse(body("smb_message_echoes", {"messaging_product": "whatsapp", "metadata": METADATA,
                                                      "message_echoes": [{
                                                          "from": "15550783881", "to": "5511987654321",
                                                          "id": "wamid.E", "timestamp": "1697044968",
                                                          "type": kind, kind: obj}]}))
    assert isinstance(event, parser.EchoMessage)
    assert (event.type, event.target_wamid, event.text) == (kind, "wamid.ORIG", text)


# --- 3. Meta's older error shape ---


def test_errors_with_details_at_the_top_keep_them():
    older = {"code": 131051, "details": "Message type is not currently supported", "title": "Unsupported message type"}
    event, = parser.parse(messages(older, key="errors"))
    assert event.details == "Message type is not currently supported"
    assert parser.error_details({"code": 1, "error_data": {"details": "new"}, "details": "old"}) == "new"


# --- 4. A message without `type` ---


def test_a_message_without_type_takes_the_type_of_its_object():
    event, = parser.parse(messages({"from": "16505551234", "id": "wamid.LOC", "timestamp": "1680123458",
                                    "location": {"latitude": 37.77, "longitude": -122.41, "name": "San Francisco"}}))
    assert event.type == "location" and event.text == "San Francisco"
    bare, = parser.parse(messages({"from": "16505551234", "id": "wamid.NONE", "timestamp": "1680123458"}))
    assert bare.type == "unknown"


# --- 5. The statuses' billing blocks are parsed (applied in test_inbound_fields) ---


def test_statuses_keep_conversation_and_pricing():
    status, = parser.parse(messages({
        "id": "wamid.S", "status": "sent", "timestamp": "1668179000", "recipient_id": "5511987654321",
        "conversation": {"id": "CONV1", "expiration_timestamp": "1668265400", "origin": {"type": "marketing"}},
        "pricing": {"billable": True, "pricing_model": "CBP", "category": "marketing"},
    }, key="statuses"))
    assert status.conversation["origin"]["type"] == "marketing" and status.pricing["billable"] is True


# --- 6. Fields kept as account events ---


@pytest.mark.parametrize(("field", "value", "event"), [
    ("group_lifecycle_update", {"metadata": METADATA, "groups": [{"group_id": "G1", "type": "group_create"}]},
     "group_create"),
    ("group_participants_update", {"groups": [{"group_id": "G2", "type": "group_participants_add"}]},
     "group_participants_add"),
    ("group_settings_update", {"groups": [{"group_id": "G3", "type": "group_settings_update"}]},
     "group_settings_update"),
    ("group_status_update", {"groups": [{"group_id": "G4", "type": "group_suspend"}]}, "group_suspend"),
    ("automatic_events", {"automatic_events": [{"id": "wamid.A", "event_name": "Purchase", "ctwa_clid": "c",
                                                "custom_data": {"currency": "BRL", "value": 120}}]}, "Purchase"),
    ("message_template_components_update", {"message_template_id": 1, "message_template_name": "oi",
                                            "message_template_language": "pt_BR"}, ""),
    ("message_template_quality_update", {"previous_quality_score": "GREEN", "new_quality_score": "YELLOW"}, ""),
    ("phone_number_name_update", {"decision": "APPROVED", "requested_verified_name": "Loja"}, "APPROVED"),
    ("account_review_update", {"decision": "REJECTED"}, "REJECTED"),
    ("account_settings_update", {"type": "phone_number_settings", "phone_number_settings": {}},
     "phone_number_settings"),
    ("some_field_meta_adds_in_2027", {"event": "NEW_THING"}, "NEW_THING"),
])
def test_other_fields_are_account_updates(field, value, event):
    update, = parser.parse(body(field, value))
    assert isinstance(update, parser.AccountUpdate)
    assert (update.field, update.event, update.waba_id, update.raw) == (field, event, "102290129340398", value)


def test_a_change_without_a_field_is_unsupported():
    assert isinstance(parser.parse(body("", {}))[0], parser.Unsupported)


# --- 7. contacts[] matched to each message's sender ---


def text_from(wa_id, wamid, **extra):
    return {"from": wa_id, "id": wamid, "timestamp": "1680123458", "type": "text", "text": {"body": "oi"}, **extra}


def test_a_contacts_entry_belongs_only_to_its_sender():
    one, two = parser.parse(messages(
        text_from("5511987654321", "wamid.1"), text_from("5521912345678", "wamid.2"),
        contacts=[contact("5521912345678", "Bea", "BR.BEA")],
    ))
    assert one.profile is None  # not Bea's BSUID and name on Maria's contact
    assert two.profile.user_id == "BR.BEA"


def test_a_single_entry_of_someone_else_is_not_the_senders():
    event, = parser.parse(messages(text_from("16505551234", "wamid.X"),
                                   contacts=[contact("972987654321", user_id="US.1349")]))
    assert event.profile is None


def test_entries_match_by_bsuid_and_by_either_brazilian_form():
    by_bsuid, = parser.parse(messages(text_from("", "wamid.U", from_user_id="BR.ANA"),
                                      contacts=[contact("", "Ana", "BR.ANA")]))
    assert by_bsuid.profile.name == "Ana"
    ninth, = parser.parse(messages(text_from("5511987654321", "wamid.N"), contacts=[contact("551187654321", "Zé")]))
    assert ninth.profile.name == "Zé"


def test_count_counts_calls():
    assert parser.count(calls(call("connect"), call("terminate"))) == {"calls": 2}
