"""Property-based tests (Hypothesis): bad input never breaks the parser, the send API's validation,
the webhook or the send API (issue 8, "Fuzzing").

Deterministic in the suite (`derandomize=True`, a few hundred examples each); `bench/fuzz.py`
runs the same strategies with 10,000+ examples and counts what it finds.
"""

import copy
import itertools
import json
import logging
import time

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbot import inbound
from chatbot.models import ApiToken, Contact, Message, WebhookEvent
from chatbot.tests.helpers import PAYLOADS, post_signed
from chatbot.whatsapp import parser, validation

SUITE = settings(
    derandomize=True, database=None, deadline=None, max_examples=200, print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)
CUSTOMER = "5511987654321"
PAYLOAD_DOCUMENTS = [json.loads(path.read_bytes()) for path in sorted(PAYLOADS.glob("*.json"))]
API_STATUSES = {202, 400, 404, 409, 413, 422, 429}
ON_POSTGRESQL = connection.vendor == "postgresql"


# --- Strategies: JSON values, and the real payload files mutated --------------------------------

# Keys Meta uses, so random objects often hit the parser's and validator's real branches.
KEYS = st.sampled_from([
    "object", "entry", "id", "changes", "field", "value", "messaging_product", "metadata", "contacts",
    "profile", "name", "wa_id", "user_id", "messages", "statuses", "errors", "from", "timestamp", "type",
    "text", "body", "context", "image", "document", "filename", "caption", "interactive", "button_reply",
    "list_reply", "reaction", "emoji", "message_id", "status", "recipient_id", "to", "template", "language",
    "code", "components", "parameters", "action", "buttons", "reply", "title", "sections", "rows",
    "location", "latitude", "longitude", "header", "footer", "link", "phone_number_id", "edit", "message",
]) | st.text(max_size=12)
TEXTS = st.text(max_size=40) | st.sampled_from([
    "", " ", "whatsapp_business_account", "messages", "text", "sent", "delivered", "read", "failed",
    "<script>alert(1)</script>", "\u0000", "😀" * 5, "1700000000", "-1", "1e400", "NaN",
])
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300, max_value=10**400)
           | st.floats(allow_nan=False, allow_infinity=False) | TEXTS)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=25,
)


def nested(value, depth):
    for level in range(depth):
        value = [value] if level % 2 else {"v": value}
    return value


def places(document):
    """Every (container, key) in a JSON document, depth first."""
    found = []
    stack = [document]
    while stack:
        container = stack.pop()
        keys = list(container) if isinstance(container, dict) else range(len(container))
        for key in keys:
            found.append((container, key))
            if isinstance(container[key], dict | list):
                stack.append(container[key])
    return found


REPLACEMENTS = st.one_of(
    JSON,
    st.text(min_size=200, max_size=2000),  # long strings (past column lengths)
    st.builds(lambda n: "x" * n, st.integers(5_000, 200_000)),  # huge strings
    st.text(st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF, exclude_categories=["Cs"]), max_size=30),
    st.builds(nested, JSON, st.integers(20, 200)),  # deep nesting
)


@st.composite
def mutated(draw, documents):
    """One of `documents`, with 1-4 keys dropped, duplicated, or given another type or value."""
    document = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(1, 4))):
        spots = places(document)
        if not spots:
            break
        container, key = draw(st.sampled_from(spots))
        action = draw(st.sampled_from(["drop", "replace", "replace", "replace", "duplicate", "wrap"]))
        if action == "drop":
            del container[key]
        elif action == "duplicate" and isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
        elif action == "wrap":
            container[key] = [container[key]] if draw(st.booleans()) else {"value": container[key]}
        else:
            container[key] = draw(REPLACEMENTS)
    return document


