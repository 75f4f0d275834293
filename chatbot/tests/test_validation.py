import pytest
from django.utils import translation

from chatbot.whatsapp.validation import (
    InvalidMessage,
    check_template_parameters,
    clean_message,
    outbound_text,
    template_parameter_counts,
)

TO = "5511987654321"
BSUID = "BR.ENT.1183479028347523"


@pytest.fixture(autouse=True)
def _english():
    # The test settings speak pt-br; the assertions read the English source sentences.
    with translation.override("en"):
        yield


def message(kind, obj, **extra):
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+55 (11) 98765-4321",
            "type": kind, kind: obj, **extra}


def buttons(*titles, ids=None, **overrides):
    ids = ids or [f"b{index}" for index in range(len(titles))]
    replies = [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in zip(ids, titles, strict=True)]
    return message("interactive", {
        "type": "button", "body": {"text": "Escolha"}, "action": {"buttons": replies},
        **overrides,
    })


def rows(count, start=0, **row):
    return [{"id": f"r{start + index}", "title": f"Item {start + index}", **row} for index in range(count)]


def list_message(*sections, **overrides):
    action = {"button": "Ver opções", "sections": list(sections)}
    return message("interactive", {"type": "list", "body": {"text": "Menu"}, "action": action, **overrides})


def cta(display_text="Abrir", url="https://example.com/pedido/1", **overrides):
    action = {"name": "cta_url", "parameters": {"display_text": display_text, "url": url}}
    return message("interactive", {"type": "cta_url", "body": {"text": "Seu pedido"}, "action": action,
                                   **overrides})


def location_request(name="send_location", **overrides):
    return message("interactive", {"type": "location_request_message", "body": {"text": "Onde você está?"},
                                   "action": {"name": name}, **overrides})


def template(**fields):
    return message("template", {"name": "pedido_enviado", "language": {"code": "pt_BR"}, **fields})


def section(title, *items):
    return {"title": title, "rows": list(items)}


# --- Valid messages ------------------------------------------------------------------------

VALID = {
    "text": message("text", {"body": "Olá!", "preview_url": True}),
    "image link": message("image", {"link": "https://example.com/a.jpg", "caption": "Foto"}),
    "image id": message("image", {"id": "1234567890"}),
    "video": message("video", {"link": "http://example.com/v.mp4", "caption": "Vídeo"}),
    "audio": message("audio", {"id": "987", "voice": True}),
    "document": message("document", {"link": "https://example.com/n.pdf", "filename": "nota.pdf", "caption": "NF"}),
    "sticker": message("sticker", {"id": "555"}),
    "location": message("location", {"latitude": -23.55, "longitude": -46.63, "name": "Loja", "address": "SP"}),
    "location strings": message("location", {"latitude": "-23.55", "longitude": "-46"}),
    "contacts": message("contacts", [{"name": {"formatted_name": "Ana Souza"},
                                      "phones": [{"phone": "+5511999990000", "type": "CELL"}]}]),
    "buttons": buttons("Sim", "Não", "Talvez", header={"type": "text", "text": "Pergunta"},
                       footer={"text": "HOZ TECH"}),
    "buttons image header": buttons("Sim", header={"type": "image", "image": {"link": "https://example.com/a.png"}}),
    "list": list_message(section("Bebidas", *rows(5)), section("Lanches", *rows(5, start=5)),
                         header={"type": "text", "text": "Cardápio"}, footer={"text": "Escolha um"}),
    "list one untitled section": list_message({"rows": rows(1)}),
    "cta_url": cta(header={"type": "document", "document": {"id": "42"}}, footer={"text": "Obrigado"}),
    "location request": location_request(),
    "template": template(components=[
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "42"}}]},
        {"type": "BODY", "parameters": [{"type": "text", "text": "Ana"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "x"}]},
    ]),
    "template without components": template(),
    "reaction": message("reaction", {"message_id": "wamid.ABC", "emoji": "👍"}),
    "reaction removed": message("reaction", {"message_id": "wamid.ABC", "emoji": ""}),
}


