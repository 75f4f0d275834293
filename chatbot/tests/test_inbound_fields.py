"""What chatbot/inbound.py stores for the shapes other projects' real payloads carry (issue 17),
posted signed through the webhook: calls, echoes of edits and deletions, Meta's older error shape,
a message without `type`, the statuses' billing blocks, account events, contacts[] of others.
Payloads inline, built with the helpers of test_parser_fields."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from chatbot import conversation
from chatbot.models import AccountEvent, Contact, Message, WebhookEvent
from chatbot.tests.helpers import post_signed
from chatbot.tests.test_parser_fields import body, call, calls, contact, messages, text_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliver(client, run_tasks):
    """Post bodies signed, as Meta does, and let the worker apply them; no event may fail."""

    def post(*bodies):
        for one in bodies:
            assert post_signed(client, one).status_code == 200
        run_tasks()
        assert not WebhookEvent.objects.exclude(result=WebhookEvent.Result.PROCESSED).exists()

    return post


def bot_replies():
    return Message.objects.filter(direction="out", source=Message.Source.BOT).count()


def echo(kind, obj, wamid="wamid.E1", timestamp="1697044968"):
    return body("smb_message_echoes", {"messaging_product": "whatsapp", "metadata": {
        "display_phone_number": "15550783881", "phone_number_id": "106540352242922"}, "message_echoes": [{
            "from": "15550783881", "to": "5511987654321", "id": wamid, "timestamp": timestamp, "type": kind,
            kind: obj}]})


# --- 1. Calls ---


def test_a_missed_call_reaches_the_conversation_and_the_bot_stays_silent(deliver):
    missed = calls(call("terminate", direction="USER_INITIATED", status="FAILED"),
                   contacts=[contact("5511987654321", "Maria")])
    deliver(missed, missed)
    message = Message.objects.get(type="call")
    assert (message.direction, message.wamid, message.contact.wa_id) == ("in", "wacid.HBgLMTU1", "5511987654321")
    assert message.contact.name == "Maria"
    assert message.text and message.session is not None and message.session.unread == 1
    assert conversation.silent(message) and bot_replies() == 0
    assert message.contact.last_inbound_at is None  # a call is not taken to open the 24-hour window
    assert Message.objects.filter(type="call").count() == 1  # the repeat was a duplicate


def test_a_missed_call_waits_for_a_person_in_the_queue_it_was_in(deliver):
    deliver(calls(call("terminate", direction="USER_INITIATED", status="FAILED")))
    session = Message.objects.get(type="call").session
    assert session.status == "waiting" and session.waiting_since is not None
    assert bot_replies() == 0 and not Message.objects.filter(direction="out").exists()  # nothing said


def test_a_missed_call_is_shown_in_the_thread(deliver, as_operator):
    deliver(calls(call("terminate", direction="USER_INITIATED", status="FAILED")))
    session = Message.objects.get(type="call").session
    page = as_operator.get(reverse("chatbot:dashboard-conversation", args=[session.pk]))
    assert "📞" in page.content.decode()


def test_other_call_events_are_account_events(deliver):
    deliver(calls(call("connect", direction="USER_INITIATED"),
                  call("terminate", direction="USER_INITIATED", status="COMPLETED", duration=120),
                  statuses=[{"id": "wacid.X", "type": "call", "status": "RINGING", "recipient_id": "5511987654321"}]))
    assert list(AccountEvent.objects.filter(field="calls").order_by("pk").values_list("event", flat=True)) == [
        "connect", "terminate", "RINGING"]
    assert not Message.objects.exists()


def test_an_answer_to_a_call_permission_request_is_kept_and_not_answered_by_the_bot(deliver):
    deliver(messages({"from": "5511987654321", "id": "wamid.CPR", "timestamp": "1752582182", "type": "interactive",
                      "interactive": {"type": "call_permission_reply",
                                      "call_permission_reply": {"response": "reject"}}},
                     contacts=[contact("5511987654321")]))
    message = Message.objects.get(wamid="wamid.CPR")
    assert message.text and message.session is not None
    assert bot_replies() == 0


# --- 2. Echoes of edits and deletions ---


def test_echoed_edits_and_deletions_change_the_original(deliver):
    deliver(echo("text", {"body": "Seu pedido saiu"}, wamid="wamid.ORIG", timestamp="1697044000"),
            echo("edit", {"original_message_id": "wamid.ORIG",
                          "message": {"type": "text", "text": {"body": "Seu pedido saiu para entrega"}}}))
    original = Message.objects.get(wamid="wamid.ORIG")
    assert original.text == "Seu pedido saiu para entrega"
    assert original.edited_at == datetime.fromtimestamp(1697044968, tz=UTC)
    deliver(echo("revoke", {"original_message_id": "wamid.ORIG"}, wamid="wamid.E2"))
    original.refresh_from_db()
    assert original.revoked_at is not None


def test_an_echoed_deletion_before_its_original_is_caught_up(deliver):
    deliver(echo("revoke", {"original_message_id": "wamid.LATE"}, wamid="wamid.E3"),
            echo("text", {"body": "oi"}, wamid="wamid.LATE", timestamp="1697044000"))
    assert Message.objects.get(wamid="wamid.LATE").revoked_at is not None


# --- 3. Meta's older error shape ---


def test_older_error_shapes_keep_their_details(deliver):
    older = {"code": 131051, "details": "Message type is not currently supported", "title": "Unsupported message type"}
    deliver(messages({"from": "5511987654321", "id": "wamid.U", "timestamp": "1680123458", "type": "unsupported",
                      "errors": [older]}))
    message = Message.objects.get(wamid="wamid.U")
    assert (message.error_code, message.error_details) == (131051, "Message type is not currently supported")


def test_a_failed_status_in_the_older_shape_keeps_its_details(deliver):
    deliver(echo("text", {"body": "oi"}, wamid="wamid.OUT"))
    deliver(messages({"id": "wamid.OUT", "status": "failed", "timestamp": "1697045000",
                      "recipient_id": "5511987654321",
                      "errors": [{"code": 131047, "title": "Re-engagement message", "details": "More than 24 hours"}]},
                     key="statuses"))
    message = Message.objects.get(wamid="wamid.OUT")
    assert (message.status, message.error_details) == ("failed", "More than 24 hours")


# --- 4. A message without `type` ---


def test_a_message_without_type_is_stored_as_its_object(deliver):
    deliver(messages({"from": "5511987654321", "id": "wamid.LOC", "timestamp": "1680123458",
                      "location": {"latitude": -23.56, "longitude": -46.65, "name": "Loja Paulista"}}))
    message = Message.objects.get(wamid="wamid.LOC")
    assert (message.type, message.text) == ("location", "Loja Paulista")


# --- 5. The statuses' billing blocks ---


def test_statuses_keep_conversation_and_pricing(deliver):
    deliver(echo("text", {"body": "oi"}, wamid="wamid.BILL"))
    status = {"id": "wamid.BILL", "status": "sent", "timestamp": "1697045000", "recipient_id": "5511987654321",
              "conversation": {"id": "CONV1", "expiration_timestamp": "1697131400", "origin": {"type": "service"}},
              "pricing": {"billable": False, "pricing_model": "PMP", "category": "service",
                          "type": "free_customer_service"}}
    later = {**status, "status": "delivered", "conversation": {"id": "CONV2", "origin": {"type": "marketing"}},
             "pricing": {"billable": True, "pricing_model": "CBP", "category": "marketing"}}
    deliver(messages(status, key="statuses"), messages(later, key="statuses"))
    message = Message.objects.get(wamid="wamid.BILL")
    assert (message.conversation_id, message.conversation_origin) == ("CONV1", "service")  # the first kept
    assert message.conversation_expires_at == datetime.fromtimestamp(1697131400, tz=UTC)
    assert (message.billable, message.pricing_model, message.pricing_category, message.pricing_type) == (
        False, "PMP", "service", "free_customer_service")


# --- 6. Account events, and where they are shown ---


def test_other_fields_are_account_events_shown_in_the_webhook_log(deliver, client, owner):
    deliver(body("group_status_update", {"groups": [{"group_id": "GROUP_999", "type": "group_suspend"}]}),
            body("automatic_events", {"automatic_events": [{"event_name": "LeadSubmitted", "ctwa_clid": "c"}]}),
            body("message_template_quality_update", {"message_template_name": "boas_vindas",
                                                     "message_template_language": "pt_BR",
                                                     "previous_quality_score": "GREEN",
                                                     "new_quality_score": "YELLOW"}),
            body("phone_number_name_update", {"decision": "APPROVED", "requested_verified_name": "Loja Açaí"}),
            body("account_review_update", {"decision": "APPROVED"}),
            body("field_from_the_future", {"event": "SOMETHING"}))
    assert dict(AccountEvent.objects.values_list("field", "event")) == {
        "group_status_update": "group_suspend", "automatic_events": "LeadSubmitted",
        "message_template_quality_update": "", "phone_number_name_update": "APPROVED",
        "account_review_update": "APPROVED", "field_from_the_future": "SOMETHING"}
    client.force_login(owner)
    page = client.get(reverse("chatbot:dashboard-webhooks")).content.decode()
    for shown in ["GROUP_999", "LeadSubmitted", "boas_vindas (pt_BR)", "GREEN → YELLOW", "Loja Açaí",
                  "field_from_the_future: SOMETHING"]:
        assert shown in page


# --- 7. contacts[] of someone else ---


def test_another_persons_contacts_entry_does_not_relabel_the_sender(deliver):
    deliver(messages(text_from("5511987654321", "wamid.M1"), contacts=[contact("5511987654321", "Maria")]))
    deliver(messages(text_from("5511987654321", "wamid.M2"), text_from("5521912345678", "wamid.B1"),
                     contacts=[contact("5521912345678", "Bea", "BR.BEA")]))
    maria = Contact.objects.get(wa_id="5511987654321")
    assert (maria.name, maria.user_id) == ("Maria", "")
    bea = Contact.objects.get(wa_id="5521912345678")
    assert (bea.name, bea.user_id) == ("Bea", "BR.BEA")
    assert Message.objects.get(wamid="wamid.M2").contact == maria
