"""chatbot/parser.py: Meta's JSON in, typed events out, never an exception."""

from datetime import UTC, datetime

import pytest

from chatbot.tests.helpers import PAYLOADS, load_payload, payload_bytes
from chatbot.whatsapp import parser

ALL_PAYLOADS = sorted(path.stem for path in PAYLOADS.glob("*.json"))


def only(name, kind=parser.InboundMessage):
    events = parser.parse(load_payload(name))
    assert len(events) == 1, events
    assert isinstance(events[0], kind), events[0]
    return events[0]


@pytest.mark.parametrize("name", ALL_PAYLOADS)
def test_payload_files_are_escaped_like_meta_and_parse(name):
    assert payload_bytes(name).isascii()
    events = parser.parse(load_payload(name))
    assert events
    assert all(isinstance(event.raw, dict) for event in events)


def test_text_message():
    event = only("text")
    assert event.wamid.startswith("wamid.")
    assert event.from_wa_id == "5511987654321"
    assert event.profile.name == "Maria Conceição"
    assert event.phone_number_id == "106540352242922"
    assert event.display_phone_number == "15550783881"
    assert event.timestamp == datetime(2025, 11, 23, 12, 13, 20, tzinfo=UTC)
    assert event.type == "text"
    assert event.text == "Olá! Quero saber o preço do açaí com granola, por favor 😀"
    assert event.payload == {"body": event.text}
    assert event.media is None and event.reply_to == "" and event.target_wamid == ""


def test_context_and_referral():
    assert only("text_reply").reply_to.startswith("wamid.")
    assert only("text_forwarded").context == {"forwarded": True}
    assert only("text_forwarded").reply_to == ""
    assert only("text_product_inquiry").context["referred_product"]["product_retailer_id"] == "tenis-corrida-42"
    assert only("text_referral").referral["source_type"] == "ad"


@pytest.mark.parametrize(
    ("name", "mime", "caption", "voice"),
    [
        ("image", "image/jpeg", "Foto do produto com defeito", False),
        ("audio_voice", "audio/ogg; codecs=opus", "", True),
        ("video", "video/mp4", "Vídeo do problema", False),
        ("document", "application/pdf", "Segue o comprovante", False),
        ("sticker", "image/webp", "", False),
    ],
)
def test_media_messages(name, mime, caption, voice):
    event = only(name)
    assert event.media.mime_type == mime
    assert event.media.id
    assert event.media.caption == caption == event.text
    assert event.media.voice is voice
    if name == "document":
        assert event.media.filename == "comprovante-pagamento.pdf"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("location", "Loja Paulista"),
        ("location_current", ""),
        ("contacts", "João da Silva"),
        ("interactive_button_reply", "Vendas"),
        ("interactive_list_reply", "Financeiro"),
        ("interactive_nfm_reply", "Sent"),
        ("button", "Confirmar entrega"),
        ("reaction", "❤️"),
        ("reaction_removed_missing", ""),
        ("reaction_removed_empty", ""),
        ("order", "Pode entregar à tarde?"),
        ("system_user_changed_number", "Maria mudou de 5511987654321 para 5511976543210"),
        ("unsupported", ""),
        ("unknown_type", ""),
        ("request_welcome", ""),
        ("edit", "Corrigindo: quero 3 unidades, não 2"),
        ("revoke", ""),
    ],
)
def test_readable_text(name, text):
    assert only(name).text == text


def test_targets_of_reactions_edits_and_revokes():
    for name, key in [("reaction", "message_id"), ("edit", "original_message_id"), ("revoke", "original_message_id")]:
        event = only(name)
        assert event.target_wamid == load_payload(name)["entry"][0]["changes"][0]["value"]["messages"][0][
            event.type][key]


def test_unknown_types_are_kept_as_sent():
    event = only("unknown_type")
    assert event.type == "hologram"
    assert event.payload == {"projection": "3d", "duration": 12}
    assert only("unsupported").errors[0]["code"] == 131051
    assert only("request_welcome").payload == {}


def test_username_user_has_a_bsuid_and_no_wa_id():
    event = only("username_user")
    assert event.from_wa_id == ""
    assert event.from_user_id == "BR.13491208655302741918"
    assert event.profile.username == "@analuiza"


def test_statuses():
    sent = only("status_sent", parser.StatusUpdate)
    assert sent.status == "sent" and sent.pricing["category"] == "utility" and sent.conversation["id"]
    failed = only("status_failed", parser.StatusUpdate)
    assert failed.errors[0]["code"] == 131047
    assert only("status_played", parser.StatusUpdate).status == "played"


