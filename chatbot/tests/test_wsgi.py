"""hoztech/wsgi.py: the webhook's lean handler, and the whole middleware everywhere else."""

import io

import pytest

from chatbot.models import WebhookEvent
from chatbot.tests.helpers import payload_bytes
from chatbot.whatsapp.webhook import sign

pytestmark = pytest.mark.django_db(transaction=True)


def call(path, method="GET", body=b"", headers=None):
    from hoztech.wsgi import application

    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "HTTP_HOST": "localhost", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json", "wsgi.errors": io.StringIO(),
        **(headers or {}),
    }
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer.update(status=status, headers=dict(response_headers))

    answer["body"] = b"".join(application(environ, start_response))
    return answer


def test_the_webhook_is_served_without_session_or_language_middleware():
    body = payload_bytes("text")
    answer = call("/chatbot/webhook/", "POST", body, {"HTTP_X_HUB_SIGNATURE_256": sign(body)})
    assert answer["status"].startswith("200")
    assert WebhookEvent.objects.count() == 1
    assert "Content-Language" not in answer["headers"]  # no LocaleMiddleware
    assert answer["headers"]["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still runs


def test_the_webhook_still_refuses_unsigned_posts():
    assert call("/chatbot/webhook/", "POST", b"{}")["status"].startswith("401")


def test_other_pages_get_the_whole_middleware():
    answer = call("/accounts/login/")
    assert answer["status"].startswith("200")
    assert answer["headers"]["Content-Language"] == "pt-br"
    assert "csrftoken" in answer["headers"].get("Set-Cookie", "")
    assert answer["headers"]["X-Frame-Options"] == "DENY"