def understood(body):
    """The messages and statuses the parser must return: every object in a `messages` change's
    lists, however odd the rest of the body is."""
    messages, statuses = [], []
    if not isinstance(body, dict) or body.get("object") != "whatsapp_business_account":
        return messages, statuses
    for entry in body.get("entry") if isinstance(body.get("entry"), list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict) or change.get("field") != "messages":
                continue
            value = change.get("value")
            if isinstance(value, dict):
                for key, found in (("messages", messages), ("statuses", statuses)):
                    items = value.get(key)
                    found.extend(item for item in (items if isinstance(items, list) else []) if isinstance(item, dict))
    return messages, statuses


# --- Strategies: valid send-API messages within Meta's limits ------------------------------------

VISIBLE = st.characters(exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"])
# What the send API accepts anywhere: no NUL, no lone UTF-16 surrogate (no database stores them).
STORABLE = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")


def visible_text(max_size):
    """Text Meta accepts for a required field: at most max_size characters, not only whitespace."""
    # No NUL and no lone surrogates: the send API refuses them (no database stores them).
    return st.builds(lambda head, tail: (head + tail)[:max_size], st.text(VISIBLE, min_size=1, max_size=1),
                     st.text(STORABLE, max_size=max_size - 1))


def unique_texts(max_size, count, fold=False):
    return st.lists(visible_text(max_size), min_size=count, max_size=count,
                    unique_by=(lambda text: text.casefold()) if fold else (lambda text: text))


RECIPIENTS = st.sampled_from([CUSTOMER, "+55 (11) 98765-4321", "55 11 98765 4321"])
TEXT_MESSAGES = st.builds(
    lambda to, body, preview: {"to": to, "type": "text", "text": {"body": body, **preview}},
    RECIPIENTS, visible_text(4096), st.sampled_from([{}, {"preview_url": True}, {"preview_url": False}]),
)


@st.composite
def button_messages(draw):
    count = draw(st.integers(1, 3))
    ids, titles = draw(unique_texts(256, count)), draw(unique_texts(20, count, fold=True))
    interactive = {
        "type": "button", "body": {"text": draw(visible_text(1024))},
        "action": {"buttons": [{"type": "reply", "reply": {"id": i, "title": t}}
                               for i, t in zip(ids, titles, strict=True)]},
    }
    if draw(st.booleans()):
        interactive["header"] = {"type": "text", "text": draw(visible_text(60))}
    if draw(st.booleans()):
        interactive["footer"] = {"text": draw(visible_text(60))}
    return {"to": draw(RECIPIENTS), "type": "interactive", "interactive": interactive}


@st.composite
def list_messages(draw):
    total = draw(st.integers(1, 10))
    sizes = draw(st.lists(st.integers(1, 10), min_size=1, max_size=min(total, 10)))
    sizes = [size for size in sizes if size <= total][:10] or [1]
    while sum(sizes) > total:
        sizes.pop()
    sizes = sizes or [1]
    ids = iter(draw(unique_texts(200, sum(sizes))))
    sections = []
    for size in sizes:
        rows = []
        for _ in range(size):
            row = {"id": next(ids), "title": draw(visible_text(24))}
            if draw(st.booleans()):
                row["description"] = draw(st.text(STORABLE, max_size=72))
            rows.append(row)
        section = {"rows": rows}
        if len(sizes) > 1 or draw(st.booleans()):
            section["title"] = draw(visible_text(24))
        sections.append(section)
    interactive = {"type": "list", "body": {"text": draw(visible_text(4096))},
                   "action": {"button": draw(visible_text(20)), "sections": sections}}
    return {"to": draw(RECIPIENTS), "type": "interactive", "interactive": interactive}


VALID_MESSAGES = st.one_of(TEXT_MESSAGES, button_messages(), list_messages())
# Real examples of every other type, as seeds for mutation.
SEED_MESSAGES = [
    {"to": CUSTOMER, "type": "image", "image": {"link": "https://example.com/a.jpg", "caption": "Foto"}},
    {"to": CUSTOMER, "type": "document", "document": {"id": "1234", "filename": "nota.pdf", "caption": "Nota"}},
    {"to": CUSTOMER, "type": "audio", "audio": {"id": "1234", "voice": True}},
    {"to": CUSTOMER, "type": "location", "location": {"latitude": -23.5, "longitude": -46.6, "name": "Loja"}},
    {"to": CUSTOMER, "type": "contacts", "contacts": [{"name": {"formatted_name": "Ana"},
                                                       "phones": [{"phone": "+5511999990000"}]}]},
    {"to": CUSTOMER, "type": "interactive", "interactive": {
        "type": "cta_url", "body": {"text": "Veja"},
        "action": {"name": "cta_url", "parameters": {"display_text": "Abrir", "url": "https://example.com"}}}},
    {"to": CUSTOMER, "type": "template", "template": {
        "name": "pedido_pronto", "language": {"code": "pt_BR"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]}},
    {"to": CUSTOMER, "type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}},
    {"to": CUSTOMER, "type": "text", "text": {"body": "oi"}, "context": {"message_id": "wamid.Y"},
     "messaging_product": "whatsapp", "recipient_type": "individual"},
]
MESSAGES_TO_MUTATE = st.one_of(VALID_MESSAGES, st.sampled_from(SEED_MESSAGES)).map(lambda m: [m])


@st.composite
def mutated_message(draw):
    return draw(mutated(draw(MESSAGES_TO_MUTATE)))


ANY_MESSAGE = st.one_of(VALID_MESSAGES, mutated_message(), JSON)


# --- Webhook and API bodies --------------------------------------------------------------------


def encode(document):
    return json.dumps(document, ensure_ascii=True).encode()


FUZZ_IDS = itertools.count()
MESSAGE_DOCUMENTS = [document for document in PAYLOAD_DOCUMENTS if understood(document)[0]]


@st.composite
def customer_messages(draw):
    """A payload file of customer messages, one of them mutated (its type's object above all), from
    a new customer and dated now, so that the bot takes its turn on it (it is silent on a message
    older than the 24-hour window, and after 30 messages a minute from one customer)."""
    document = copy.deepcopy(draw(st.sampled_from(MESSAGE_DOCUMENTS)))
    message = draw(st.sampled_from(understood(document)[0]))
    kind = message.get("type")
    # Inside the type's object (what the bot reads) half the time.
    target = message[kind] if isinstance(message.get(kind), dict | list) and draw(st.booleans()) else message
    for _ in range(draw(st.integers(1, 3))):
        spots = places(target)
        if not spots:
            message[kind] = draw(REPLACEMENTS)
            break
        container, key = draw(st.sampled_from(spots))
        if draw(st.integers(0, 3)):
            container[key] = draw(REPLACEMENTS)
        else:
            del container[key]
    message["from"] = draw(st.from_regex(r"55119[0-9]{8}", fullmatch=True))
    message["id"] = f"wamid.fuzz.{next(FUZZ_IDS)}"  # never a duplicate, which would have no turn
    message["timestamp"] = str(int(time.time()))
    return document


WEBHOOK_BODIES = st.one_of(
    st.builds(encode, mutated(PAYLOAD_DOCUMENTS)),
    st.builds(encode, customer_messages()),
    st.builds(lambda value: encode({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "messages", "value": value}]}]}), st.dictionaries(KEYS, JSON, max_size=6)),
    st.builds(encode, JSON),
    st.binary(max_size=200),
)
API_BODIES = st.one_of(st.builds(encode, ANY_MESSAGE), st.binary(max_size=200))
IDEMPOTENCY_KEYS = st.sampled_from(["", "", "", "k1", "k2"])


