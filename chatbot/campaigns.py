"""Campaigns (design.md, "Campaigns API"): one approved template sent to an audience.

- `audience`: who it reaches (labels, attributes, last contact, listed numbers) and who is skipped
  and why: opted out (a marketing template), blocked, no valid number, no recorded opt-in when the
  campaign asks for one, a variable with no value and no fallback;
- `create`: the content checked against the synced template before any row is written (Meta
  would fail a mismatch with 132000), then one `Recipient` row per contact, so that each is sent
  at most once whatever happens to the workers;
- `pause`, `resume`, `cancel` by a person, and `auto_pause` when the number's quality drops, when
  Meta refuses too many recent sends as spam (131048, 131049), or when the template stops working;
- `replied`: a customer's message within 72 h of a campaign's marks their recipient row, and the
  conversation it opens is marked with the campaign (and handed to its department, if it has one).

The sending itself is `campaign_sending.feed`, called by the outbox when conversations leave room.
"""

import io
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from . import contacts, imports, sending
from .campaign_content import CampaignRefused, Content, approved_template, check_content
from .models import BotSettings, Campaign, Contact, Label, Message, PhoneNumber, Recipient
from .whatsapp import graph

logger = logging.getLogger(__name__)

REPLY_WINDOW = timedelta(hours=72)
MAX_LISTED, MAX_DAYS = 100_000, 3650
FIGURES = ["queued", "sent", "delivered", "read", "failed", "replied", "skipped", "cancelled", "opted_out"]
ATTRIBUTE_KEY = re.compile(r"[a-z0-9]+(?:[_-][a-z0-9]+)*")  # as ContactAttribute keys are: never "__"
# Meta's timestamps are whole seconds of its clock: a quick reply may look older than our send.
CLOCK_SKEW = timedelta(minutes=1)
# Meta's refusals that say the number is being reported as spam (cloud-api.md §11): past SPAM_SHARE
# of the campaign's last SPAM_SAMPLE sends (at least SPAM_MIN of them), it pauses. Not 131049: that
# is Meta's own cap on marketing messages per user, common and no fault of the number.
SPAM_CODES = {131048, 131064}
SPAM_SAMPLE, SPAM_MIN, SPAM_SHARE = 200, 5, 0.05
# The template is gone, paused for low quality or disabled, or no longer takes the campaign's
# parameters (edited at Meta): every further send would fail too.
TEMPLATE_CODES = {132000, 132001, 132012, 132015, 132016}
TEMPLATE_UNUSABLE = {"PAUSED", "DISABLED", "DELETED", "REJECTED", "PENDING_DELETION", "ARCHIVED", "LOCKED"}


class CampaignConflict(Exception):
    """A move the campaign's status does not allow (resuming a finished campaign)."""


# --- The audience ----------------------------------------------------------------------------


