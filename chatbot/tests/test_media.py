"""Media both ways (chatbot/media.py) against the fake Graph API, and the views that serve them."""

from unittest import mock

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from chatbot.management.commands.bootstrap import OPERATORS_GROUP
from chatbot.models import ApiToken, Message
from chatbot.tests.helpers import payload_bytes, post_signed, stored_files

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

    with mock.patch("chatbot.media.download", return_value=None):
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


# --- Files never outlive their row ---


def test_a_file_already_here_is_not_downloaded_again(image_message):
    from chatbot import media

    media.download(image_message.pk)
    image_message.refresh_from_db()
    assert image_message.media_status == "ready"
    assert not media.retry(image_message)  # the dashboard's "try again" on a file that is there
    outbound = Message.objects.create(phone_number=image_message.phone_number, contact=image_message.contact,
                                      direction="out", source="operator", type="image", status="sent",
                                      media_id="999", media_status="failed")
    assert not media.retry(outbound)


def test_a_download_that_replaces_a_file_deletes_the_old_one(image_message):
    from django.core.files.storage import default_storage

    from chatbot import media

    media.download(image_message.pk)
    image_message.refresh_from_db()
    first = image_message.media_file.name
    Message.objects.filter(pk=image_message.pk).update(media_status="pending")
    media.download(image_message.pk)
    image_message.refresh_from_db()
    assert image_message.media_file.name != first
    assert default_storage.exists(image_message.media_file.name)
    assert not default_storage.exists(first)


def test_a_download_finishing_after_the_contact_was_erased_keeps_no_file(image_message):
    from chatbot import lgpd, media
    from chatbot.whatsapp import graph

    real = graph.download_media

    def erase_meanwhile(url, limit):
        answer = real(url, limit)
        lgpd.anonymize(image_message.contact)  # while Meta was answering
        return answer

    with mock.patch.object(graph, "download_media", side_effect=erase_meanwhile):
        media.download(image_message.pk)
    image_message.refresh_from_db()
    assert not image_message.media_file
    assert stored_files() == []


# --- Serving files: no customer string becomes a header ---


@pytest.fixture
def as_operator(client):
    operator = User.objects.create_user("ana")
    operator.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    client.force_login(operator)
    return client


def stored_media(image_message, content, mime_type, filename=""):
    from django.core.files.base import ContentFile

    image_message.media_file.save("upload.bin", ContentFile(content), save=False)
    image_message.media_mime_type, image_message.media_filename = mime_type, filename
    image_message.media_status = "ready"
    image_message.save()
    return f"/chatbot/media/{image_message.pk}/"


HTML = b"<html><script>fetch('/chatbot/dashboard/')</script></html>"


@pytest.mark.parametrize("mime_type", [
    "audio/ogg, text/html", "video/mp4, text/html", "image/jpeg, text/html", "text/html", "image/svg+xml",
    "application/xhtml+xml", "audio/ogg\r\nSet-Cookie: x=1", " text/html ; charset=utf-8", "", "audio/",
    "image/jpeg\ttext/html", "image/jpeg text/html",
])
def test_a_type_off_the_allow_list_is_a_download_of_octet_stream(as_operator, image_message, mime_type):
    response = as_operator.get(stored_media(image_message, HTML, mime_type))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert sorted(response["Content-Security-Policy"].split("; ")) == ["default-src 'none'", "sandbox"]
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("mime_type", "served"), [
    ("image/jpeg", "image/jpeg"), ("audio/ogg; codecs=opus", "audio/ogg"), ("VIDEO/MP4", "video/mp4"),
    ("audio/mpeg", "audio/mpeg"), ("image/webp", "image/webp"),
    ("IMAGE/JPEG;,text/html", "image/jpeg"),  # parameters are dropped, never passed on
])
def test_an_allowed_type_is_shown_inline_under_our_own_type_string(as_operator, image_message, mime_type, served):
    response = as_operator.get(stored_media(image_message, JPEG, mime_type))
    assert response["Content-Type"] == served
    assert response["Content-Disposition"].startswith("inline;")
    assert sorted(response["Content-Security-Policy"].split("; ")) == ["default-src 'none'", "sandbox"]


@pytest.mark.parametrize("filename", ['a"b.pdf', "linha\nnova.pdf", "../../etc/passwd", "\u202egpj.exe", "x" * 250,
                                      "\r\n\r\n<html>.pdf", "contrato ação.pdf"])
def test_the_customers_file_name_never_breaks_the_header(as_operator, image_message, filename):
    response = as_operator.get(stored_media(image_message, b"%PDF", "application/pdf", filename))
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert "\n" not in disposition and "\r" not in disposition and "/" not in disposition
    assert "\u202e" not in disposition and len(disposition) < 400
