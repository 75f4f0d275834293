"""The background tasks' old addresses. Each task is now declared beside the function it runs
(`conversation`, `statuses`, `media`, `inbound`); task rows queued before that name these paths,
and a worker finds a task by its row's path, so they stay valid here until such rows are gone."""

from .conversation import handle_inbound_message
from .inbound import mark_read
from .media import download_media
from .statuses import apply_pending_statuses

__all__ = ["apply_pending_statuses", "download_media", "handle_inbound_message", "mark_read"]
