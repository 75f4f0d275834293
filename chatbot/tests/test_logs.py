"""Logging: secrets redacted from every record, a request id on every line, JSON lines on demand."""

import http.client
import json
import logging
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings as django_settings

from chatbot import logs, outbox
from chatbot.models import Contact, Message, PhoneNumber
from chatbot.tests.helpers import payload_bytes

BASE_DIR = Path(__file__).resolve().parents[2]
TOKEN = "EAAGm0PX4ZCpsBAKZCkq7yZBZBZAsecretAccessToken1234"


def capture(*names, level=logging.DEBUG):
    """A handler like the configured ones (same filters), attached to `names`, writing to a string."""
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RedactFilter())
    handler.addFilter(logs.RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(request_id)s] %(message)s"))
    loggers = [logging.getLogger(name) for name in names]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(level)

    def stop():
        for logger, old in zip(loggers, previous, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(old)
        return stream.getvalue()

    return stop


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("headers {'Authorization': 'Bearer abc.DEF-123_token'}", "abc.DEF-123_token"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("X-Hub-Signature-256: sha256=" + "ab" * 32, "ab" * 32),
        ("bad signature sha256=" + "0f" * 32, "0f" * 32),
        ("GET /v25.0/123?access_token=EAAB123secret&fields=id", "EAAB123secret"),
        ("GET /chatbot/webhook/?hub.mode=subscribe&hub.verify_token=mytoken&hub.challenge=1", "mytoken"),
        ("token EAAGm0PX4ZCpsBAKZCkq7yZBZBZAxyz seen", "EAAGm0PX4ZCpsBAKZCkq7yZBZBZAxyz"),
        ("API token hzt_Q2x1c3Rlcl9vZl90aGVfdG9rZW4 used", "Q2x1c3Rlcl9vZl90aGVfdG9rZW4"),
    ],
)
def test_secret_shapes_are_redacted(line, secret):
    redacted = logs.redact(line)
    assert secret not in redacted
    assert logs.REDACTED in redacted


def test_configured_secrets_are_redacted_wherever_they_appear(settings):
    settings.WHATSAPP_APP_SECRET = "my-app-secret-value"
    settings.WHATSAPP_ACCESS_TOKEN = "plain-token-without-shape"
    text = logs.redact("secret=my-app-secret-value, token plain-token-without-shape; 'abc'")
    assert "my-app-secret-value" not in text and "plain-token-without-shape" not in text
    assert text.endswith("; 'abc'")


def test_every_configured_handler_redacts_and_stamps_the_request_id():
    for name, handler in django_settings.LOGGING["handlers"].items():
        assert {"redact", "request_id"} <= set(handler.get("filters", [])), name


@pytest.mark.django_db
def test_a_log_captured_during_a_send_contains_no_token(fake_graph, settings):
    fake_graph.token = settings.WHATSAPP_ACCESS_TOKEN = TOKEN
    contact = Contact.objects.create(wa_id="5511987654321")
    message = Message.objects.create(phone_number=PhoneNumber.objects.default(), contact=contact, direction="out",
                                     source="api", type="text", text="Oi", payload={"body": "Oi"}, status="queued")
    graph_logger = logging.getLogger("chatbot.whatsapp.graph")
    send = http.client.HTTPConnection.request

    # What a developer's debugging patch would log: the request headers, and Meta's refusal in full.
    def log_headers(connection, method, url, body=None, headers=None, **kwargs):
        graph_logger.debug("sent %s %s with headers %s", method, url, headers)
        return send(connection, method, url, body, headers or {}, **kwargs)

    from chatbot.whatsapp import graph

    stop = capture("chatbot", "django")
    patch = mock.patch.object(http.client.HTTPConnection, "request", log_headers)
    patch.start()
    try:
        outbox.drain()
        fake_graph.fail_next(code=190, http_status=401)
        queued = Message.objects.create(phone_number=message.phone_number, contact=contact, direction="out",
                                        source="api", type="text", text="Oi", payload={"body": "Oi"},
                                        status="queued")
        outbox.drain()
        try:
            raise graph.GraphError(f"Meta refused Bearer {TOKEN}")
        except graph.GraphError:
            logging.getLogger("chatbot.outbox").exception("send failed with token %s", TOKEN)
    finally:
        patch.stop()
        output = stop()
    assert Message.objects.get(pk=message.pk).status == "sent"
    assert Message.objects.get(pk=queued.pk).status == "queued"  # paused on the refused token
    assert "Authorization" in output and "Traceback" in output  # the lines were really logged
    assert TOKEN not in output
    assert logs.REDACTED in output