@dataclass
class Audience:
    """Who a campaign reaches: contacts with any of `labels`, plus the `wa_ids` listed, narrowed
    by `attributes` (exact values) and by their last message (`last_contact_days`); `everyone`
    when neither labels nor numbers are given."""

    labels: list = field(default_factory=list)
    wa_ids: list = field(default_factory=list)
    attributes: dict = field(default_factory=dict)
    last_contact_days: int | None = None
    require_opt_in: bool = False
    everyone: bool = False

    @classmethod
    def load(cls, data):
        """From the API's (or a form's) `audience` object; CampaignRefused names what is wrong."""
        if not isinstance(data, dict):
            raise CampaignRefused(_("audience must be an object."), "audience")
        labels, wa_ids = data.get("labels") or [], data.get("wa_ids") or []
        attributes = data.get("attributes") or {}
        if not isinstance(labels, list) or not all(isinstance(name, str) for name in labels):
            raise CampaignRefused(_("audience.labels must be a list of label names."), "audience.labels")
        if not isinstance(wa_ids, list) or not all(isinstance(number, str | int) for number in wa_ids):
            raise CampaignRefused(_("audience.wa_ids must be a list of phone numbers."), "audience.wa_ids")
        if len(wa_ids) > MAX_LISTED:
            raise CampaignRefused(_("audience.wa_ids lists at most %(count)d numbers; import larger lists with "
                                    "import-contacts and a label.") % {"count": MAX_LISTED}, "audience.wa_ids")
        if not isinstance(attributes, dict) or not all(
                ATTRIBUTE_KEY.fullmatch(str(key)) and isinstance(value, str | int) and not isinstance(value, bool)
                for key, value in attributes.items()):
            raise CampaignRefused(_("audience.attributes must map attribute keys (lowercase letters, digits, - and "
                                    "_) to a text or a number each."), "audience.attributes")
        days = data.get("last_contact_days")
        if days is not None and (not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS):
            raise CampaignRefused(_("audience.last_contact_days must be a whole number of days from 1 to "
                                    "%(days)d.") % {"days": MAX_DAYS}, "audience.last_contact_days")
        unknown = sorted(set(labels) - set(Label.objects.filter(name__in=labels).values_list("name", flat=True)))
        if unknown:
            raise CampaignRefused(_("Unknown label: %(names)s.") % {"names": ", ".join(unknown)}, "audience.labels")
        everyone = bool(data.get("everyone")) or not (labels or wa_ids)
        if everyone and not (attributes or days or data.get("everyone")):
            raise CampaignRefused(_("Choose who receives it: labels, numbers, attributes or a last contact."),
                                  "audience")
        # The business may require an opt-in for every campaign; a campaign may require one anyway.
        require_opt_in = BotSettings.load().campaigns_require_opt_in or bool(data.get("require_opt_in"))
        return cls(labels=labels, wa_ids=[str(number) for number in wa_ids], attributes=attributes,
                   last_contact_days=days, require_opt_in=require_opt_in, everyone=everyone)

    def dump(self):
        """What the campaign keeps of it (the listed numbers as how many: they are recipient rows)."""
        kept = {key: value for key, value in self.__dict__.items() if value}
        if self.wa_ids:
            kept["wa_ids"] = len(self.wa_ids)
        return kept

    def contacts(self, *, now):
        """(the contacts it names, how many listed numbers are not valid numbers); listed
        numbers not known yet become contacts, as the send API does."""
        chosen = Contact.objects.all()
        if not self.everyone:
            listed, invalid = self.listed_ids()
            named = Q(pk__in=listed)
            if self.labels:
                named |= Q(pk__in=Contact.labels.through.objects.filter(label__name__in=self.labels)
                           .values("contact_id"))
            chosen = chosen.filter(named)
        else:
            invalid = 0
        for key, value in self.attributes.items():
            # ATTRIBUTE_KEY has no "__": the key is a JSON key, never a lookup (pedido__regex).
            chosen = chosen.filter(**{f"attributes__{key}": str(value)})  # kept as text, as typed or imported
        if self.last_contact_days:
            chosen = chosen.filter(last_inbound_at__gte=now - timedelta(days=self.last_contact_days))
        return chosen, invalid

    def listed_ids(self):
        """The listed numbers' contacts (found in either Brazilian form, created when new, a few
        queries for any number of them), and how many are not valid numbers."""
        numbers, invalid = set(), 0
        for text in self.wa_ids:
            try:
                numbers.add(imports.phone(str(text)))
            except imports.BadNumber:
                invalid += 1
        found = find_numbers(numbers)
        missing = sorted(numbers - set(found))
        if missing:
            Contact.objects.bulk_create([Contact(wa_id=number) for number in missing], batch_size=2000,
                                        ignore_conflicts=True)  # a webhook may create one meanwhile
            found.update(find_numbers(missing))
        return sorted(set(found.values())), invalid