@pytest.mark.parametrize("data", VALID.values(), ids=VALID.keys())
def test_valid_messages_pass_normalized(data):
    kind = data["type"]
    assert clean_message(data) == {"to": TO, "type": kind, kind: data[kind]}


def test_optional_keys_are_kept_or_dropped():
    data = message("text", {"body": "Oi"}, context={"message_id": "wamid.X", "extra": 1},
                   biz_opaque_callback_data="campanha-7", phone_number_id="106540352242922")
    assert clean_message(data) == {"to": TO, "type": "text", "text": {"body": "Oi"},
                                   "context": {"message_id": "wamid.X"}, "biz_opaque_callback_data": "campanha-7"}


def test_messaging_product_and_recipient_type_may_be_left_out():
    assert clean_message({"to": TO, "type": "text", "text": {"body": "Oi"}})["to"] == TO


@pytest.mark.parametrize("to, expected", [
    ("5511987654321", TO), ("+55 11 98765-4321", TO), ("+55.11.98765.4321", TO), ("12345678", "12345678"),
    ("123456789012345", "123456789012345"), (BSUID, BSUID), ("US.13491208655302741918", "US.13491208655302741918"),
])
def test_recipient(to, expected):
    assert clean_message({"to": to, "type": "text", "text": {"body": "Oi"}})["to"] == expected


# --- Invalid messages: (data, field, words the message must contain) ---------------------------

