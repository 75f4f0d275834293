"""The integrators' API (design.md, "Send API", "Read API", "Contact export")."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chatbot.models import ApiToken, Contact, Message, Template
from chatbot.tests.helpers import load_payload, payload_bytes, post_signed

pytestmark = pytest.mark.django_db

TEXT = {"to": "5511987654321", "type": "text", "text": {"body": "Olá! Seu pedido #42 foi enviado."}}
TEMPLATE = {"to": "5511987654321", "type": "template", "template": {
    "name": "promo_natal", "language": {"code": "pt_BR"},
    "components": [{"type": "body", "parameters": [{"type": "text", "text": "Maria"}]}]}}


@pytest.fixture
def token():
    return ApiToken.objects.create_token("loja")[1]


@pytest.fixture
def customer():
    return Contact.objects.create(wa_id="5511987654321", name="Maria", last_inbound_at=timezone.now())


def send(client, token, body, **headers):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post("/chatbot/send/", data, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


# --- Authentication and limits ---


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer "])
def test_no_or_bad_token_is_401(client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.post("/chatbot/send/", json.dumps(TEXT), content_type="application/json", **extra)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Message.objects.exists()


def test_a_revoked_token_is_401(client, token, customer):
    ApiToken.objects.update(revoked_at=timezone.now())
    assert send(client, token, TEXT).status_code == 401


def test_a_token_sending_too_fast_gets_429_with_retry_after(client, token, customer, settings):
    settings.API_REQUESTS_PER_MINUTE = 6
    assert send(client, token, TEXT).status_code == 202
    response = send(client, token, TEXT)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 10
    assert Message.objects.count() == 1


# --- Send ---


def test_a_text_is_queued_with_202(client, token, customer):
    response = send(client, token, TEXT)
    assert response.status_code == 202
    message = Message.objects.get()
    assert response.json() == {"id": message.pk, "status": "queued", "to": "5511987654321", "type": "text"}
    assert (message.contact, message.direction, message.source, message.status) == (customer, "out", "api", "queued")
    assert message.payload == {"body": "Olá! Seu pedido #42 foi enviado."}
    assert message.api_token == ApiToken.objects.get()


def test_invalid_messages_are_400_with_the_field(client, token, customer):
    buttons = [{"type": "reply", "reply": {"id": f"b{i}", "title": f"Opção {i}"}} for i in range(4)]
    body = {"to": "5511987654321", "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Escolha"}, "action": {"buttons": buttons}}}
    response = send(client, token, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["field"].startswith("interactive.action.buttons")
    assert not Message.objects.exists()


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"hi"', b"\xff"])
def test_a_body_that_is_not_a_message_is_400(client, token, body):
    response = send(client, token, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_callback_data_is_reserved(client, token, customer):
    response = send(client, token, {**TEXT, "biz_opaque_callback_data": "mine"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "biz_opaque_callback_data"


def test_an_unknown_sending_number_is_400(client, token, customer):
    response = send(client, token, {**TEXT, "phone_number_id": "999"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "phone_number_id"


def test_a_contact_who_never_wrote_gets_only_templates(client, token):
    response = send(client, token, TEXT)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "outside_customer_service_window"
    assert send(client, token, TEMPLATE).status_code == 202


def test_the_window_closes_24_hours_after_the_last_message(client, token, customer):
    Contact.objects.update(last_inbound_at=timezone.now() - timedelta(hours=24, minutes=1))
    assert send(client, token, TEXT).status_code == 422


def test_the_window_opened_by_a_real_webhook(client, token, run_tasks):
    payload = load_payload("text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(timezone.now().timestamp()))
    post_signed(client, payload)
    run_tasks()
    wa_id = Contact.objects.get().wa_id
    assert send(client, token, {**TEXT, "to": wa_id}).status_code == 202


def test_a_number_written_with_the_ninth_digit_finds_the_contact_without_it(client, token):
    known = Contact.objects.create(wa_id="551187654321", last_inbound_at=timezone.now())
    assert send(client, token, TEXT).status_code == 202
    assert Message.objects.get().contact == known
    assert Contact.objects.count() == 1


def test_opted_out_contacts_get_no_marketing_template(client, token, customer):
    Contact.objects.update(opted_out=True)
    Template.objects.create(name="promo_natal", language="pt_BR", category="MARKETING", status="APPROVED",
                            components=[{"type": "BODY", "text": "Oi {{1}}, 20% off!"}])
    response = send(client, token, TEMPLATE)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "opted_out"
    Template.objects.update(category="UTILITY")
    assert send(client, token, TEMPLATE).status_code == 202


def test_template_parameters_are_counted_against_the_synced_template(client, token, customer):
    Template.objects.create(name="promo_natal", language="pt_BR", category="UTILITY", status="APPROVED",
                            components=[{"type": "BODY", "text": "Oi {{1}}, seu pedido {{2}} saiu."}])
    response = send(client, token, TEMPLATE)
    assert response.status_code == 400
    assert response.json()["error"]["field"].startswith("template.components")


# --- Idempotency ---


def test_a_repeat_with_the_same_key_returns_the_first_answer(client, token, customer):
    first = send(client, token, TEXT, HTTP_IDEMPOTENCY_KEY="pedido-42")
    second = send(client, token, TEXT, HTTP_IDEMPOTENCY_KEY="pedido-42")
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert Message.objects.count() == 1


def test_the_same_key_with_another_body_is_409(client, token, customer):
    send(client, token, TEXT, HTTP_IDEMPOTENCY_KEY="pedido-42")
    response = send(client, token, {**TEXT, "text": {"body": "outro"}}, HTTP_IDEMPOTENCY_KEY="pedido-42")
    assert response.status_code == 409
    assert Message.objects.count() == 1


def test_a_key_expires_after_24_hours(client, token, customer):
    send(client, token, TEXT, HTTP_IDEMPOTENCY_KEY="pedido-42")
    from chatbot.models import IdempotencyKey

    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert send(client, token, TEXT, HTTP_IDEMPOTENCY_KEY="pedido-42").status_code == 202
    assert Message.objects.count() == 2


@pytest.mark.parametrize("key", ["k" * 256, "k" * 300, "pedido\u00e9", "pedido\x01"],
                         ids=["256-chars", "300-chars", "non-ascii", "control"])
def test_an_idempotency_key_out_of_bounds_is_400_every_time(client, token, customer, key):
    for _ in range(2):  # the repeat once answered 500: stored cut, looked up whole
        response = send(client, token, TEXT, HTTP_IDEMPOTENCY_KEY=key)
        assert response.status_code == 400
        assert response.json()["error"]["field"] == "Idempotency-Key"
    assert not Message.objects.exists()


def test_a_key_of_255_characters_works(client, token, customer):
    first = send(client, token, TEXT, HTTP_IDEMPOTENCY_KEY="k" * 255)
    assert send(client, token, TEXT, HTTP_IDEMPOTENCY_KEY="k" * 255).json() == first.json()
    assert Message.objects.count() == 1


@pytest.mark.parametrize("levels", [21, 900, 5000])
def test_a_deeply_nested_body_is_400_not_500(token, customer, levels):
    body = '{"to": "5511987654321", "type": "text", "text": {"body": "oi"}, "x": ' + "[" * levels + "]" * levels + "}"
    response = Client(raise_request_exception=False).post(
        "/chatbot/send/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 400
    assert "20" in response.json()["error"]["message"]  # the limit, named
    assert not Message.objects.exists()


# --- Scopes ---


@pytest.mark.parametrize(("scopes", "allowed"), [
    (None, {"send", "read", "upload"}),
    (["send"], {"send", "upload"}),
    (["read"], {"read"}),
    (["export"], {"export"}),
    (["campaigns"], set()),
    (["send", "read", "export", "campaigns"], {"send", "read", "upload", "export"}),
])
def test_a_token_does_only_what_its_scopes_allow(client, customer, scopes, allowed):
    from django.core.files.uploadedfile import SimpleUploadedFile

    token = ApiToken.objects.create_token("erp", scopes=scopes)[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    calls = {
        "send": lambda: send(client, token, TEXT),
        "read": lambda: client.get("/chatbot/api/messages/999/", **auth),
        "export": lambda: client.get("/chatbot/api/contacts/5511987654321/", **auth),
        "upload": lambda: client.post("/chatbot/media/", {"file": SimpleUploadedFile("a.pdf", b"%PDF")}, **auth),
    }
    for name, call in calls.items():
        response = call()
        if name in allowed:
            assert response.status_code != 403, name
        else:
            assert response.status_code == 403, name
            assert response.json()["error"]["code"] == "forbidden_scope"
    assert Message.objects.count() == (1 if "send" in allowed else 0)


# --- Read ---


def test_a_message_object_has_the_contract_keys(client, token, customer):
    message_id = send(client, token, TEXT).json()["id"]
    response = client.get(f"/chatbot/api/messages/{message_id}/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "id": message_id, "wamid": None, "direction": "out", "contact": "5511987654321",
        "phone_number_id": "106540352242922", "type": "text", "text": "Olá! Seu pedido #42 foi enviado.",
        "payload": {"body": "Olá! Seu pedido #42 foi enviado."}, "reply_to": None, "status": "queued",
        "error": None, "timestamp": body["timestamp"],
        "status_at": {"sent": None, "delivered": None, "read": None, "failed": None},
    }


def test_an_inbound_message_object(client, token, run_tasks):
    post_signed(client, payload_bytes("text"))
    run_tasks()
    message = Message.objects.get()
    body = client.get(f"/chatbot/api/messages/{message.pk}/", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert (body["direction"], body["status"], body["wamid"]) == ("in", "received", message.wamid)
    assert body["text"] == message.text != ""


@pytest.fixture
def exporter():
    return ApiToken.objects.create_token("crm", scopes=["export"])[1]


def test_read_api_needs_a_token_and_answers_404_for_unknown(client, token, exporter):
    assert client.get("/chatbot/api/messages/1/").status_code == 401
    response = client.get("/chatbot/api/messages/999/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 404
    assert client.get("/chatbot/api/contacts/5511000000000/", HTTP_AUTHORIZATION=f"Bearer {exporter}").status_code \
        == 404


def test_contact_export(client, token, exporter, customer):
    send(client, token, TEXT)
    body = client.get("/chatbot/api/contacts/5511987654321/", HTTP_AUTHORIZATION=f"Bearer {exporter}").json()
    assert body["contact"] == {
        "wa_id": "5511987654321", "user_id": "", "name": "Maria", "first_seen": body["contact"]["first_seen"],
        "last_seen": body["contact"]["last_seen"], "opted_out": False,
    }
    assert body["sessions"] == []
    assert [message["text"] for message in body["messages"]] == ["Olá! Seu pedido #42 foi enviado."]


def test_the_openapi_document_describes_the_api(client):
    schema = client.get("/chatbot/api/schema/").json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {"/send/", "/media/", "/api/messages/{id}/", "/api/contacts/{wa_id}/",
                                    "/api/campaigns/", "/api/campaigns/{id}/", "/api/campaigns/{id}/pause",
                                    "/api/campaigns/{id}/resume", "/api/campaigns/{id}/cancel",
                                    "/api/campaigns/{id}/recipients.csv"}
    assert set(schema["paths"]["/send/"]["post"]["responses"]) >= {"202", "400", "401", "422", "429"}


def test_errors_are_in_portuguese_unless_english_is_asked_for(client, token):
    assert send(client, token, TEXT).json()["error"]["message"].startswith("Mais de 24 horas")
    english = send(client, token, TEXT, HTTP_ACCEPT_LANGUAGE="en")
    assert english.json()["error"]["message"].startswith("More than 24 hours")


def test_a_wrong_method_gets_the_apis_json_error(client, token):
    for method, url in (("get", "/chatbot/send/"), ("post", "/chatbot/api/messages/1/"), ("put", "/chatbot/media/")):
        response = getattr(client, method)(url, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert response["Allow"] in ("GET", "POST")


@pytest.mark.parametrize("to", ["abc", "12", "+55 (11) 9", "US.", "us.123"])
def test_a_recipient_that_is_no_number_is_400_before_any_rule(client, token, to):
    response = send(client, token, {**TEXT, "to": to})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "to"
    assert not Contact.objects.exclude(wa_id="5511987654321").exists()  # nothing created for it