def find_numbers(numbers, chunk=5000):
    """{number: contact id} for the numbers some contact has, in either Brazilian form."""
    forms = {form: number for number in numbers for form in contacts.variants(number)}
    found, listed = {}, list(forms)
    for start in range(0, len(listed), chunk):
        for wa_id, pk in Contact.objects.filter(wa_id__in=listed[start:start + chunk]).values_list("wa_id", "pk"):
            found.setdefault(forms[wa_id], pk)
    return found


def skip_reason(contact, *, marketing, require_opt_in):
    """Why `contact` is not sent the campaign now, or ""."""
    if contact.blocked:
        return Recipient.Skip.BLOCKED
    if contact.opted_out and marketing:
        return Recipient.Skip.OPTED_OUT
    if contact.anonymized_at or not contact.address:
        return Recipient.Skip.INVALID
    if require_opt_in and contact.opted_in_at is None:
        return Recipient.Skip.NO_OPT_IN
    return ""


# --- Creating --------------------------------------------------------------------------------


@dataclass(slots=True)
class Person:
    """What choosing a contact reads of it: a Contact row costs ten times as much to make, and an
    audience may hold 100,000."""

    pk: int
    wa_id: str
    user_id: str
    name: str
    attributes: dict
    opted_out: bool
    blocked: bool
    opted_in_at: object
    anonymized_at: object

    @property
    def address(self):
        return self.wa_id or self.user_id


@dataclass
class Plan:
    """Who a campaign would reach, before it exists: the wizard's count and preview. `rows` are
    (contact, skip reason or "") in id order."""

    content: Content
    audience: Audience
    rows: list
    skipped: Counter

    @property
    def recipients(self):
        return len(self.rows) - sum(1 for _contact, reason in self.rows if reason)

    @property
    def first(self):
        return next((contact for contact, reason in self.rows if not reason), None)

    @property
    def preview(self):
        """The message the first recipient would be sent, or None."""
        return self.content.message(self.first) if self.first else None


def plan(*, template_name, language, variables=None, header=None, buttons=None, audience, now=None):
    now = now or timezone.now()
    template = approved_template(template_name, language)
    content = check_content(template, variables, header, buttons)
    audience = audience if isinstance(audience, Audience) else Audience.load(audience)
    chosen, invalid = audience.contacts(now=now)
    rows, skipped = [], Counter({Recipient.Skip.INVALID.value: invalid} if invalid else {})
    for values in chosen.order_by("pk").values_list(*Person.__slots__).iterator(chunk_size=5000):
        contact = Person(*values)
        reason = skip_reason(contact, marketing=content.marketing, require_opt_in=audience.require_opt_in)
        if not reason and content.incomplete(contact):
            reason = Recipient.Skip.INCOMPLETE
        if reason:
            skipped[reason] += 1
        rows.append((contact, reason))
    return Plan(content, audience, rows, skipped)


def create(*, name, plan, phone_number=None, scheduled_at=None, window=(None, None), department=None,
           delay_ms=0, created_by=None, api_token=None, now=None):
    """The campaign of `plan` (see `plan`), scheduled or started; CampaignRefused when no one
    would receive it."""
    now = now or timezone.now()
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise CampaignRefused(_("Give the campaign a name (at most 120 characters)."), "name")
    if not plan.recipients:
        raise CampaignRefused(_("No one in this audience can receive it (%(skipped)s).") % {
            "skipped": describe_skips(plan.skipped) or _("no contacts")}, "audience")
    start, end = window
    if (start is None) != (end is None) or (start is not None and start == end):
        raise CampaignRefused(_("A sending window needs a start and a different end, e.g. 08:00-20:00."), "window")
    template = plan.content.template
    scheduled_at = max(scheduled_at or now, now)
    running = scheduled_at <= now
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name, phone_number=phone_number or PhoneNumber.objects.default(), template=template,
            template_name=template.name, template_language=template.language, template_category=template.category,
            variables=plan.content.variables, header=plan.content.header, buttons=plan.content.buttons,
            audience=plan.audience.dump(), department=department, scheduled_at=scheduled_at,
            status=Campaign.Status.RUNNING if running else Campaign.Status.SCHEDULED,
            started_at=now if running else None,
            window_start=start, window_end=end, delay_ms=delay_ms, recipients=plan.recipients,
            skipped=dict(plan.skipped), created_by=created_by, api_token=api_token, figures_at=now,
            # The report's first figures (campaign_report counts the next): everyone still waiting.
            figures={"counts": {**dict.fromkeys(FIGURES, 0), "queued": plan.recipients,
                                "skipped": len(plan.rows) - plan.recipients},
                     "failures": [], "costs": {}, "timeline": []})
        insert_recipients(campaign, plan.rows)
        transaction.on_commit(sending.QUEUED.set)  # this process's outbox starts at once
    logger.info("campaign %s created: %d recipients, %d skipped", campaign.pk, plan.recipients,
                sum(plan.skipped.values()))
    return campaign


