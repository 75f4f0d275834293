"""Customers' files in a real Chromium: what the media view serves can play in the thread, and a
file whose declared type is hostile neither runs nor renders as a page in our origin."""

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError

from chatbot.models import Contact, Message, Note, PhoneNumber, Session

FILES = Path(__file__).parent / "files"  # small real files Chromium can decode
# Reads the page's CSRF token and posts a note as the operator: what the review's file did.
ATTACK = b"""<html><head><title>pwned</title></head><body><script>
fetch(location.origin + "/chatbot/dashboard/").then(r => r.text()).then(html => {
  const token = html.match(/name="csrfmiddlewaretoken" value="([^"]+)"/)[1];
  const form = new FormData(); form.append("csrfmiddlewaretoken", token); form.append("text", "pwned");
  fetch(location.origin + "/chatbot/dashboard/conversations/SESSION/note/", {method: "POST", body: form});
});
</script></body></html>"""


@pytest.fixture
def session(db):
    contact = Contact.objects.create(wa_id="5511987654321", name="Joana", last_inbound_at=timezone.now())
    return Session.objects.create(contact=contact, phone_number=PhoneNumber.objects.default(), status="open")


def file_message(session, content, mime_type, kind="document", filename=""):
    message = Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                                     direction="in", source="customer", type=kind, status="received",
                                     media_id="1", media_mime_type=mime_type, media_filename=filename,
                                     media_status="ready")
    message.media_file.save(f"{message.pk}-file", ContentFile(content), save=True)
    return message


@pytest.mark.parametrize("mime_type", ["audio/ogg, text/html", "video/mp4, text/html", "image/jpeg, text/html",
                                       "text/html"])
def test_a_hostile_type_neither_runs_nor_renders_as_a_page(logged_in_page, live_server, session, mime_type):
    page = logged_in_page
    message = file_message(session, ATTACK.replace(b"SESSION", str(session.pk).encode()), mime_type, kind="audio")
    page.goto(f"{live_server.url}/chatbot/dashboard/conversations/{session.pk}/")
    # Shown as a file to download, not handed to an <audio>, <video> or <img>.
    link = page.locator(f"#m{message.pk} a.file")
    assert link.count() == 1 and page.locator(f"#m{message.pk} audio, #m{message.pk} video").count() == 0
    # Opened directly (a link from another site would do the same): a download, never a page.
    with page.expect_download() as download, pytest.raises(PlaywrightError, match="Download is starting"):
        page.goto(f"{live_server.url}/chatbot/media/{message.pk}/")
    assert download.value.suggested_filename
    page.wait_for_timeout(500)  # time enough for the script's requests, had it run
    assert not Note.objects.filter(text="pwned").exists()
    assert page.title() != "pwned"


def test_html_declared_as_an_image_is_not_a_page(logged_in_page, live_server, session):
    page = logged_in_page
    message = file_message(session, ATTACK.replace(b"SESSION", str(session.pk).encode()), "image/png", kind="image")
    # The media policy at work: Chromium's image viewer may not style itself, and no script runs
    # in the sandboxed document (not even the test's own reporter).
    page.allowed_console = [r"Applying inline style violates .*default-src 'none'", r"Blocked script execution .* "
                            r"sandboxed and the 'allow-scripts' permission is not set"]
    page.goto(f"{live_server.url}/chatbot/media/{message.pk}/")
    page.wait_for_timeout(500)
    assert page.evaluate("document.contentType") == "image/png"
    assert not Note.objects.filter(text="pwned").exists()


PLAY = """async (selector) => {
  const media = document.querySelector(selector);
  media.preload = "auto";
  media.load();
  await new Promise((resolve, reject) => {
    media.addEventListener("loadedmetadata", resolve, {once: true});
    media.addEventListener("error", () => reject(new Error(`error ${media.error && media.error.code}`)), {once: true});
    setTimeout(() => reject(new Error("timeout")), 4000);
  });
  return {duration: media.duration, width: media.videoWidth || 0};
}"""


def test_legitimate_image_audio_and_video_play_inline(logged_in_page, live_server, session):
    page = logged_in_page
    image = file_message(session, (FILES / "picture.png").read_bytes(), "image/png", kind="image")
    audio = file_message(session, (FILES / "tone.ogg").read_bytes(), "audio/ogg; codecs=opus", kind="audio")
    video = file_message(session, (FILES / "clip.mp4").read_bytes(), "video/mp4", kind="video")
    page.goto(f"{live_server.url}/chatbot/dashboard/conversations/{session.pk}/")

    picture = page.locator(f"#m{image.pk} img")
    picture.scroll_into_view_if_needed()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
    assert page.evaluate(PLAY, f"#m{audio.pk} audio")["duration"] > 0.3
    played = page.evaluate(PLAY, f"#m{video.pk} video")
    assert played["duration"] > 0.3 and played["width"] == 64
    assert page.dialogs == [] and page.errors == []