INVALID = {
    # top level
    "not a dict": ([], "", "JSON object"),
    "string body": ("oi", "", "JSON object"),
    "no type": ({"to": TO, "text": {"body": "Oi"}}, "type", "text, image"),
    "unknown type": ({"to": TO, "type": "order", "order": {}}, "type", "reaction"),
    "unhashable type": ({"to": TO, "type": ["text"]}, "type", "text"),
    "unknown key": (message("text", {"body": "Oi"}, foo=1), "foo", "not a field"),
    "another type's object": (message("text", {"body": "Oi"}, image={"id": "1"}), "image", "not a field"),
    "messaging_product": (message("text", {"body": "Oi"}, messaging_product="sms"), "messaging_product", "whatsapp"),
    "recipient_type": (message("text", {"body": "Oi"}, recipient_type="group"), "recipient_type", "individual"),
    "empty phone_number_id": (message("text", {"body": "Oi"}, phone_number_id=""), "phone_number_id", "empty"),
    "type object missing": ({"to": TO, "type": "text"}, "text", "text"),
    "type object not an object": (message("text", "Oi"), "text", "JSON object"),
    # to
    "no to": ({"type": "text", "text": {"body": "Oi"}}, "to", "country code"),
    "short to": (message("text", {"body": "Oi"}, to="1234567"), "to", "8 to 15 digits"),
    "long to": (message("text", {"body": "Oi"}, to="1234567890123456"), "to", "8 to 15 digits"),
    "plus inside to": (message("text", {"body": "Oi"}, to="55+11987654321"), "to", "business-scoped"),
    "to with spaces and letters": (message("text", {"body": "Oi"}, to="ana souza"), "to", "business-scoped"),
    "BSUID without letters": (message("text", {"body": "Oi"}, to="12.34_56"), "to", "business-scoped"),
    "BSUID too long": (message("text", {"body": "Oi"}, to="BR." + "1" * 254), "to", "business-scoped"),
    "a word, not a number": (message("text", {"body": "Oi"}, to="abc"), "to", "business-scoped"),
    "non-ASCII digits": (message("text", {"body": "Oi"}, to="٥٥١١٩٨٧٦٥٤٣٢١"), "to", "business-scoped"),
    # context and opaque data
    "context not an object": (message("text", {"body": "Oi"}, context="wamid.X"), "context", "JSON object"),
    "context without message_id": (message("text", {"body": "Oi"}, context={}), "context.message_id", "required"),
    "reaction with context": (message("reaction", {"message_id": "wamid.A", "emoji": "👍"},
                                      context={"message_id": "wamid.A"}), "context", "reaction"),
    "opaque data 513": (message("text", {"body": "Oi"}, biz_opaque_callback_data="x" * 513),
                        "biz_opaque_callback_data", "512"),
    # text
    "text 4097": (message("text", {"body": "x" * 4097}), "text.body", "4096"),
    "text blank": (message("text", {"body": "   "}), "text.body", "empty"),
    "text not a string": (message("text", {"body": 5}), "text.body", "string"),
    "preview_url not bool": (message("text", {"body": "Oi", "preview_url": "yes"}), "text.preview_url", "true"),
    "text unknown key": (message("text", {"body": "Oi", "url": "x"}), "text.url", "not a field"),
    # media
    "media id and link": (message("image", {"id": "1", "link": "https://e.com/a.jpg"}), "image", "exactly one"),
    "media neither": (message("video", {"caption": "x"}), "video", "exactly one"),
    "media empty id": (message("image", {"id": ""}), "image.id", "empty"),
    "media ftp link": (message("document", {"link": "ftp://e.com/a.pdf"}), "document.link", "http(s)"),
    "media link without host": (message("image", {"link": "https:///a.jpg"}), "image.link", "http(s)"),
    "media link with spaces": (message("image", {"link": " https://e.com/a.jpg"}), "image.link", "http(s)"),
    "caption not a string": (message("image", {"id": "1", "caption": 7}), "image.caption", "string"),
    "caption 1025": (message("image", {"id": "1", "caption": "x" * 1025}), "image.caption", "1024"),
    "caption on audio": (message("audio", {"id": "1", "caption": "x"}), "audio.caption", "no caption"),
    "caption on sticker": (message("sticker", {"id": "1", "caption": "x"}), "sticker.caption", "no caption"),
    "filename 241": (message("document", {"id": "1", "filename": "x" * 241}), "document.filename", "240"),
    "filename on image": (message("image", {"id": "1", "filename": "a.jpg"}), "image.filename", "not a field"),
    "voice not bool": (message("audio", {"id": "1", "voice": "true"}), "audio.voice", "true or false"),
    "voice on video": (message("video", {"id": "1", "voice": True}), "video.voice", "not a field"),
    # location
    "latitude 90.01": (message("location", {"latitude": 90.01, "longitude": 0}), "location.latitude", "90"),
    "longitude -181": (message("location", {"latitude": 0, "longitude": -181}), "location.longitude", "180"),
    "latitude bool": (message("location", {"latitude": True, "longitude": 0}), "location.latitude", "number"),
    "latitude text": (message("location", {"latitude": "abc", "longitude": 0}), "location.latitude", "number"),
    "latitude nan": (message("location", {"latitude": "nan", "longitude": 0}), "location.latitude", "number"),
    "latitude missing": (message("location", {"longitude": 0}), "location.latitude", "number"),
    "location name 1001": (message("location", {"latitude": 0, "longitude": 0, "name": "x" * 1001}),
                           "location.name", "1000"),
    # contacts
    "contacts empty": (message("contacts", []), "contacts", "1 to 100"),
    "contacts 101": (message("contacts", [{"name": {"formatted_name": "A"}}] * 101), "contacts", "1 to 100"),
    "contacts object": (message("contacts", {"name": {"formatted_name": "A"}}), "contacts", "list"),
    "contact without formatted_name": (message("contacts", [{"name": {"first_name": "A"}}]),
                                       "contacts[0].name.formatted_name", "required"),
    "contact without name": (message("contacts", [{"phones": []}]), "contacts[0].name", "JSON object"),
    "contact phones not a list": (message("contacts", [{"name": {"formatted_name": "A"}, "phones": "1"}]),
                                  "contacts[0].phones", "list"),
    "contact phone not an object": (message("contacts", [{"name": {"formatted_name": "A"}, "emails": ["a@b.c"]}]),
                                    "contacts[0].emails[0]", "JSON object"),
    # interactive, any type
    "interactive product": (message("interactive", {"type": "product", "body": {"text": "x"}}),
                            "interactive.type", "button, list, cta_url, location_request_message"),
    "interactive without body": (message("interactive", {"type": "button", "action": {}}),
                                 "interactive.body", "JSON object"),
    # reply buttons
    "4 buttons": (buttons("A", "B", "C", "D"), "interactive.action.buttons", "1 to 3"),
    "0 buttons": (buttons(), "interactive.action.buttons", "1 to 3"),
    "button title 21": (buttons("A", "B", "x" * 21), "interactive.action.buttons[2].reply.title", "20"),
    "button title empty": (buttons(""), "interactive.action.buttons[0].reply.title", "empty"),
    "button id 257": (buttons("A", ids=["x" * 257]), "interactive.action.buttons[0].reply.id", "256"),
    "duplicate button ids": (buttons("A", "B", ids=["1", "1"]), "interactive.action.buttons[1].reply.id", "unique"),
    "duplicate button titles": (buttons("Sim", "SIM"), "interactive.action.buttons[1].reply.title", "unique"),
    "button type url": ({**buttons("A")} | {"interactive": {
        "type": "button", "body": {"text": "x"}, "action": {"buttons": [{"type": "url", "reply": {}}]}}},
        "interactive.action.buttons[0].type", "reply"),
    "button body 1025": (buttons("A", body={"text": "x" * 1025}), "interactive.body.text", "1024"),
    "header text 61": (buttons("A", header={"type": "text", "text": "x" * 61}), "interactive.header.text", "60"),
    "header sticker": (buttons("A", header={"type": "sticker", "sticker": {"id": "1"}}), "interactive.header.type",
                       "text, image, video, document"),
    "header image without source": (buttons("A", header={"type": "image", "image": {}}),
                                    "interactive.header.image", "exactly one"),
    "footer 61": (buttons("A", footer={"text": "x" * 61}), "interactive.footer.text", "60"),
    # lists
    "11 rows across sections": (list_message(section("A", *rows(5)), section("B", *rows(6, start=5))),
                                "interactive.action.sections", "10 rows"),
    "11 rows in a section": (list_message(section("A", *rows(11))), "interactive.action.sections[0].rows", "10"),
    "11 sections": (list_message(*[section(f"S{i}", *rows(1, start=i)) for i in range(11)]),
                    "interactive.action.sections", "1 to 10"),
    "section without rows": (list_message(section("A")), "interactive.action.sections[0].rows", "1 to 10"),
    "row title 25": (list_message(section("A", *rows(1, title="x" * 25))),
                     "interactive.action.sections[0].rows[0].title", "24"),
    "row description 73": (list_message(section("A", *rows(1, description="x" * 73))),
                           "interactive.action.sections[0].rows[0].description", "72"),
    "row id 201": (list_message(section("A", *rows(1, id="x" * 201))), "interactive.action.sections[0].rows[0].id",
                   "200"),
    "duplicate row ids across sections": (list_message(section("A", *rows(2)), section("B", *rows(1, start=1))),
                                          "interactive.action.sections[1].rows[0].id", "unique"),
    "untitled section among two": (list_message({"rows": rows(1)}, section("B", *rows(1, start=1))),
                                   "interactive.action.sections[0].title", "required"),
    "section title 25": (list_message(section("x" * 25, *rows(1))), "interactive.action.sections[0].title", "24"),
    "list button 21": ({**list_message(section("A", *rows(1)))} | {"interactive": {
        "type": "list", "body": {"text": "x"}, "action": {"button": "x" * 21, "sections": [section("A", *rows(1))]}}},
        "interactive.action.button", "20"),
    "list body 4097": (list_message(section("A", *rows(1)), body={"text": "x" * 4097}), "interactive.body.text",
                       "4096"),
    "list image header": (list_message(section("A", *rows(1)), header={"type": "image", "image": {"id": "1"}}),
                          "interactive.header.type", "text"),
    "list footer 61": (list_message(section("A", *rows(1)), footer={"text": "x" * 61}), "interactive.footer.text",
                       "60"),
    # cta_url and location request
    "cta display_text 21": (cta(display_text="x" * 21), "interactive.action.parameters.display_text", "20"),
    "cta url ftp": (cta(url="ftp://example.com"), "interactive.action.parameters.url", "http(s)"),
    "cta wrong name": ({**cta()} | {"interactive": {"type": "cta_url", "body": {"text": "x"},
                                                    "action": {"name": "url"}}}, "interactive.action.name", "cta_url"),
    "cta body 1025": (cta(body={"text": "x" * 1025}), "interactive.body.text", "1024"),
    "location request wrong name": (location_request(name="location"), "interactive.action.name", "send_location"),
    "location request body 1025": (location_request(body={"text": "x" * 1025}), "interactive.body.text", "1024"),
    "location request header": (location_request(header={"type": "text", "text": "x"}), "interactive.header.type",
                                "no header"),
    # templates
    "template name with spaces": (template(name="Pedido Enviado"), "template.name", "lowercase"),
    "template name 513": (template(name="x" * 513), "template.name", "512"),
    "template without language": ({"to": TO, "type": "template", "template": {"name": "oi"}}, "template.language",
                                  "JSON object"),
    "template empty language code": (template(language={"code": ""}), "template.language.code", "empty"),
    "template components not a list": (template(components={}), "template.components", "list"),
    "template component type": (template(components=[{"type": "bogus"}]), "template.components[0].type", "body"),
    "template button without index": (template(components=[{"type": "BUTTON", "sub_type": "url"}]),
                                      "template.components[0].index", "sub_type and index"),
    "template parameter without type": (template(components=[{"type": "body", "parameters": [{"text": "x"}]}]),
                                        "template.components[0].parameters[0].type", "required"),
    # reactions
    "reaction without emoji": (message("reaction", {"message_id": "wamid.A"}), "reaction.emoji", "emoji"),
    "reaction emoji 11": (message("reaction", {"message_id": "wamid.A", "emoji": "x" * 11}), "reaction.emoji", "10"),
    "reaction without message_id": (message("reaction", {"message_id": "", "emoji": "👍"}), "reaction.message_id",
                                    "empty"),
}