def test_batch_walks_every_entry_change_message_and_status_in_order():
    events = parser.parse(load_payload("batch"))
    kinds = [type(event).__name__ for event in events]
    assert kinds == ["InboundMessage", "InboundMessage", "StatusUpdate", "StatusUpdate",
                     "InboundMessage", "InboundMessage", "StatusUpdate"]
    assert [event.profile.name for event in events if isinstance(event, parser.InboundMessage)] == [
        "Carlos Sá", "Carlos Sá", "Beatriz Araújo", "Zé Ramalho"]


def test_other_fields():
    template = only("template_status_update", parser.TemplateStatusUpdate)
    assert (template.name, template.language, template.event, template.template_id) == (
        "confirmacao_pedido", "pt_BR", "APPROVED", "1689556908129832")
    assert only("template_status_rejected", parser.TemplateStatusUpdate).reason == "PROMOTIONAL"
    category = only("template_category_update", parser.TemplateCategoryUpdate)
    assert (category.previous_category, category.new_category) == ("UTILITY", "MARKETING")
    assert only("phone_number_quality_update", parser.QualityUpdate).limit == "TIER_2K"
    assert only("account_update", parser.AccountUpdate).event == "ACCOUNT_VIOLATION"
    assert only("value_errors", parser.WebhookError).code == 131042
    echo = only("smb_message_echoes", parser.EchoMessage)
    assert echo.to_wa_id == "5511987654321" and echo.text.endswith("🚚")
    unknown = only("unknown_field", parser.AccountUpdate)  # a field Meta adds later: kept, not lost
    assert unknown.field == "some_future_field"


GARBAGE = [
    None, [], "x", 5, 1.5, True, {}, {"object": "page"},
    {"object": "whatsapp_business_account"},
    {"object": "whatsapp_business_account", "entry": 5},
    {"object": "whatsapp_business_account", "entry": [5, None, "x"]},
    {"object": "whatsapp_business_account", "entry": [{"changes": [5]}]},
    {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": 5}]}]},
    {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": 7, "value": {}}]}]},
    {"object": "whatsapp_business_account",
     "entry": [{"changes": [{"field": "messages", "value": {"messages": [5, {"id": 3}, {"type": ["x"]}]}}]}]},
    {"object": "whatsapp_business_account",
     "entry": [{"changes": [{"field": "messages", "value": {
         "metadata": "x", "contacts": "y",
         "messages": [{"id": "w", "timestamp": "soon", "type": "text", "text": "not an object"},
                      {"id": "w2", "timestamp": 10**30, "type": "interactive", "interactive": {"type": 5}},
                      {"id": "w3", "type": "contacts", "contacts": "nope"}],
         "statuses": [{"id": None, "status": 5, "errors": "bad"}, "x"],
         "errors": [{"code": "131000"}, 5]}}]}]},
]


@pytest.mark.parametrize("body", GARBAGE)
def test_garbage_never_raises(body):
    events = parser.parse(body)
    assert isinstance(events, list)
    for event in events:
        assert isinstance(event.raw, dict)


def test_garbage_is_reported_as_unsupported():
    assert isinstance(parser.parse(None)[0], parser.Unsupported)
    assert parser.parse({"object": "page"})[0].reason == "object is not whatsapp_business_account"
    events = parser.parse(GARBAGE[-1])
    texts = [event.text for event in events if isinstance(event, parser.InboundMessage)]
    assert texts == ["", "", ""]
    assert [event.timestamp for event in events if isinstance(event, parser.InboundMessage)][:2] == [None, None]
    assert sum(isinstance(event, parser.Unsupported) for event in events) == 2  # the "x" status, the 5 error


@pytest.mark.parametrize(
    ("kind", "obj", "text"),
    [
        ("text", {"body": "oi"}, "oi"),
        ("text", "oi", ""),
        ("image", {"caption": ["x"]}, ""),
        ("interactive", {"type": "list_reply", "list_reply": {"title": "A", "description": "B"}}, "A"),
        ("location", {"address": "Rua X"}, "Rua X"),
        ("contacts", [{"name": {"formatted_name": "A"}}, {"name": {"formatted_name": "B"}}], "A, B"),
        ("edit", {"message": {"type": "edit", "edit": {}}}, ""),
        ("audio", {"id": "1"}, ""),
        ("brand_new_type", {"body": "x"}, ""),
    ],
)
def test_message_text_rules(kind, obj, text):
    assert parser.message_text(kind, obj) == text
