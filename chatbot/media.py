"""Media both ways (cloud-api.md §8): customers' files downloaded in the background to
MEDIA_ROOT, and files uploaded to Meta for sending.

A download that fails never loses the message: it shows "media unavailable" and is tried again
later (Meta keeps webhook media for 7 days), or by hand from the dashboard.
"""

import logging
import mimetypes
import uuid
from datetime import timedelta
from pathlib import PurePath

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone
from django.utils.translation import gettext as _

from . import graph
from .models import Message

logger = logging.getLogger(__name__)

MB = 1024 * 1024
# Meta's limits per media type (§8); a file over them is refused by Meta anyway.
META_LIMITS = {"audio": 16 * MB, "document": 100 * MB, "image": 5 * MB, "sticker": 500 * 1024, "video": 16 * MB}
MEDIA_TYPES = set(META_LIMITS)
# Tried again after 1 min, 5 min, 30 min, 2 h and 12 h: well inside Meta's 7 days.
RETRY_DELAYS = [60, 300, 1800, 7200, 43200]
EXTENSIONS = {"audio/ogg": ".ogg", "audio/mpeg": ".mp3", "image/jpeg": ".jpg", "image/webp": ".webp",
              "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/amr": ".amr", "video/3gpp": ".3gp"}


class MediaRefused(Exception):
    """A file we will not store or upload: HTTP status and a sentence for people."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, str(message)


def extension(mime_type, filename=""):
    suffix = PurePath(filename).suffix.lower()
    if suffix:
        return suffix
    base = mime_type.split(";")[0].strip().lower()
    return EXTENSIONS.get(base) or mimetypes.guess_extension(base) or ".bin"


def size_limit(message_type):
    return min(settings.MAX_FILE_SIZE, META_LIMITS.get(message_type, settings.MAX_FILE_SIZE))


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
    name = f"{message.pk}-{uuid.uuid4().hex[:8]}{extension(mime_type, message.media_filename)}"
    message.media_file.save(name, ContentFile(content), save=False)
    message.media_size = len(content)
    message.media_mime_type = mime_type
    message.media_status = Message.MediaStatus.READY
    message.save(update_fields=["media_file", "media_size", "media_mime_type", "media_status"])
    return None


def unavailable(message, reason):
    logger.warning("media of message %s unavailable: %s", message.pk, reason)
    Message.objects.filter(pk=message.pk).update(media_status=Message.MediaStatus.FAILED)
    return None


def retry(message):
    """An operator asked to try again: Meta keeps a customer's media for 7 days."""
    from . import tasks

    if not message.media_id or timezone.now() - message.timestamp > timedelta(days=7):
        return False
    Message.objects.filter(pk=message.pk).update(media_status=Message.MediaStatus.PENDING)
    tasks.download_media.enqueue(message.pk)
    return True


def upload(phone_number, uploaded):
    """Check an uploaded file and send it to Meta; returns the media id to send it by."""
    if uploaded is None:
        raise MediaRefused(400, _("Send the file as multipart/form-data in the field \"file\"."))
    if uploaded.size > settings.MAX_FILE_SIZE:
        raise MediaRefused(413, _("The file is larger than %(limit)d bytes.") % {"limit": settings.MAX_FILE_SIZE})
    suffix = PurePath(uploaded.name or "").suffix.lower().lstrip(".")
    if suffix not in settings.ALLOWED_EXTENSIONS:
        raise MediaRefused(400, _("Files of type .%(ext)s are not accepted; allowed: %(allowed)s.") % {
            "ext": suffix or "?", "allowed": ", ".join(settings.ALLOWED_EXTENSIONS)})
    mime_type = mimetypes.guess_type(uploaded.name)[0] or "application/octet-stream"
    kind = mime_type.split("/")[0] if mime_type.split("/")[0] in MEDIA_TYPES else "document"
    if uploaded.size > META_LIMITS[kind]:
        raise MediaRefused(413, _("Meta accepts %(kind)s files up to %(limit)d bytes.") % {
            "kind": kind, "limit": META_LIMITS[kind]})
    if not settings.WHATSAPP_ACCESS_TOKEN:
        return f"sandbox.{uuid.uuid4().hex}"
    try:
        return graph.upload_media(phone_number.phone_number_id, uploaded.read(), mime_type, uploaded.name)
    except graph.GraphError as error:
        raise MediaRefused(502, _("Meta refused the file: %(reason)s") % {"reason": error.explanation}) from None