@pytest.mark.parametrize("data, field, words", INVALID.values(), ids=INVALID.keys())
def test_invalid_messages_name_the_field(data, field, words):
    with pytest.raises(InvalidMessage) as raised:
        clean_message(data)
    assert raised.value.field == field
    assert words in raised.value.message
    assert raised.value.message.endswith(".")


BOUNDARIES = {
    "text 4096": message("text", {"body": "x" * 4096}),
    "caption 1024": message("video", {"id": "1", "caption": "x" * 1024}),
    "filename 240": message("document", {"id": "1", "filename": "x" * 240}),
    "latitude 90, longitude -180": message("location", {"latitude": 90, "longitude": -180}),
    "name 1000": message("location", {"latitude": 0, "longitude": 0, "name": "x" * 1000}),
    "100 contacts": message("contacts", [{"name": {"formatted_name": "A"}}] * 100),
    "button title 20, id 256": buttons("x" * 20, ids=["x" * 256]),
    "button body 1024": buttons("A", body={"text": "x" * 1024}),
    "header and footer 60": buttons("A", header={"type": "text", "text": "x" * 60}, footer={"text": "x" * 60}),
    "10 rows across sections": list_message(section("A", *rows(4)), section("B", *rows(6, start=4))),
    "10 sections": list_message(*[section(f"S{i}", *rows(1, start=i)) for i in range(10)]),
    "row title 24, description 72, id 200": list_message(section("x" * 24, *rows(
        1, title="x" * 24, description="x" * 72, id="x" * 200))),
    "list body 4096": list_message(section("A", *rows(1)), body={"text": "x" * 4096}),
    "cta display_text 20": cta(display_text="x" * 20),
    "location request body 1024": location_request(body={"text": "x" * 1024}),
    "template name 512": template(name="x" * 512),
    "reaction emoji 10": message("reaction", {"message_id": "wamid.A", "emoji": "👨‍👩‍👧‍👦"}),
    "opaque data 512": message("text", {"body": "Oi"}, biz_opaque_callback_data="x" * 512),
}


