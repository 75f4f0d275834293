"""The webhook contract (design.md, "Webhook"): handshake, signature, sizes, durable acknowledgement."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from chatbot.models import Message, WebhookEvent
from chatbot.tests.helpers import failing_apply, load_payload, payload_bytes, post_signed
from chatbot.whatsapp.webhook import sign

URL = "/chatbot/webhook/"
pytestmark = pytest.mark.django_db


# --- GET handshake (cloud-api.md §1) ---


def test_handshake_echoes_the_challenge(client):
    response = client.get(
        URL, {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "1158201444"}
    )
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "1"},
        {"hub.challenge": "1"},
        {},
    ],
)
def test_handshake_refuses_anything_else(client, params):
    assert client.get(URL, params).status_code == 403


# --- POST refusals: nothing stored ---


def test_missing_signature_is_401(client):
    response = client.post(URL, payload_bytes("text"), content_type="application/json")
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize(
    "header",
    [
        "sha256=" + "0" * 64,
        "sha1=" + "0" * 40,
        "",
        "sha256=",
    ],
)
def test_wrong_signature_is_403(client, header):
    response = client.post(URL, payload_bytes("text"), content_type="application/json", HTTP_X_HUB_SIGNATURE_256=header)
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0


def test_other_algorithm_with_the_right_digest_is_403(client):
    body = payload_bytes("text")
    header = sign(body).replace("sha256=", "sha512=")
    assert client.post(URL, body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=header).status_code == 403


def test_one_changed_byte_is_403(client):
    body = payload_bytes("text")
    header = sign(body)
    tampered = body.replace(b"5511987654321", b"5511987654320", 1)
    assert tampered != body
    response = client.post(URL, tampered, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=header)
    assert response.status_code == 403
    assert Message.objects.count() == 0


def test_without_app_secret_every_post_is_refused(client, settings):
    body = payload_bytes("text")
    header = sign(body, secret="")
    settings.WHATSAPP_APP_SECRET = ""
    response = client.post(URL, body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=header)
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0
    assert client.get("/chatbot/health/").json()["checks"]["whatsapp"]["ok"] is False


def test_signature_is_checked_on_the_raw_bytes(client):
    # Meta signs non-ASCII escaped as \\uXXXX; the same JSON re-serialized with real accents differs.
    body = payload_bytes("text")
    assert b"\\u00" in body
    reserialized = json.dumps(json.loads(body), ensure_ascii=False).encode()
    response = client.post(URL, body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=sign(reserialized))
    assert response.status_code == 403
    assert post_signed(client, body).status_code == 200


def test_body_over_3_mb_is_413(client):
    body = json.dumps({"object": "whatsapp_business_account", "padding": "x" * (3 * 1024 * 1024)}).encode()
    response = client.post(URL, body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=sign(body))
    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b"", b"\xff\xfe{}", b"{" * 100000])
def test_not_a_json_object_is_400(client, body):
    assert post_signed(client, body).status_code == 400
    assert WebhookEvent.objects.count() == 0


# --- POST accepted ---


def test_valid_post_is_stored_then_acknowledged_then_applied(client, run_tasks):
    response = post_signed(client, payload_bytes("text"))
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.body == payload_bytes("text").decode()
    assert event.result == "pending"
    assert abs(timezone.now() - event.received_at) < timedelta(seconds=5)
    assert (event.summary, event.error, event.attempts) == ({}, "", 0)
    assert not DBTaskResult.objects.exists()  # the pending event is the workers' inbox
    run_tasks()
    event.refresh_from_db()
    assert event.result == "processed"
    assert event.summary["messages"] == 1
    assert Message.objects.count() == 1


def test_shapes_we_do_not_understand_are_stored_and_acknowledged(client, run_tasks):
    for body in [b"{}", b'{"object": "page", "entry": []}', payload_bytes("unknown_field")]:
        assert post_signed(client, body).status_code == 200
    run_tasks()
    assert WebhookEvent.objects.count() == 3
    assert all(event.result == "processed" for event in WebhookEvent.objects.all())
    assert WebhookEvent.objects.filter(summary__unsupported__gte=1).count() == 2
    assert WebhookEvent.objects.filter(summary__account=1).count() == 1  # a field Meta adds later


def test_a_failure_while_applying_keeps_the_event_and_answers_200(client, run_tasks):
    with failing_apply(KeyError("boom")):
        response = post_signed(client, payload_bytes("text"))
        run_tasks()
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.result == "failed"
    assert "boom" in event.error
    assert Message.objects.count() == 0

    from chatbot import inbound

    inbound.reprocess(event)
    event.refresh_from_db()
    assert event.result == "processed"
    assert event.attempts == 2
    assert Message.objects.count() == 1


def test_database_down_is_not_acknowledged(client):
    with mock.patch("chatbot.inbound.store", side_effect=OperationalError("server closed the connection")):
        response = post_signed(client, payload_bytes("text"))
    assert response.status_code == 503


def test_log_line_has_counts_but_no_text_or_signature(client, caplog):
    body = payload_bytes("text")
    text = load_payload("text")["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"]
    with caplog.at_level("INFO", logger="chatbot"):
        post_signed(client, body)
    lines = [record.getMessage() for record in caplog.records if record.name == "chatbot.webhook"]
    assert len(lines) == 1
    assert "webhook 200" in lines[0] and "stored messages=1" in lines[0]
    assert text not in caplog.text
    assert sign(body) not in caplog.text
    assert sign(body).removeprefix("sha256=") not in caplog.text


def test_other_methods_are_405(client):
    assert client.put(URL).status_code == 405
