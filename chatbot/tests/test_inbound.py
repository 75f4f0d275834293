"""What each of Meta's webhook payloads stores (chatbot/inbound.py), posted signed through the view."""

import itertools
import json
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from chatbot import inbound
from chatbot.models import AccountEvent, Contact, Message, PendingStatus, PhoneNumber, Session, Template, WebhookEvent
from chatbot.tests.helpers import load_payload, payload_bytes, post_signed
from chatbot.whatsapp.webhook import customer_message

pytestmark = pytest.mark.django_db


def changes(name):
    return [change for entry in load_payload(name)["entry"] for change in entry["changes"]]


def first_message(name):
    return changes(name)[0]["value"]["messages"][0]


def first_status(name):
    return changes(name)[0]["value"]["statuses"][0]


@pytest.fixture
def deliver(client, run_tasks):
    """Post a payload file (or raw body) signed, as Meta does, and let the worker apply it."""

    def post(name_or_body):
        body = payload_bytes(name_or_body) if isinstance(name_or_body, str) else name_or_body
        response = post_signed(client, body)
        assert response.status_code == 200
        run_tasks()
        return response

    return post


def inbound_tasks():
    return DBTaskResult.objects.filter(task_path="chatbot.conversation.handle_inbound_message")


def handled():
    """Inbound messages followed up (in a session): the bot's turn runs in the applying transaction."""
    return Message.objects.filter(direction="in", session__isnull=False).count()


def stored(name):
    return Message.objects.get(wamid=first_message(name)["id"])


def when(unix):
    return datetime.fromtimestamp(int(unix), tz=UTC)


# --- Messages ---


def test_text_creates_contact_message_and_one_follow_up(deliver):
    deliver("text")
    meta = first_message("text")
    message = stored("text")
    assert message.direction == "in" and message.source == "customer" and message.status == "received"
    assert message.type == "text"
    assert message.text == meta["text"]["body"]
    assert any(ch in message.text for ch in "áéíóúãõç")  # accents decoded from Meta's \\u escapes
    assert message.timestamp == when(meta["timestamp"])
    assert message.phone_number.phone_number_id == changes("text")[0]["value"]["metadata"]["phone_number_id"]
    contact = message.contact
    assert contact.wa_id == meta["from"]
    assert contact.name == changes("text")[0]["value"]["contacts"][0]["profile"]["name"]
    assert contact.last_inbound_at == message.timestamp
    assert message.session_id is not None and handled() == 1
    assert inbound_tasks().count() == 0  # the turn ran where the message was applied: no task needed


def test_a_duplicate_delivery_stores_and_enqueues_nothing_new(deliver):
    deliver("text")
    deliver("text")
    assert Message.objects.filter(direction="in").count() == 1
    assert handled() == 1
    assert inbound_tasks().count() == 0


def test_the_follow_up_task_puts_the_message_in_a_session(deliver):
    deliver("text")
    message = stored("text")
    assert message.session.status == Session.Status.BOT
    assert message.session.unread == 1
    assert inbound_tasks().count() == 0


def test_a_failed_turn_keeps_the_message_and_leaves_a_task_that_answers_it(client, run_tasks, fake_graph):
    body = customer_message(phone_number_id="106540352242922", wa_id="5511987654321", name="Maria",
                            wamid="wamid.FAILEDTURN", text="oi")
    assert post_signed(client, body).status_code == 200
    with mock.patch("chatbot.conversation.take_turn", side_effect=RuntimeError("bug")):
        inbound.drain()
    message = Message.objects.get(wamid="wamid.FAILEDTURN")
    assert message.session_id is None  # the turn's savepoint was rolled back, the message kept
    assert inbound_tasks().count() == 1
    run_tasks()  # the task, now rather than after its delay
    message.refresh_from_db()
    assert message.session_id is not None
    assert inbound_tasks().get().status == "SUCCESSFUL"
    assert len(fake_graph.sent()) == 2  # greeting and menu, once


@pytest.mark.parametrize(
    ("name", "context_key"),
    [("text_forwarded", "forwarded"), ("text_frequently_forwarded", "frequently_forwarded")],
)
def test_forwarded_flags_are_kept(deliver, name, context_key):
    deliver(name)
    message = stored(name)
    assert message.context.get(context_key) is True
    assert message.reply_to == ""


def test_reply_keeps_the_quoted_wamid(deliver):
    deliver("text_reply")
    assert stored("text_reply").reply_to == first_message("text_reply")["context"]["id"]


