from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from chatbot import health, outbox
from chatbot.models import Contact, EventDelivery, Message, PhoneNumber, WebhookEndpoint, WebhookEvent, WorkerBeat

pytestmark = pytest.mark.django_db

URL = "/chatbot/health/"


@pytest.fixture(autouse=True)
def worker():
    return WorkerBeat.objects.create(worker_id="w1", hostname="app1", pid=42)


def test_healthy_sandbox(client):
    response = client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body) == {"status", "version", "time", "checks"}
    assert set(body["checks"]) == {"database", "queue", "worker", "whatsapp", "webhook"}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["latency_ms"] >= 0
    assert body["checks"]["queue"] == {"ok": True, "pending": 0, "oldest_pending_s": 0}
    assert body["checks"]["whatsapp"]["mode"] == "sandbox"
    assert body["checks"]["whatsapp"]["missing"] == ["WHATSAPP_ACCESS_TOKEN"]
    assert body["checks"]["webhook"] == {"last_received_at": None, "failed_last_24h": 0}
    assert response["Cache-Control"] == "max-age=5"


def test_without_app_secret_webhooks_cannot_arrive(client, settings):
    settings.WHATSAPP_APP_SECRET = ""
    body = client.get(URL).json()
    assert body["status"] == "degraded"
    assert body["checks"]["whatsapp"]["ok"] is False
    assert "WHATSAPP_APP_SECRET" in body["checks"]["whatsapp"]["missing"]


def test_live_mode_shows_no_secret(client, settings):
    settings.WHATSAPP_ACCESS_TOKEN = "EAAGsecretTOKEN123"
    settings.WHATSAPP_APP_SECRET = "appsecret456"
    response = client.get(URL)
    body = response.json()
    assert body["checks"]["whatsapp"] == {"ok": True, "mode": "live", "missing": [], "token": "unknown",
                                          "numbers": []}
    assert b"EAAGsecretTOKEN123" not in response.content
    assert b"appsecret456" not in response.content


def test_a_stale_queue_degrades(client):
    old = timezone.now() - timedelta(minutes=5)
    task = DBTaskResult.objects.create(
        args_kwargs={"args": [], "kwargs": {}},
        task_path="chatbot.tasks.nothing",
        backend_name="default",
        run_after=old,
    )
    DBTaskResult.objects.filter(pk=task.pk).update(enqueued_at=old)
    body = client.get(URL).json()
    assert body["status"] == "degraded"
    assert body["checks"]["queue"]["pending"] == 1
    assert body["checks"]["queue"]["oldest_pending_s"] >= 300


def test_webhook_events_waiting_count_as_queued_work(client):
    WebhookEvent.objects.create(body="{}", received_at=timezone.now() - timedelta(minutes=2))
    WebhookEvent.objects.create(body="{}", result="processed")
    queue = client.get(URL).json()["checks"]["queue"]
    assert queue["pending"] == 1
    assert queue["ok"] is False
    assert queue["oldest_pending_s"] >= 120


def test_events_due_to_other_systems_count_as_queued_work_but_not_retries_or_disabled_endpoints(client):
    now = timezone.now()
    up = WebhookEndpoint.objects.create(url="https://crm.example/hooks", secret="s")
    down = WebhookEndpoint.objects.create(url="https://old.example/hooks", secret="s", active=False)
    waiting = [(up, now - timedelta(minutes=2)), (up, now + timedelta(minutes=10)), (down, now - timedelta(hours=1))]
    for index, (endpoint, due) in enumerate(waiting):
        EventDelivery.objects.create(endpoint=endpoint, event_id=f"evt_{index}", type="message.read", body="{}",
                                     next_attempt_at=due)
    queue = client.get(URL).json()["checks"]["queue"]
    assert (queue["pending"], queue["ok"]) == (1, False)
    assert 120 <= queue["oldest_pending_s"] < 3600


def test_no_worker_running_degrades(client, worker):
    worker.delete()
    body = client.get(URL).json()
    assert body["status"] == "degraded"
    assert body["checks"]["worker"] == {"ok": False, "last_seen": None}


def test_a_silent_worker_degrades(client, worker):
    WorkerBeat.objects.filter(pk=worker.pk).update(last_seen=timezone.now() - timedelta(minutes=2))
    body = client.get(URL).json()
    assert body["status"] == "degraded"
    assert body["checks"]["worker"]["ok"] is False
    assert body["checks"]["worker"]["last_seen"] is not None


def test_webhook_figures(client):
    WebhookEvent.objects.create(body="{}", result="processed")
    WebhookEvent.objects.create(body="{}", result="failed")
    WebhookEvent.objects.create(body="{}", result="failed", received_at=timezone.now() - timedelta(days=2))
    body = client.get(URL).json()
    assert body["checks"]["webhook"]["failed_last_24h"] == 1
    assert body["checks"]["webhook"]["last_received_at"] is not None


def test_database_down_answers_503(client):
    with mock.patch("chatbot.health.connection.cursor", side_effect=OperationalError("connection refused")):
        response = client.get(URL)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["database"] == {"ok": False, "latency_ms": None}


