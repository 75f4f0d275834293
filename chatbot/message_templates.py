"""Message templates kept in step with Meta (cloud-api.md §9).

`sync()` reads every page of the WhatsApp account's templates and upserts `Template` rows; the
status webhooks (`inbound.apply_template_status`) keep them current between syncs. The send API
validates template parameters against the stored components, so a stale copy means wrong 400s.

A template that is no longer at Meta is **marked `DELETED`, not deleted**: that is the status Meta
itself reports for it (in the list and in `message_template_status_update`), the row may still be
named in the bot settings or in sent messages, and an operator sees why sending it fails.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Template
from .whatsapp import graph, validation

logger = logging.getLogger(__name__)

GONE = "DELETED"


class SyncError(Exception):
    """The templates could not be read from Meta; the sentence says what to do."""


def _no_progress(iterable, total, label):
    return iterable


def sync(*, waba_id=None, progress=None):
    """Upsert every template of the WhatsApp account; returns how many Meta listed.

    `progress(iterable, total, label)` may wrap the upsert loop (the command draws a bar with it).
    Nothing is marked gone unless every page was read: a failure halfway changes no row.
    """
    waba_id = waba_id or settings.WHATSAPP_BUSINESS_ACCOUNT_ID
    if not waba_id:
        raise SyncError(_("WHATSAPP_BUSINESS_ACCOUNT_ID is not set: templates belong to a WhatsApp account."))
    if not settings.WHATSAPP_ACCESS_TOKEN:
        raise SyncError(_("Sandbox mode (no WHATSAPP_ACCESS_TOKEN): there are no templates at Meta to sync."))
    try:
        listed = list(graph.list_templates(waba_id))
    except graph.GraphError as error:
        raise SyncError(_("Meta refused the template list: %(reason)s") % {"reason": error.explanation}) from error
    now = timezone.now()
    seen = []
    for item in (progress or _no_progress)(listed, len(listed), _("Templates")):
        template = upsert(item, waba_id, now)
        if template is not None:
            seen.append(template.pk)
    # Rows of this account (or of no known account) that Meta no longer lists.
    gone = (
        Template.objects.filter(Q(waba_id=waba_id) | Q(waba_id=""))
        .exclude(pk__in=seen)
        .exclude(status=GONE)
        .update(status=GONE, reason="", synced_at=now)
    )
    logger.info("templates synced from WABA %s: %d listed, %d marked gone", waba_id, len(listed), gone)
    return len(listed)


def upsert(item, waba_id, now):
    """Create or update the row of one template Meta listed; None for an item without name/language."""
    name, language = str(item.get("name") or ""), str(item.get("language") or "")
    if not name or not language:
        return None
    template_id = str(item.get("id") or "")
    fields = {
        "waba_id": waba_id,
        "template_id": template_id,
        "name": name,
        "language": language,
        "category": str(item.get("category") or ""),
        "status": str(item.get("status") or ""),
        "parameter_format": str(item.get("parameter_format") or ""),
        "components": item.get("components") if isinstance(item.get("components"), list) else [],
        # Meta lists the rejection reason only for rejected templates; "NONE" means none.
        "reason": "" if item.get("rejected_reason") in (None, "", "NONE") else str(item["rejected_reason"]),
        "synced_at": now,
    }
    with transaction.atomic():
        # By Meta's id first: a template deleted and created again under the same name gets a new id,
        # and then the (name, language) row is the one to take it over.
        template = Template.objects.select_for_update().filter(template_id=template_id).first() if template_id \
            else None
        if template is None:
            template = Template.objects.select_for_update().filter(name=name, language=language).first()
        if template is None:
            return Template.objects.create(**fields)
        for key, value in fields.items():
            setattr(template, key, value)
        template.save()
    return template


def synced():
    """(templates stored, the last sync time or None): for status and check."""
    last = Template.objects.order_by("-synced_at").values_list("synced_at", flat=True).first()
    return Template.objects.count(), last


def placeholders(template):
    """The template's parameters in order: [(component, placeholder)], e.g. [("body", "1")]."""
    placeholders = []
    components = template.components if isinstance(template.components, list) else []
    for component in components:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).lower()
        if kind in ("header", "body") and isinstance(component.get("text"), str):
            names = list(dict.fromkeys(validation.PLACEHOLDER.findall(component["text"])))
            if template.parameter_format.upper() != "NAMED":
                # Meta fills {{1}}, {{2}}… by number, whatever their order in the text.
                names.sort(key=lambda name: int(name) if name.isdigit() else 0)
            placeholders += [(kind, name) for name in names]
    return placeholders