@pytest.mark.parametrize("data", BOUNDARIES.values(), ids=BOUNDARIES.keys())
def test_limits_are_inclusive(data):
    assert clean_message(data)[data["type"]] == data[data["type"]]


# --- Template parameters -------------------------------------------------------------------

SYNCED = [
    {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}"},
    {"type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} saiu. {{1}}, obrigado!"},
    {"type": "FOOTER", "text": "HOZ TECH"},
    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Ok"}]},
]


def sent(*components):
    return clean_message(template(components=list(components)))


def parameters(count):
    return [{"type": "text", "text": str(index)} for index in range(count)]


@pytest.mark.parametrize("components, expected", [
    (SYNCED, {"header": 1, "body": 2}),
    ([{"type": "BODY", "text": "Oi {{first_name}}, código {{ code }}"}], {"header": 0, "body": 2}),
    ([{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Sem variáveis"}], {"header": 0, "body": 0}),
    (None, {"header": 0, "body": 0}),
])
def test_template_parameter_counts(components, expected):
    assert template_parameter_counts(components) == expected


def test_template_parameters_that_match_pass():
    check_template_parameters(sent({"type": "header", "parameters": parameters(1)},
                                   {"type": "body", "parameters": parameters(2)}), SYNCED)


def test_media_header_parameters_are_not_counted():
    synced = [{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Oi {{1}}"}]
    check_template_parameters(sent({"type": "header", "parameters": [{"type": "image", "image": {"id": "1"}}]},
                                   {"type": "body", "parameters": parameters(1)}), synced)


@pytest.mark.parametrize("components, field, words", [
    ([{"type": "header", "parameters": parameters(1)}, {"type": "BODY", "parameters": parameters(3)}],
     "template.components[1].parameters", "body expects 2 parameters (got 3)"),
    ([{"type": "header", "parameters": parameters(2)}, {"type": "body", "parameters": parameters(2)}],
     "template.components[0].parameters", "header expects 1 parameters (got 2)"),
    ([{"type": "header", "parameters": parameters(1)}], "template.components", "body expects 2 parameters (got 0)"),
])
def test_template_parameter_count_mismatch(components, field, words):
    with pytest.raises(InvalidMessage) as raised:
        check_template_parameters(sent(*components), SYNCED)
    assert raised.value.field == field
    assert words in raised.value.message


# --- Display text --------------------------------------------------------------------------

@pytest.mark.parametrize("name, text", [
    ("text", "Olá!"), ("image link", "Foto"), ("image id", ""), ("document", "NF"), ("sticker", ""),
    ("location", "Loja"), ("location strings", "-23.55, -46"), ("contacts", "Ana Souza"), ("buttons", "Escolha"),
    ("list", "Menu"), ("cta_url", "Seu pedido"), ("location request", "Onde você está?"),
    ("template", "pedido_enviado"), ("reaction", "👍"), ("reaction removed", ""),
])
def test_outbound_text(name, text):
    assert outbound_text(clean_message(VALID[name])) == text


def test_outbound_text_falls_back_to_document_filename():
    assert outbound_text(clean_message(message("document", {"id": "1", "filename": "nota.pdf"}))) == "nota.pdf"


def test_outbound_text_of_an_unknown_shape_is_empty():
    assert outbound_text({"type": "order", "order": {}}) == ""
