"""Media both ways (chatbot/media.py) against the fake Graph API, and the views that serve them."""

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from chatbot.management.commands.bootstrap import OPERATORS_GROUP
from chatbot.models import ApiToken, Message
from chatbot.tests.helpers import payload_bytes, post_signed

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40


@pytest.fixture
def image_message(client, fake_graph, run_tasks):
    """An inbound image webhook whose media Meta holds (media id from the payload file)."""
    post_signed(client, payload_bytes("image"))
    run_tasks_without_download(run_tasks)
    message = Message.objects.get(type="image")
    fake_graph.add_media(message.media_id, JPEG, "image/jpeg")
    return message


def run_tasks_without_download(run_tasks):
    from unittest import mock

    with mock.patch("chatbot.tasks.media.download", return_value=None):
        run_tasks()


def test_inbound_media_is_downloaded_in_the_background(image_message, run_tasks):
    from chatbot import tasks

    tasks.download_media.enqueue(image_message.pk)
    run_tasks()
    image_message.refresh_from_db()
    assert image_message.media_status == "ready"
    assert image_message.media_size == len(JPEG)
    assert image_message.media_file.read() == JPEG


def test_a_failed_download_keeps_the_message_and_is_tried_again(image_message, fake_graph):
    from chatbot import media

    fake_graph.fail_next(code=131000, http_status=500, path_contains="")
    assert media.download(image_message.pk) == media.RETRY_DELAYS[0]
    image_message.refresh_from_db()
    assert image_message.media_status == "pending"
    assert media.download(image_message.pk, attempt=1) is None
    image_message.refresh_from_db()
    assert image_message.media_status == "ready"


def test_media_over_the_limit_is_unavailable_not_stored(image_message, settings):
    from chatbot import media

    settings.MAX_FILE_SIZE = 100
    media.download(image_message.pk)
    image_message.refresh_from_db()
    assert image_message.media_status == "failed"
    assert not image_message.media_file


def test_an_operator_can_retry_an_unavailable_download(image_message, run_tasks):
    from chatbot import media

    Message.objects.filter(pk=image_message.pk).update(media_status="failed", timestamp=timezone.now())
    image_message.refresh_from_db()
    assert media.retry(image_message)
    run_tasks()
    image_message.refresh_from_db()
    assert image_message.media_status == "ready"


def test_media_files_are_for_logged_in_operators_only(client, image_message):
    from chatbot import media

    media.download(image_message.pk)
    url = f"/chatbot/media/{image_message.pk}/"
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    client.force_login(User.objects.create_user("visitante"))  # logged in, but not an operator
    assert client.get(url).status_code == 403
    operator = User.objects.create_user("ana")
    operator.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    client.force_login(operator)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == JPEG
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"


# --- Upload API ---


@pytest.fixture
def token():
    return ApiToken.objects.create_token("loja")[1]


def upload(client, token, file):
    return client.post("/chatbot/media/", {"file": file}, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_upload_sends_the_file_to_meta_and_returns_its_id(client, token, fake_graph):
    response = upload(client, token, SimpleUploadedFile("cardapio.jpg", JPEG, content_type="image/jpeg"))
    assert response.status_code == 200
    media_id = response.json()["id"]
    assert fake_graph.media[media_id].content == JPEG
    assert fake_graph.media[media_id].content_type == "image/jpeg"


def test_upload_refuses_oversized_files_with_413(client, token, fake_graph, settings):
    settings.MAX_FILE_SIZE = 1000
    response = upload(client, token, SimpleUploadedFile("cardapio.jpg", JPEG, content_type="image/jpeg"))
    assert response.status_code == 413
    assert fake_graph.media == {}


def test_upload_refuses_disallowed_types_with_400(client, token, fake_graph):
    response = upload(client, token, SimpleUploadedFile("virus.exe", b"MZ...", content_type="application/octet-stream"))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "file"
    assert ".exe" in response.json()["error"]["message"]


def test_upload_without_a_file_is_400(client, token):
    assert client.post("/chatbot/media/", {}, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 400


def test_upload_needs_a_token(client):
    assert client.post("/chatbot/media/", {}).status_code == 401


def test_upload_in_sandbox_mode_stays_local(client, token, settings):
    settings.WHATSAPP_ACCESS_TOKEN = ""
    response = upload(client, token, SimpleUploadedFile("boleto.pdf", b"%PDF-1.4", content_type="application/pdf"))
    assert response.status_code == 200
    assert response.json()["id"].startswith("sandbox.")
