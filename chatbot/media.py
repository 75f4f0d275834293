"""Media both ways (cloud-api.md §8): customers' files downloaded in the background to
MEDIA_ROOT, and files uploaded to Meta for sending.

A download that fails never loses the message: it shows "media unavailable" and is tried again
later (Meta keeps webhook media for 7 days), or by hand from the dashboard.
"""

import logging
import mimetypes
import re
import unicodedata
import uuid
from datetime import timedelta
from pathlib import PurePath

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tasks import task

from .models import Message
from .whatsapp import graph
from .whatsapp.vocabulary import MEDIA_KINDS, MEDIA_LIMITS, MediaKind

logger = logging.getLogger(__name__)

# Tried again after 1 min, 5 min, 30 min, 2 h and 12 h: well inside Meta's 7 days.
RETRY_DELAYS = [60, 300, 1800, 7200, 43200]
EXTENSIONS = {"audio/ogg": ".ogg", "audio/mpeg": ".mp3", "image/jpeg": ".jpg", "image/webp": ".webp",
              "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/amr": ".amr", "video/3gpp": ".3gp"}


# What the dashboard shows in the browser, by exact type: anything else (documents, unknown or
# malformed types such as "audio/ogg, text/html") is served as a download of octet-stream.
INLINE = {
    "image/jpeg": "image", "image/png": "image", "image/webp": "image", "image/gif": "image",
    "audio/ogg": "audio", "audio/mpeg": "audio", "audio/mp4": "audio", "audio/aac": "audio",
    "video/mp4": "video",
}
MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


def essence(mime_type):
    """The bare "type/subtype" of a stored MIME type, lowercased, or "" when it is not one.

    Meta, customers and integrators write these strings; only a well-formed one, parameters
    dropped, is ever compared with the allow-list."""
    base = str(mime_type or "").split(";", 1)[0].strip().lower()
    return base if MIME_TYPE.fullmatch(base) else ""


def inline_kind(mime_type):
    """"image", "audio" or "video" when the browser may show the file in the page, else None."""
    return INLINE.get(essence(mime_type))


def served_type(mime_type):
    """(Content-Type, inline): our own string for the header, never the stored one."""
    base = essence(mime_type)
    return (base, True) if base in INLINE else ("application/octet-stream", False)


