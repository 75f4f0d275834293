"""The contract's JSON documents (design.md, "Read API", "Contact export", "Campaigns API"): a
message object, everything kept about a contact, and a campaign object. The read API,
`export-contact`, the dashboard's export and the campaigns API give these, and nothing else builds
them."""

from . import campaign_report, failures
from .models import Message, Recipient


def _iso(moment):
    return moment.isoformat() if moment else None


def message_object(message):
    """The contract's message object for one row (design.md, "Read API")."""
    error = None
    if message.status == Message.Status.FAILED or message.error_code is not None:
        error = {"code": message.error_code, "title": message.error_title, "details": message.error_details,
                 "explanation": failures.explanation(message)}
    return {
        "id": message.pk,
        "wamid": message.wamid,
        "direction": message.direction,
        "contact": message.contact.wa_id or message.contact.user_id,
        "phone_number_id": message.phone_number.phone_number_id,
        "type": message.type,
        "text": message.text,
        "payload": message.payload,
        "reply_to": message.reply_to or None,
        "status": message.status,
        "error": error,
        "timestamp": _iso(message.timestamp),
        "status_at": {name: _iso(getattr(message, f"{name}_at")) for name in ("sent", "delivered", "read", "failed")},
    }


def csat(session):
    """The session's satisfaction answer (design.md, "Contact export"): null until the customer
    gave a score; the comment is "" when they gave none."""
    if session.csat_score is None:
        return None
    return {"score": session.csat_score, "comment": session.csat_comment, "answered_at": _iso(session.csat_answered_at)}


def contact_export(contact):
    """Everything we keep about one contact (LGPD data portability; design.md, "Contact export")."""
    messages = contact.messages.select_related("contact", "phone_number").order_by("timestamp", "pk")
    return {
        "contact": {
            "wa_id": contact.wa_id, "user_id": contact.user_id, "name": contact.name,
            "first_seen": _iso(contact.first_seen_at), "last_seen": _iso(contact.last_seen_at),
            "opted_out": contact.opted_out,
        },
        "sessions": [
            {"id": session.pk, "status": session.status,
             "queue": session.department.name if session.department else None,
             "started_at": _iso(session.started_at), "closed_at": _iso(session.closed_at), "csat": csat(session)}
            for session in contact.sessions.select_related("department").order_by("started_at", "pk")
        ],
        "messages": [message_object(message) for message in messages.iterator()],
        # Beyond the contract's keys: the files kept for the contact's messages.
        "media": [
            {"message_id": message.pk, "type": message.type, "mime_type": message.media_mime_type,
             "filename": message.media_filename, "size": message.media_size, "sha256": message.media_sha256,
             "file": message.media_file.name or None, "status": message.media_status}
            for message in contact.messages.exclude(media_id="", media_file="").order_by("timestamp", "pk")
        ],
    }


# The contract's figures of a campaign object, and the reasons its creation answer counts.
CAMPAIGN_COUNTS = ("queued", "sent", "delivered", "read", "failed", "replied", "skipped")
SKIP_REASONS = [reason.value for reason in Recipient.Skip if reason.value]


def campaign_object(campaign):
    """The contract's campaign object (design.md, "Campaigns API"), its figures as last counted
    (campaign_report's snapshot, a few seconds old at most while anyone looks). `failures` maps
    Meta's error code (as a string; "unknown" for a failure without one) to how many messages
    failed with it."""
    figures = campaign_report.counts(campaign)
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "recipients": campaign.recipients,
        "counts": {name: figures[name] for name in CAMPAIGN_COUNTS},
        "failures": {"unknown" if failure.code is None else str(failure.code): failure.count
                     for failure in campaign_report.failures(campaign)},
        "created_at": _iso(campaign.created_at),
        "started_at": _iso(campaign.started_at),
        "finished_at": _iso(campaign.finished_at),
        # Beyond the contract's keys.
        "scheduled_at": _iso(campaign.scheduled_at),
        "template": {"name": campaign.template_name, "language": campaign.template_language,
                     "category": campaign.template_category},
        "phone_number_id": campaign.phone_number.phone_number_id,
        "progress": campaign_report.progress(campaign, figures),
        "pause_reason": campaign.pause_reason or None,
        "pause_detail": campaign.pause_detail,
    }


def campaign_created(campaign):
    """The answer to creating a campaign: who will be sent it, and who was left out and why
    (every reason present, 0 when none)."""
    skipped = campaign.skipped or {}
    return {"id": campaign.pk, "status": campaign.status, "recipients": campaign.recipients,
            "skipped": {reason: skipped.get(reason, 0) for reason in SKIP_REASONS}}