def test_health_needs_no_login_and_only_answers_get(client):
    assert client.get(URL).status_code == 200
    assert client.post(URL).status_code == 405


# --- Token state from the last real call, number quality, caching, no personal data ---


def sent_message(wamid, moment=None):
    number = PhoneNumber.objects.default()
    contact = Contact.objects.get_or_create(wa_id="5511987654321", defaults={"name": "Maria Conceição"})[0]
    return Message.objects.create(
        phone_number=number, contact=contact, direction="out", source="api", type="text", text="Seu pedido chegou",
        status="sent", wamid=wamid, sent_at=moment or timezone.now(), timestamp=moment or timezone.now(),
    )


def test_token_is_ok_after_a_send_meta_accepted(client, settings):
    settings.WHATSAPP_ACCESS_TOKEN = "EAAGsecretTOKEN123"
    assert client.get(URL).json()["checks"]["whatsapp"]["token"] == "unknown"
    sent_message("wamid.ACCEPTED1")
    health.forget()
    assert client.get(URL).json()["checks"]["whatsapp"]["token"] == "ok"


def test_a_sandbox_send_says_nothing_about_the_token(client, settings):
    settings.WHATSAPP_ACCESS_TOKEN = "EAAGsecretTOKEN123"
    sent_message("sandbox.abc")
    assert client.get(URL).json()["checks"]["whatsapp"]["token"] == "unknown"


def test_token_checked_by_the_command_is_ok_and_a_refusal_wins(client, settings):
    settings.WHATSAPP_ACCESS_TOKEN = "EAAGsecretTOKEN123"
    number = PhoneNumber.objects.default()
    PhoneNumber.objects.filter(pk=number.pk).update(token_fingerprint=outbox.token_fingerprint())
    assert client.get(URL).json()["checks"]["whatsapp"]["token"] == "ok"
    PhoneNumber.objects.filter(pk=number.pk).update(token_invalid_at=timezone.now())
    health.forget()
    body = client.get(URL).json()
    assert body["checks"]["whatsapp"]["token"] == "invalid"
    assert body["status"] == "degraded"


def test_number_quality_and_tier_from_the_last_check_or_webhook(client):
    PhoneNumber.objects.create(phone_number_id="106540352242922", quality_rating="YELLOW", messaging_limit="TIER_2K",
                               throughput_level="STANDARD", checked_at=timezone.now())
    numbers = client.get(URL).json()["checks"]["whatsapp"]["numbers"]
    assert numbers == [{"phone_number_id": "106540352242922", "quality_rating": "YELLOW",
                        "messaging_limit": "TIER_2K", "throughput": "STANDARD", "checked_at": numbers[0]["checked_at"]}]
    assert numbers[0]["checked_at"] is not None


def test_no_personal_data_in_the_report(client, settings):
    settings.WHATSAPP_ACCESS_TOKEN = "EAAGsecretTOKEN123"
    sent_message("wamid.ACCEPTED2")
    WebhookEvent.objects.create(body='{"from": "5511987654321"}', result="failed")
    content = client.get(URL).content.decode()
    for personal in ("5511987654321", "Maria", "Seu pedido", "wamid.ACCEPTED2", "EAAGsecretTOKEN123"):
        assert personal not in content


def test_the_report_is_reused_for_a_few_seconds(client):
    first = client.get(URL).json()
    WorkerBeat.objects.all().delete()
    # Within the cache window a probe gets the same checks: a dozen probes a second cost one set of queries.
    second = client.get(URL).json()
    assert second["status"] == first["status"] == "ok"
    assert {k: v for k, v in second["checks"].items() if k != "database"} == \
        {k: v for k, v in first["checks"].items() if k != "database"}
    health.forget()
    assert client.get(URL).json()["status"] == "degraded"
    # Not cached when asked fresh (the status command).
    assert health.report(cached=False)["checks"]["worker"]["ok"] is False


def test_a_database_outage_shows_at_once_whatever_the_cache(client):
    assert client.get(URL).json()["status"] == "ok"  # cached now
    with mock.patch("chatbot.health.connection.cursor", side_effect=OperationalError("gone")):
        response = client.get(URL)
    assert response.status_code == 503
    assert response.json()["status"] == "down"


def test_a_cache_outage_does_not_take_health_down(client):
    with mock.patch("chatbot.health.cache.get", side_effect=ConnectionError("redis down")), \
            mock.patch("chatbot.health.cache.set", side_effect=ConnectionError("redis down")):
        response = client.get(URL)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_states_ok_degraded_down(client):
    assert client.get(URL).json()["status"] == "ok"
    WorkerBeat.objects.update(last_seen=timezone.now() - timedelta(seconds=61))
    health.forget()
    assert client.get(URL).json()["status"] == "degraded"
    health.forget()
    with mock.patch("chatbot.health.connection.cursor", side_effect=OperationalError("gone")):
        response = client.get(URL)
    assert (response.status_code, response.json()["status"]) == (503, "down")