def test_product_inquiry_keeps_the_product(deliver):
    deliver("text_product_inquiry")
    assert stored("text_product_inquiry").context["referred_product"] == (
        first_message("text_product_inquiry")["context"]["referred_product"]
    )


def test_click_to_whatsapp_referral_is_kept(deliver):
    deliver("text_referral")
    referral = stored("text_referral").referral
    assert referral["ctwa_clid"] == first_message("text_referral")["referral"]["ctwa_clid"]


@pytest.mark.parametrize("name", ["image", "audio_voice", "video", "document", "sticker"])
def test_media_is_recorded_for_download(client, name):
    post_signed(client, payload_bytes(name))
    inbound.drain()
    meta = first_message(name)
    media = meta[meta["type"]]
    message = stored(name)
    assert message.media_id == media["id"]
    assert message.media_mime_type == media["mime_type"]
    assert message.media_status == "pending"
    download = DBTaskResult.objects.get(task_path="chatbot.media.download_media")
    assert download.args_kwargs["args"] == [message.pk]
    assert message.payload == media
    assert message.text == media.get("caption", "")
    if name == "document":
        assert message.media_filename == media["filename"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("location", lambda m: m["location"]["name"]),
        ("location_current", lambda m: ""),
        ("interactive_button_reply", lambda m: m["interactive"]["button_reply"]["title"]),
        ("interactive_list_reply", lambda m: m["interactive"]["list_reply"]["title"]),
        ("interactive_nfm_reply", lambda m: m["interactive"]["nfm_reply"]["body"]),
        ("button", lambda m: m["button"]["text"]),
        ("order", lambda m: m["order"].get("text", "")),
        ("contacts", lambda m: ", ".join(c["name"]["formatted_name"] for c in m["contacts"])),
    ],
)
def test_readable_text_of_each_type(deliver, name, expected):
    deliver(name)
    meta = first_message(name)
    message = stored(name)
    assert message.type == meta["type"]
    assert message.text == expected(meta)
    assert message.payload == meta[meta["type"]]


def test_reaction_points_at_its_target(deliver):
    deliver("reaction")
    message = stored("reaction")
    meta = first_message("reaction")
    assert message.target_wamid == meta["reaction"]["message_id"]
    assert message.text == meta["reaction"]["emoji"]


@pytest.mark.parametrize("name", ["reaction_removed_missing", "reaction_removed_empty"])
def test_removed_reaction_has_no_emoji(deliver, name):
    deliver(name)
    assert stored(name).text == ""
    assert stored(name).target_wamid == first_message(name)["reaction"]["message_id"]


def test_reaction_changed_under_the_same_wamid_keeps_the_newest(deliver):
    deliver("reaction")
    document = load_payload("reaction")
    meta = document["entry"][0]["changes"][0]["value"]["messages"][0]
    meta["reaction"]["emoji"] = ""
    meta["timestamp"] = str(int(meta["timestamp"]) + 60)
    deliver(json.dumps(document).encode())
    message = Message.objects.get(wamid=meta["id"])
    assert message.text == ""
    # The older add, delivered late again, does not bring the emoji back.
    deliver("reaction")
    message.refresh_from_db()
    assert message.text == ""


def test_edit_updates_the_target(deliver):
    meta = first_message("edit")
    target_wamid = meta["edit"]["original_message_id"]
    deliver("text")
    Message.objects.filter(wamid=first_message("text")["id"]).update(wamid=target_wamid)
    deliver("edit")
    target = Message.objects.get(wamid=target_wamid)
    assert target.text == meta["edit"]["message"]["text"]["body"]
    assert target.edited_at is not None
    assert stored("edit").target_wamid == target_wamid


def test_revoke_marks_the_target(deliver):
    meta = first_message("revoke")
    target_wamid = meta["revoke"]["original_message_id"]
    deliver("text")
    Message.objects.filter(wamid=first_message("text")["id"]).update(wamid=target_wamid)
    deliver("revoke")
    assert Message.objects.get(wamid=target_wamid).revoked_at is not None


def test_user_changed_number_moves_the_contact(deliver):
    meta = first_message("system_user_changed_number")
    Contact.objects.create(wa_id=meta["from"], name="Antigo")
    deliver("system_user_changed_number")
    message = stored("system_user_changed_number")
    assert message.type == "system"
    assert message.text == meta["system"]["body"]
    assert message.contact.wa_id == meta["system"]["wa_id"]
    # A system notice is not the customer writing: the 24-hour window stays as it was.
    assert message.contact.last_inbound_at is None