def insert_recipients(campaign, rows):
    """One row per (contact, skip reason): on PostgreSQL with COPY (100,000 rows in about a
    second; the ORM's INSERTs take four)."""
    states = [(contact.pk, Recipient.State.SKIPPED if reason else Recipient.State.PENDING, reason)
              for contact, reason in rows]
    if connection.vendor != "postgresql":
        Recipient.objects.bulk_create([Recipient(campaign=campaign, contact_id=pk, state=state, skip_reason=reason)
                                       for pk, state, reason in states], batch_size=2000)
        return
    data = io.StringIO("".join(f"{campaign.pk}\t{pk}\t{state}\t{reason}\n" for pk, state, reason in states))
    table = connection.ops.quote_name(Recipient._meta.db_table)
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY {table} (campaign_id, contact_id, state, skip_reason) FROM STDIN", data)


def describe_skips(skipped):
    labels = dict(Recipient.Skip.choices)
    return ", ".join(f"{count} {labels.get(reason, reason)}" for reason, count in sorted(skipped.items()) if count)


# --- Pausing, resuming, cancelling -----------------------------------------------------------


def locked(campaign_id):
    return Campaign.objects.select_for_update().get(pk=campaign_id)


def pause(campaign_id, *, reason=Campaign.PauseReason.MANUAL, detail=""):
    with transaction.atomic():
        campaign = locked(campaign_id)
        if campaign.status not in (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING):
            raise CampaignConflict(_("Only a scheduled or sending campaign can be paused; this one is %(status)s.")
                                   % {"status": campaign.get_status_display()})
        campaign.status, campaign.pause_reason, campaign.pause_detail = Campaign.Status.PAUSED, reason, detail[:255]
        campaign.save(update_fields=["status", "pause_reason", "pause_detail"])
        withdraw(campaign, Recipient.State.PENDING)
    return campaign


def resume(campaign_id, *, now=None):
    now = now or timezone.now()
    with transaction.atomic():
        campaign = locked(campaign_id)
        if campaign.status != Campaign.Status.PAUSED:
            raise CampaignConflict(_("Only a paused campaign can be resumed; this one is %(status)s.")
                                   % {"status": campaign.get_status_display()})
        running = campaign.scheduled_at <= now
        campaign.status = Campaign.Status.RUNNING if running else Campaign.Status.SCHEDULED
        campaign.started_at = campaign.started_at or (now if running else None)
        campaign.pause_reason, campaign.pause_detail = "", ""
        campaign.save(update_fields=["status", "started_at", "pause_reason", "pause_detail"])
        transaction.on_commit(sending.QUEUED.set)
    return campaign


def cancel(campaign_id, *, now=None):
    now = now or timezone.now()
    with transaction.atomic():
        campaign = locked(campaign_id)
        if not campaign.active:
            raise CampaignConflict(_("This campaign is already %(status)s.")
                                   % {"status": campaign.get_status_display()})
        campaign.status, campaign.finished_at = Campaign.Status.CANCELLED, now
        campaign.save(update_fields=["status", "finished_at"])
        withdraw(campaign, Recipient.State.CANCELLED)
        campaign.recipient_rows.filter(state=Recipient.State.PENDING).update(state=Recipient.State.CANCELLED)
    return campaign