# --- Checks shared with bench/fuzz.py -------------------------------------------------------------


def check_webhook(client, body):
    """Post `body` signed: 200 with the body stored, or 400 with nothing stored; never a 5xx."""
    before = WebhookEvent.objects.count()
    response = post_signed(client, body)
    assert response.status_code in (200, 400), (response.status_code, body[:300])
    stored = WebhookEvent.objects.count() - before
    assert stored == (1 if response.status_code == 200 else 0)
    if response.status_code == 200:
        assert WebhookEvent.objects.latest("pk").body == body.decode()
    return response.status_code


def check_api(client, token, body, key=""):
    """POST /chatbot/send/: a contract status and, for errors, the contract's error JSON."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if key:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    response = client.post("/chatbot/send/", body, content_type="application/json", **headers)
    assert response.status_code in API_STATUSES, (response.status_code, body[:300])
    answer = response.json()
    if response.status_code == 202:
        assert set(answer) == {"id", "status", "to", "type"} and answer["status"] == "queued"
        assert Message.objects.filter(pk=answer["id"], direction="out").exists()
    else:
        error = answer["error"]
        assert set(error) <= {"code", "message", "field"}
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
        assert isinstance(error.get("field", ""), str)
        if response.status_code == 429:
            assert int(response["Retry-After"]) >= 1
    return response.status_code


# --- (a) The parser ---------------------------------------------------------------------------


@SUITE
@given(st.one_of(JSON, mutated(PAYLOAD_DOCUMENTS), mutated(PAYLOAD_DOCUMENTS)))
def test_the_parser_never_raises_and_keeps_every_message_it_understands(body):
    events = parser.parse(body)
    parser.count(body)
    assert all(isinstance(event, parser.Event) for event in events)
    messages, statuses = understood(body)
    inbound = [event for event in events if isinstance(event, parser.InboundMessage)]
    updates = [event for event in events if isinstance(event, parser.StatusUpdate)]
    # Every object in those lists is an event carrying that very object: none dropped or merged.
    assert [event.raw for event in inbound] == messages
    assert [event.raw for event in updates] == statuses
    for event in inbound:
        assert isinstance(event.wamid, str) and isinstance(event.text, str) and isinstance(event.type, str)
        assert event.type
    for event in updates:
        assert isinstance(event.status, str)


@SUITE
@given(st.sampled_from(PAYLOAD_DOCUMENTS))
def test_every_payload_file_survives_a_json_round_trip_unchanged(body):
    assert parser.parse(json.loads(json.dumps(body))) == parser.parse(body)


# --- (b) The send API's validation ----------------------------------------------------------------


@SUITE
@given(ANY_MESSAGE)
def test_validation_raises_only_invalid_message(data):
    try:
        message = validation.clean_message(data)
    except validation.InvalidMessage as error:
        assert isinstance(error.field, str) and error.message
        return
    # What it accepts is a message object the sender can store and show.
    assert message["type"] in validation.CHECKS and message["type"] in message
    json.dumps(message)
    assert isinstance(validation.outbound_text(message), str)


@SUITE
@given(VALID_MESSAGES)
def test_valid_messages_within_metas_limits_are_accepted(data):
    message = validation.clean_message(copy.deepcopy(data))
    assert message["to"] == CUSTOMER
    assert message[data["type"]] == data[data["type"]]


# --- (c) The webhook, signed random bodies --------------------------------------------------------


@pytest.mark.django_db
@settings(SUITE, max_examples=150)
@given(WEBHOOK_BODIES)
def test_signed_random_webhooks_never_get_a_5xx_and_what_is_accepted_is_stored(body):
    check_webhook(Client(), body)


@pytest.mark.django_db
@settings(SUITE, max_examples=60)
@given(st.builds(encode, mutated(PAYLOAD_DOCUMENTS)))
def test_accepted_webhooks_are_applied_without_an_exception(body):
    assert check_webhook(Client(), body) == 200
    inbound.drain(limit=None)
    event = WebhookEvent.objects.latest("pk")
    assert event.result == "processed", event.error


# Seeds for the runs below: a fixed seed passing proves little about the next one (seed 29 once
# found bot turns that raised). bench/fuzz.py runs many more examples per seed.
SEEDS = [1, 8, 29, 404, 2026]


def with_seed(seed, examples, strategy, function):
    """Call function(example) for `examples` values of `strategy` generated from `seed`."""
    from hypothesis import Phase
    from hypothesis import seed as fixed_seed

    @fixed_seed(seed)
    @settings(SUITE, derandomize=False, max_examples=examples, phases=[Phase.generate])
    @given(strategy)
    def run(example):
        function(example)

    run()


@pytest.mark.django_db
@pytest.mark.parametrize("seed", SEEDS)
def test_every_accepted_message_is_applied_and_answered_whatever_the_seed(seed, caplog):
    from django_tasks_db.models import DBTaskResult

    client = Client()

    def one(body):
        if check_webhook(client, body) == 200:
            inbound.drain(limit=None)
            event = WebhookEvent.objects.latest("pk")
            assert event.result == "processed", event.error

    caplog.set_level(logging.ERROR)
    with_seed(seed, 80, st.builds(encode, customer_messages()), one)
    # A turn that raised is logged and leaves the conversation's safety-net task behind.
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert not DBTaskResult.objects.filter(task_path="chatbot.conversation.handle_inbound_message").exists()


# --- (d) The send API, random JSON with a valid token ----------------------------------------------


@pytest.fixture
def api_token(db, settings):
    settings.API_REQUESTS_PER_MINUTE = 10**6  # the fuzz tests validation, not the rate limit
    Contact.objects.create(wa_id=CUSTOMER, name="Maria", last_inbound_at=timezone.now())
    return ApiToken.objects.create_token("fuzz")[1]


@settings(SUITE, max_examples=200)
@given(body=API_BODIES, key=IDEMPOTENCY_KEYS)
def test_the_send_api_answers_random_bodies_by_the_contract(api_token, body, key):
    check_api(Client(), api_token, body, key)


@settings(SUITE, max_examples=60)
@given(VALID_MESSAGES)
def test_the_send_api_queues_valid_messages(api_token, data):
    assert check_api(Client(), api_token, encode(data)) == 202



# --- Bugs the fuzzing found, each at its smallest ------------------------------------------------

def test_a_huge_coordinate_is_invalid_not_a_crash():
    with pytest.raises(validation.InvalidMessage):
        validation.clean_message({"to": CUSTOMER, "type": "location", "location": {"latitude": 10**400,
                                                                                  "longitude": 0}})


@pytest.mark.parametrize("text", ["a\\u0000", "\\udd30", "\\ud83d"], ids=["nul", "lone-low-surrogate", "lone-high"])
def test_text_no_database_can_store_is_refused(api_token, text):
    client = Client(raise_request_exception=False)
    body = b'{"to": "5511987654321", "type": "text", "text": {"body": "%s"}}' % text.encode()
    assert check_api(client, api_token, body) == 400


def test_long_message_ids_are_refused(api_token):
    body = encode({"to": CUSTOMER, "type": "text", "text": {"body": "oi"}, "context": {"message_id": "w" * 256}})
    assert check_api(Client(raise_request_exception=False), api_token, body) == 400


def webhook_message(**message):
    return encode({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"metadata": {"phone_number_id": "106540352242922"},
                                       "contacts": [{"profile": {"name": "Ana"}, "wa_id": CUSTOMER}],
                                       "messages": [{"from": CUSTOMER, "id": "wamid.F1", "timestamp": "1763900000",
                                                     **message}]}}]}]})


@pytest.mark.django_db
@pytest.mark.parametrize("message", [
    pytest.param({"type": "system", "system": []}, id="system-list"),
    pytest.param({"type": "document", "document": {"id": "1", "filename": "x" * 300 + ".pdf"}}, id="long-filename"),
    pytest.param({"type": "text", "text": {"body": "a\u0000b"}}, id="nul"),
    pytest.param({"type": "text", "text": {"body": "a\udd30b"}}, id="lone-surrogate"),
    pytest.param({"type": "system", "system": {"type": "user_changed_number", "wa_id": "5" * 40}},
                 id="long-new-number"),
    pytest.param({"type": "system", "system": {"type": "user_changed_number", "wa_id": 10**40}},
                 id="numeric-new-number"),
])
def test_odd_but_signed_messages_are_applied(message):
    assert check_webhook(Client(), webhook_message(**message)) == 200
    inbound.drain(limit=None)
    assert WebhookEvent.objects.get().result == "processed", WebhookEvent.objects.get().error
    assert Message.objects.filter(wamid="wamid.F1").exists()