def test_customer_identity_changed_is_stored(deliver):
    deliver("system_customer_identity_changed")
    assert stored("system_customer_identity_changed").payload["type"] == "customer_identity_changed"


def test_unsupported_message_keeps_its_error(deliver):
    deliver("unsupported")
    message = stored("unsupported")
    assert message.type == "unsupported"
    assert message.error_code == 131051
    assert handled() == 1


def test_a_type_meta_never_documented_is_stored_raw(deliver):
    deliver("unknown_type")
    meta = first_message("unknown_type")
    message = stored("unknown_type")
    assert message.type == meta["type"]
    assert message.payload == meta.get(meta["type"], {})


def test_request_welcome_opens_the_window(deliver):
    deliver("request_welcome")
    message = stored("request_welcome")
    assert message.type == "request_welcome"
    assert message.contact.last_inbound_at == message.timestamp
    assert message.contact.window_open(now=message.timestamp)


def test_username_user_without_wa_id(deliver):
    deliver("username_user")
    meta = first_message("username_user")
    contact = stored("username_user").contact
    assert contact.wa_id == ""
    assert contact.user_id == meta["from_user_id"]
    assert contact.username != ""
    deliver("username_user")
    assert Contact.objects.count() == 1


def test_batch_applies_every_entry_change_and_item(deliver):
    document = load_payload("batch")
    wamids = [m["id"] for c in changes("batch") for m in c["value"].get("messages", [])]
    statuses = [s for c in changes("batch") for s in c["value"].get("statuses", [])]
    assert len(document["entry"]) >= 2 and len(wamids) >= 3 and statuses
    deliver("batch")
    assert set(Message.objects.filter(direction="in").values_list("wamid", flat=True)) == set(wamids)
    assert handled() == len(wamids)
    assert PendingStatus.objects.count() + Message.objects.exclude(status="received").count() >= 1


def test_a_thousand_updates_in_one_post(deliver):
    document = load_payload("text")
    value = document["entry"][0]["changes"][0]["value"]
    template = value["messages"][0]
    value["messages"] = [
        {**template, "id": f"wamid.BATCH{i:04d}", "from": f"55119{i:08d}", "text": {"body": f"mensagem {i}"}}
        for i in range(1000)
    ]
    value["contacts"] = [{"profile": {"name": f"Cliente {i}"}, "wa_id": f"55119{i:08d}"} for i in range(1000)]
    assert deliver(json.dumps(document).encode()).status_code == 200
    assert Message.objects.count() == 1000
    assert Contact.objects.count() == 1000
    assert handled() == 1000


# --- Statuses ---


@pytest.fixture
def outbound(db):
    """Our sent message that the status payloads refer to."""

    def make(wamid, status="sent"):
        contact, _ = Contact.objects.get_or_create(wa_id="5511987654321")
        return Message.objects.create(
            phone_number=PhoneNumber.objects.default(), contact=contact, direction="out", source="api",
            type="text", text="Seu pedido saiu para entrega", status=status, wamid=wamid,
        )

    return make


@pytest.mark.parametrize("name", ["status_sent", "status_delivered", "status_read", "status_played"])
def test_status_moves_the_message_and_keeps_its_time(deliver, outbound, name):
    meta = first_status(name)
    message = outbound(meta["id"], status="queued")
    deliver(name)
    message.refresh_from_db()
    assert message.status == meta["status"]
    assert getattr(message, f"{meta['status']}_at") == when(meta["timestamp"])


def test_sent_status_records_pricing(deliver, outbound):
    meta = first_status("status_sent")
    message = outbound(meta["id"])
    deliver("status_sent")
    message.refresh_from_db()
    assert message.pricing_category == meta["pricing"]["category"]
    assert message.pricing_type == meta["pricing"]["type"]


def test_failed_status_records_metas_error(deliver, outbound):
    meta = first_status("status_failed")
    message = outbound(meta["id"])
    deliver("status_failed")
    message.refresh_from_db()
    error = meta["errors"][0]
    assert message.status == "failed"
    assert message.error_code == error["code"] == 131047
    assert message.error_title == error["title"]
    assert message.error_details == error["error_data"]["details"]