@pytest.mark.django_db
def test_the_request_id_follows_the_request(client):
    stop = capture("chatbot.webhook", level=logging.INFO)
    try:
        # Refused (wrong signature): each request logs one line, and the signature must not be in it.
        client.post("/chatbot/webhook/", payload_bytes("text"), content_type="application/json",
                    HTTP_X_HUB_SIGNATURE_256="sha256=" + "0" * 64, HTTP_X_REQUEST_ID="req-42")
        client.post("/chatbot/webhook/", b"{}", content_type="application/json",
                    HTTP_X_HUB_SIGNATURE_256="sha256=" + "0" * 64)
    finally:
        output = stop()
    first, second = output.strip().splitlines()
    assert "[req-42]" in first
    generated = second.split("[", 1)[1].split("]", 1)[0]
    assert len(generated) == 32 and generated != "req-42"
    assert "0" * 64 not in output
    assert logs.request_id() == "-"  # outside a request


def test_json_lines_carry_the_request_id():
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RedactFilter())
    handler.addFilter(logs.RequestIdFilter())
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("chatbot.test_logs")
    logger.addHandler(handler)
    try:
        # What Django's request_started and request_finished signals call around each request.
        logs._started(None, environ={"HTTP_X_REQUEST_ID": "abc-1"})
        logger.warning("Olá with Bearer %s", TOKEN)
        logs._finished(None)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["request_id"] == "abc-1"
    assert first["message"] == f"Olá with Bearer {logs.REDACTED}"
    assert (first["level"], first["logger"]) == ("WARNING", "chatbot.test_logs")
    assert second["request_id"] == "-"
    assert "ValueError: boom" in second["exception"]


def run_settings(code, **variables):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "ENV_FILE": "",
           "DJANGO_SETTINGS_MODULE": "hoztech.settings", "LOG_DIR": "/tmp/hoztech-test-logs",
           "SECRET_KEY": "x" * 50, **variables}
    return subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True)


def test_log_format_json_switches_every_handler():
    code = ("import django, logging; django.setup(); "
            "print(type(logging.getLogger('chatbot').handlers[0].formatter).__name__)")
    assert run_settings(code, LOG_FORMAT="json").stdout.strip() == "JsonFormatter"
    assert run_settings(code).stdout.strip() == "Formatter"
    result = run_settings("import django; django.setup()", LOG_FORMAT="xml")
    assert "Environment variable LOG_FORMAT is malformed" in result.stderr


def test_personal_data_in_urls_and_database_errors_is_redacted():
    lines = {
        "Not Found: /chatbot/api/contacts/5511987654321/": "5511987654321",
        '"GET /chatbot/dashboard/contacts/?q=5511987654321 HTTP/1.1" 200 1234': "5511987654321",
        'duplicate key value violates unique constraint "contact_unique_wa_id"\n'
        "DETAIL:  Key (wa_id)=(5511987654321) already exists.": "5511987654321",
        'DETAIL:  Key (user_id)=(BR.ab12) already exists.': "BR.ab12",
    }
    for line, personal in lines.items():
        assert personal not in logs.redact(line), line


def test_gunicorns_access_log_keeps_no_customer_number(tmp_path):
    """gunicorn as deployed (gunicorn.conf.py read from the working directory), asked for a contact."""
    import socket
    import time

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    access_log = tmp_path / "access.log"
    env = {**os.environ, "ENV_FILE": "", "DEBUG": "true", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "LOG_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=env, check=True,
                   capture_output=True)
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "hoztech.wsgi", "--bind",
                               f"127.0.0.1:{port}", "--access-logfile", str(access_log), "--workers", "1"],
                              cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/chatbot/api/contacts/5511987654321/?x=5511987654321",
                                      timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert answer.status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=10)
    line = access_log.read_text()
    assert "/chatbot/api/contacts/[REDACTED]/" in line
    assert "5511987654321" not in line