def withdraw(campaign, state):
    """Take back the campaign's messages the outbox has not claimed yet (a claimed one may be at
    Meta already: it stays); their recipients become `state`."""
    ids = list(Message.objects.select_for_update(skip_locked=True)
               .filter(status=Message.Status.QUEUED, recipient__campaign=campaign).values_list("pk", flat=True))
    if ids:
        Recipient.objects.filter(message_id__in=ids).update(state=state, message=None, queued_at=None)
        Message.objects.filter(pk__in=ids, status=Message.Status.QUEUED).delete()


def auto_pause(campaigns, reason, detail):
    """Pause the sending or scheduled campaigns among `campaigns` (a queryset) for `reason`."""
    for campaign_id in campaigns.filter(status__in=[Campaign.Status.SCHEDULED, Campaign.Status.RUNNING]).values_list(
            "pk", flat=True):
        try:
            pause(campaign_id, reason=reason, detail=detail)
        except CampaignConflict:
            continue  # paused or cancelled meanwhile
        logger.warning("campaign %s paused: %s (%s)", campaign_id, reason, detail)


def quality_changed(number, *, rating="", event=""):
    """Meta rated the number RED or flagged it: its campaigns pause until a person resumes them."""
    if rating.upper() == "RED" or event.upper() == "FLAGGED":
        auto_pause(Campaign.objects.filter(phone_number=number), Campaign.PauseReason.QUALITY,
                   _("Meta rated the number's quality %(rating)s.") % {"rating": rating.upper() or event.upper()})


def template_changed(template):
    """A template Meta paused, disabled or deleted: the campaigns sending it pause."""
    if template.status.upper() in TEMPLATE_UNUSABLE:
        auto_pause(Campaign.objects.filter(template_name=template.name, template_language=template.language),
                   Campaign.PauseReason.TEMPLATE,
                   _("Meta reports the template %(status)s.") % {"status": template.status.upper()})


def failed(message_ids):
    """Campaign messages Meta failed: a template refusal pauses their campaign at once, spam
    refusals past the threshold of its recent sends do."""
    rows = Recipient.objects.filter(message_id__in=message_ids).values_list("campaign_id", "message__error_code")
    for campaign_id, code in set(rows):
        if code in TEMPLATE_CODES:
            auto_pause(Campaign.objects.filter(pk=campaign_id), Campaign.PauseReason.TEMPLATE, graph.explain(code))
        elif code in SPAM_CODES and spam_share_passed(campaign_id):
            auto_pause(Campaign.objects.filter(pk=campaign_id), Campaign.PauseReason.SPAM, graph.explain(code))


def spam_share_passed(campaign_id):
    recent = list(Recipient.objects.filter(campaign_id=campaign_id, queued_at__isnull=False)
                  .order_by("-queued_at").values_list("message__error_code", flat=True)[:SPAM_SAMPLE])
    refused = sum(code in SPAM_CODES for code in recent)
    return refused >= SPAM_MIN and refused >= SPAM_SHARE * len(recent)


# --- Replies ---------------------------------------------------------------------------------


def replied(contact, moment):
    """The campaign `contact`'s message at `moment` answers (sent to them within 72 h), or None;
    its recipient row records the first reply."""
    sent = contact.campaign_sent_at
    if sent is None or not sent - CLOCK_SKEW <= moment <= sent + REPLY_WINDOW:
        return None
    row = (Recipient.objects.filter(contact=contact, queued_at__gte=moment - REPLY_WINDOW,
                                    queued_at__lte=moment + CLOCK_SKEW)
           .select_related("campaign").order_by("-queued_at").first())
    if row is None:
        return None
    if row.replied_at is None:
        Recipient.objects.filter(pk=row.pk, replied_at__isnull=True).update(replied_at=moment)
    return row.campaign