def test_a_failed_status_saying_the_customer_stopped_marketing_opts_them_out(deliver, outbound):
    message = outbound("wamid.STOPPED")
    document = load_payload("status_failed")
    status = document["entry"][0]["changes"][0]["value"]["statuses"][0]
    status.update(id="wamid.STOPPED", errors=[{"code": 131050, "title": "Unable to deliver the message.",
                                              "message": "Unable to deliver the message.",
                                              "error_data": {"details": "User stopped marketing messages."}}])
    deliver(json.dumps(document).encode())
    message.contact.refresh_from_db()
    assert message.contact.opted_out and message.contact.opted_out_at is not None


def preferences_body(value, wa_id="5511987654321", category="marketing_messages"):
    """Meta's `user_preferences` change (the shape pywa's fixtures record)."""
    document = load_payload("status_sent")
    change = document["entry"][0]["changes"][0]
    change["field"] = "user_preferences"
    change["value"] = {"messaging_product": "whatsapp", "metadata": change["value"]["metadata"],
                       "contacts": [{"profile": {"name": "Maria"}, "wa_id": wa_id}],
                       "user_preferences": [{"wa_id": wa_id, "detail": "User requested to stop marketing messages",
                                             "category": category, "value": value, "timestamp": 1731705721}]}
    return json.dumps(document).encode()


def test_the_customers_own_stop_and_resume_in_whatsapp_are_kept(deliver):
    deliver(preferences_body("stop"))  # from a number never seen: remembered all the same
    contact = Contact.objects.get(wa_id="5511987654321")
    assert contact.opted_out and contact.opted_out_at.year == 2024
    deliver(preferences_body("resume"))
    contact.refresh_from_db()
    assert not contact.opted_out and contact.opted_out_at is None
    deliver(preferences_body("signup"))
    contact.refresh_from_db()
    assert contact.opt_in_source == "Link de cadastro do WhatsApp" and contact.opted_in_at.year == 2024
    assert WebhookEvent.objects.filter(result="processed").count() == 3


def test_a_preference_we_do_not_know_is_recorded_as_not_understood(deliver):
    deliver(preferences_body("stop", category="utility_messages"))
    assert not Contact.objects.filter(opted_out=True).exists()
    event = WebhookEvent.objects.get()
    assert event.summary["unsupported_reasons"] == ["user preference 'utility_messages' 'stop'"]


STATUS_TIMES = {"sent": 1700000000, "delivered": 1700000005, "failed": 1700000006, "read": 1700000010}


def status_body(wamid, status):
    status_item = {
        "id": wamid, "status": status, "timestamp": str(STATUS_TIMES[status]), "recipient_id": "5511987654321",
    }
    if status == "failed":
        status_item["errors"] = [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
                                  "error_data": {"details": "Message Undeliverable."}}]
    document = load_payload("status_sent")
    document["entry"][0]["changes"][0]["value"]["statuses"] = [status_item]
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "order",
    [*itertools.permutations(["sent", "delivered", "read"]), *itertools.permutations(["sent", "failed"]),
     *itertools.permutations(["sent", "delivered", "read", "failed"])],
)
def test_every_arrival_order_ends_in_the_same_state(deliver, outbound, order):
    message = outbound("wamid.ORDER", status="sending")
    for status in order:
        deliver(status_body("wamid.ORDER", status))
    message.refresh_from_db()
    expected = "read" if "read" in order else "failed" if "failed" in order else "delivered"
    assert message.status == expected
    for status in order:
        assert getattr(message, f"{status}_at") == when(STATUS_TIMES[status])


def test_a_late_sent_never_overwrites_read(deliver, outbound):
    message = outbound("wamid.LATE", status="sending")
    for status in ["read", "delivered", "sent", "sent"]:
        deliver(status_body("wamid.LATE", status))
    message.refresh_from_db()
    assert message.status == "read"


def test_status_before_its_message_is_kept_and_applied_later(deliver, outbound, run_tasks):
    meta = first_status("status_delivered")
    deliver("status_delivered")
    assert PendingStatus.objects.filter(wamid=meta["id"]).count() == 1
    message = outbound(meta["id"])  # the sender records Meta's wamid after the webhook
    DBTaskResult.objects.update(run_after=timezone.now())
    run_tasks()
    message.refresh_from_db()
    assert message.status == "delivered"
    assert PendingStatus.objects.count() == 0


# --- Other fields ---


def test_smb_echo_is_an_outbound_message_from_the_phone_app(deliver):
    deliver("smb_message_echoes")
    echo = changes("smb_message_echoes")[0]["value"]["message_echoes"][0]
    message = Message.objects.get(wamid=echo["id"])
    assert message.direction == "out" and message.source == "phone_app" and message.status == "sent"
    assert message.contact.wa_id == echo["to"]
    assert message.contact.last_inbound_at is None
    assert inbound_tasks().count() == 0