def download_name(filename, fallback):
    """A file name safe in a Content-Disposition header: no control or format characters, no path,
    at most 100 characters; `fallback` when nothing is left."""
    name = "".join(ch for ch in str(filename or "") if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    name = name.replace("/", "_").replace("\\", "_").strip(" .")[:100]
    return name or fallback


class MediaRefused(Exception):
    """A file we will not store or upload: a stable `code` (`missing_file`, `too_large`,
    `type_not_allowed`, `meta_refused`) and a sentence for people."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, str(message)


def extension(mime_type, filename=""):
    suffix = PurePath(filename).suffix.lower()
    if suffix:
        return suffix
    base = mime_type.split(";")[0].strip().lower()
    return EXTENSIONS.get(base) or mimetypes.guess_extension(base) or ".bin"


def size_limit(message_type):
    return min(settings.MAX_FILE_SIZE, MEDIA_LIMITS.get(message_type, settings.MAX_FILE_SIZE))


def download(message_id, attempt=0):
    """Fetch an inbound message's media; returns the delay before trying again, or None when done."""
    message = Message.objects.get(pk=message_id)
    if message.media_status != Message.MediaStatus.PENDING or not message.media_id:
        return None
    if not settings.WHATSAPP_ACCESS_TOKEN:
        return unavailable(message, "sandbox mode: no Meta account to download from")
    limit = size_limit(message.type)
    try:
        info = graph.media_info(message.media_id)
        if int(info.get("file_size") or 0) > limit:
            return unavailable(message, f"{info.get('file_size')} bytes is over the limit of {limit}")
        content, content_type = graph.download_media(info["url"], limit)
    except graph.GraphError as error:
        if error.code == 131052 or not error.retry or attempt >= len(RETRY_DELAYS):
            return unavailable(message, str(error))
        logger.info("media of message %s: %s; trying again in %s s", message.pk, error, RETRY_DELAYS[attempt])
        return RETRY_DELAYS[attempt]
    except (KeyError, TypeError, ValueError) as error:
        return unavailable(message, f"unexpected answer from Meta: {error}")
    mime_type = message.media_mime_type or content_type
    previous = message.media_file.name
    name = f"{message.pk}-{uuid.uuid4().hex[:8]}{extension(mime_type, message.media_filename)}"
    message.media_file.save(name, ContentFile(content), save=False)
    # Only if the row still waits for this very file: a contact erased (or a download finished)
    # while Meta was answering must not get a file back.
    stored = Message.objects.filter(pk=message.pk, media_status=Message.MediaStatus.PENDING,
                                    media_id=message.media_id).update(
        media_file=message.media_file.name, media_size=len(content), media_mime_type=mime_type,
        media_status=Message.MediaStatus.READY)
    orphan = previous if stored else message.media_file.name
    if orphan:
        message.media_file.storage.delete(orphan)  # never a file on disk that no row points at
    return None


def unavailable(message, reason):
    logger.warning("media of message %s unavailable: %s", message.pk, reason)
    Message.objects.filter(pk=message.pk).update(media_status=Message.MediaStatus.FAILED)
    return None


def retry(message):
    """An operator asked to try again a customer's file that could not be downloaded: Meta keeps
    it for 7 days. False for anything else (a file already here, an outbound message)."""
    if (message.direction != Message.Direction.IN or message.media_status != Message.MediaStatus.FAILED
            or not message.media_id or timezone.now() - message.timestamp > timedelta(days=7)):
        return False
    Message.objects.filter(pk=message.pk).update(media_status=Message.MediaStatus.PENDING)
    download_media.enqueue(message.pk)
    return True


def upload(phone_number, uploaded):
    """Check an uploaded file and send it to Meta; returns the media id to send it by."""
    if uploaded is None:
        raise MediaRefused("missing_file", _("Send the file as multipart/form-data in the field \"file\"."))
    if uploaded.size > settings.MAX_FILE_SIZE:
        raise MediaRefused("too_large", _("The file is larger than %(limit)d bytes.") % {
            "limit": settings.MAX_FILE_SIZE})
    suffix = PurePath(uploaded.name or "").suffix.lower().lstrip(".")
    if suffix not in settings.ALLOWED_EXTENSIONS:
        raise MediaRefused("type_not_allowed", _("Files of type .%(ext)s are not accepted; allowed: %(allowed)s.") % {
            "ext": suffix or "?", "allowed": ", ".join(settings.ALLOWED_EXTENSIONS)})
    mime_type = mimetypes.guess_type(uploaded.name)[0] or "application/octet-stream"
    kind = sending_kind(mime_type)
    if uploaded.size > MEDIA_LIMITS[kind]:
        raise MediaRefused("too_large", _("Meta accepts %(kind)s files up to %(limit)d bytes.") % {
            "kind": kind, "limit": MEDIA_LIMITS[kind]})
    if not settings.WHATSAPP_ACCESS_TOKEN:
        return f"sandbox.{uuid.uuid4().hex}"
    try:
        return graph.upload_media(phone_number.phone_number_id, uploaded.read(), mime_type, uploaded.name)
    except graph.GraphError as error:
        raise MediaRefused("meta_refused", _("Meta refused the file: %(reason)s") % {
            "reason": error.explanation}) from None


def sending_kind(mime_type):
    """The message type a file of `mime_type` is sent as: its media kind, else a document."""
    kind = MediaKind(mime_type.split("/")[0])
    return kind if kind in MEDIA_KINDS - {MediaKind.STICKER} else MediaKind.DOCUMENT


@task()
def download_media(message_id, attempt=0):
    delay = download(message_id, attempt)
    if delay:
        download_media.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(message_id, attempt + 1)