def test_template_status_update_changes_our_template(deliver):
    value = changes("template_status_update")[0]["value"]
    Template.objects.create(
        name=value["message_template_name"], language=value["message_template_language"],
        template_id=str(value["message_template_id"]), status="PENDING",
    )
    deliver("template_status_update")
    template = Template.objects.get()
    assert template.status == value["event"] == "APPROVED"


def test_template_rejected_keeps_the_reason(deliver):
    value = changes("template_status_rejected")[0]["value"]
    deliver("template_status_rejected")
    template = Template.objects.get(name=value["message_template_name"])
    assert template.status == "REJECTED"
    assert template.reason == value["reason"]


def test_template_category_update_is_recorded(deliver):
    deliver("template_category_update")
    assert AccountEvent.objects.filter(field="template_category_update").count() == 1


def test_quality_update_sets_the_numbers_limit(deliver):
    value = changes("phone_number_quality_update")[0]["value"]
    PhoneNumber.objects.create(phone_number_id="1", display_phone_number=value["display_phone_number"])
    deliver("phone_number_quality_update")
    number = PhoneNumber.objects.get(phone_number_id="1")
    limit = value.get("max_daily_conversations_per_business") or value.get("current_limit")
    assert number.messaging_limit == limit
    assert AccountEvent.objects.get().event == value["event"]


def test_account_update_is_recorded(deliver):
    deliver("account_update")
    event = AccountEvent.objects.get()
    assert event.field == "account_update"
    assert event.event == changes("account_update")[0]["value"]["event"]


def test_value_errors_are_recorded(deliver):
    deliver("value_errors")
    event = AccountEvent.objects.get()
    assert event.field == "errors"
    assert event.event == str(changes("value_errors")[0]["value"]["errors"][0]["code"])


# --- One event never holds up the others ---


def deep_body(levels=700):
    """A signed-shape body with a NUL and a message whose referral nests `levels` deep."""
    deep = {}
    for _ in range(levels):
        deep = {"v": deep}
    body = json.loads(customer_message(phone_number_id="106540352242922", wa_id="5511987654321", name="Ana",
                                       wamid="wamid.DEEP", text="a\u0000b"))
    body["entry"][0]["changes"][0]["value"]["messages"][0]["referral"] = deep
    return json.dumps(body).encode()


def test_a_deeply_nested_body_with_a_nul_is_applied_and_the_queue_moves_on(client):
    assert post_signed(client, deep_body()).status_code == 200
    assert post_signed(client, payload_bytes("text")).status_code == 200
    assert inbound.drain() == 2
    assert set(WebhookEvent.objects.values_list("result", flat=True)) == {"processed"}
    assert Message.objects.get(wamid="wamid.DEEP").text == "a\ufffdb"
    assert Message.objects.filter(wamid=first_message("text")["id"]).exists()


def test_an_event_that_cannot_be_applied_fails_after_a_few_tries_and_the_next_is_applied(client):
    assert post_signed(client, payload_bytes("image")).status_code == 200
    assert post_signed(client, payload_bytes("text")).status_code == 200
    bad = WebhookEvent.objects.order_by("pk").first()
    real_parse = inbound.parser.parse

    def parse(document):
        if "image" in json.dumps(document):
            raise RecursionError("maximum recursion depth exceeded")
        return real_parse(document)

    with mock.patch.object(inbound.parser, "parse", side_effect=parse):
        inbound.drain()
    bad.refresh_from_db()
    assert (bad.result, bad.attempts) == ("failed", inbound.MAX_ATTEMPTS)
    assert bad.error.startswith("RecursionError")
    assert WebhookEvent.objects.exclude(pk=bad.pk).get().result == "processed"
    assert Message.objects.filter(wamid=first_message("text")["id"]).exists()
    # Once fixed, reprocessing applies it.
    assert inbound.reprocess(bad).result == "processed"
    assert Message.objects.filter(type="image").exists()


def test_reprocessing_an_event_that_still_fails_records_it_instead_of_raising(client):
    assert post_signed(client, payload_bytes("text")).status_code == 200
    event = WebhookEvent.objects.get()
    with mock.patch.object(inbound.parser, "parse", side_effect=RecursionError("deep")):
        assert inbound.reprocess(event).result == "failed"
    event.refresh_from_db()
    assert event.result == "failed" and "RecursionError" in event.error
