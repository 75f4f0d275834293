"""`whatsapp_chatbot campaign list|show|pause|resume|cancel ID` (design.md, "Campaigns API"): the
campaigns from a terminal. The figures are campaign_report's, as the API and the dashboard show
them; times are in TIME_ZONE; money in reais as Brazilians write it (R$ 1.234,56)."""

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.management.base import CommandError
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from chatbot import campaign_report, campaigns
from chatbot.models import Campaign, Recipient

MOVES = {"pause": campaigns.pause, "resume": campaigns.resume, "cancel": campaigns.cancel}
ACTIONS = ["list", "show", *MOVES]
NAME_WIDTH = 40
# Created with no `scheduled_at` (or one already past), a campaign is scheduled for its creation.
LATER = timedelta(minutes=1)


def add_parser(commands):
    """The `campaign` subcommand's arguments, on whatsapp_chatbot's subparsers."""
    parser = commands.add_parser(
        "campaign", help=_("Campaigns: list them, show one's report, pause, resume or cancel one."),
        description=_("list: every campaign, newest first. show ID: its report. pause, resume, cancel ID: "
                      "stop or restart its sending."),
    )
    parser.add_argument("action", choices=ACTIONS, metavar="ACTION", help=_("One of: %(actions)s.") % {
        "actions": ", ".join(ACTIONS)})
    parser.add_argument("campaign_id", nargs="?", type=int, metavar="ID", help=_("The campaign's ID (see list)."))


class CampaignCommand:
    """whatsapp_chatbot's `campaign` subcommand (mixed into its Command)."""

    def handle_campaign(self, *, action, campaign_id, **options):
        if action == "list":
            return self.write_campaigns(Campaign.objects.order_by("-created_at", "-pk"))
        if campaign_id is None:
            raise CommandError(_("Say which campaign: whatsapp_chatbot campaign %(action)s ID (the IDs are in "
                                 "whatsapp_chatbot campaign list).") % {"action": action})
        campaign = Campaign.objects.select_related("phone_number", "department").filter(pk=campaign_id).first()
        if campaign is None:
            raise CommandError(_("No campaign with ID %(id)d.") % {"id": campaign_id})
        if action == "show":
            return self.write_report(campaign)
        try:
            campaign = MOVES[action](campaign.pk)
        except campaigns.CampaignConflict as conflict:
            raise CommandError(str(conflict)) from None
        self.stdout.write(_("Campaign #%(id)d “%(name)s” is now %(status)s.") % {
            "id": campaign.pk, "name": campaign.name, "status": campaign.get_status_display()})

    def write_campaigns(self, found):
        # Capitals, as terminal tables have them (and msgids of their own: the counts' words).
        header = [_("ID"), _("NAME"), _("STATUS"), _("RECIPIENTS"), _("SENT"), _("DELIVERED"), _("FAILED"),
                  _("CREATED"), _("SCHEDULED FOR")]
        rows = []
        for campaign in found:
            figures = campaign_report.counts(campaign)
            name = campaign.name if len(campaign.name) <= NAME_WIDTH else campaign.name[:NAME_WIDTH - 1] + "…"
            scheduled = campaign.scheduled_at if campaign.scheduled_at > campaign.created_at + LATER else None
            rows.append([str(campaign.pk), name, str(campaign.get_status_display()),
                         *[number(value) for value in (campaign.recipients, figures["sent"], figures["delivered"],
                                                       figures["failed"])],
                         moment(campaign.created_at), moment(scheduled)])
        if not rows:
            self.stdout.write(_("No campaigns yet."))
            return
        widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
        numeric = {0, 3, 4, 5, 6}
        for row in [header, *rows]:
            cells = [cell.rjust(width) if column in numeric else cell.ljust(width)
                     for column, (cell, width) in enumerate(zip(row, widths, strict=True))]
            self.stdout.write("  ".join(cells).rstrip())

    def write_report(self, campaign):
        write = self.stdout.write
        figures = campaign_report.refresh(campaign)["counts"]  # counted now: the command is not polled
        write(_("Campaign #%(id)d “%(name)s”: %(status)s") % {
            "id": campaign.pk, "name": campaign.name, "status": campaign.get_status_display()})
        write(_("Template: %(name)s (%(language)s, %(category)s), from number %(number)s") % {
            "name": campaign.template_name, "language": campaign.template_language,
            "category": campaign.template_category or "?", "number": campaign.phone_number.phone_number_id})
        write(_("Created %(created)s; scheduled for %(scheduled)s; started %(started)s; finished %(finished)s") % {
            "created": moment(campaign.created_at), "scheduled": moment(campaign.scheduled_at),
            "started": moment(campaign.started_at), "finished": moment(campaign.finished_at)})
        if campaign.window_start is not None:
            write(_("Sends only from %(start)s to %(end)s") % {
                "start": campaign.window_start.strftime("%H:%M"), "end": campaign.window_end.strftime("%H:%M")})
        write(_("Replies go to: %(department)s") % {
            "department": campaign.department.name if campaign.department else _("the bot")})
        if campaign.status == Campaign.Status.PAUSED:
            reason = campaign.get_pause_reason_display() if campaign.pause_reason else _("no reason recorded")
            write(_("Paused: %(reason)s") % {"reason": reason}
                  + (f" ({campaign.pause_detail})" if campaign.pause_detail else ""))
        write(ngettext("%(count)s recipient; skipped when created: %(skipped)s",
                       "%(count)s recipients; skipped when created: %(skipped)s", campaign.recipients) % {
            "count": number(campaign.recipients), "skipped": skips(campaign.skipped)})
        write(_("Progress: %(progress)d%%") % {"progress": campaign_report.progress(campaign, figures)})
        write(_("Queued %(queued)s · sent %(sent)s · delivered %(delivered)s · read %(read)s · failed %(failed)s · "
                "skipped %(skipped)s · cancelled %(cancelled)s") % {
            name: number(figures[name]) for name in
            ("queued", "sent", "delivered", "read", "failed", "skipped", "cancelled")})
        write(_("Replies within 72 h: %(replied)s · opted out since: %(opted_out)s") % {
            "replied": number(figures["replied"]), "opted_out": number(figures["opted_out"])})
        failures = campaign_report.failures(campaign)
        if failures:
            write(_("Failures by Meta's error code:"))
            for failure in failures:
                write(f"  {failure.code if failure.code is not None else '?'} × {number(failure.count)}: "
                      f"{failure.explanation}")
        costs = campaign_report.costs(campaign)
        write(_("Estimated cost: %(total)s") % {"total": reais(sum((cost.total for cost in costs), Decimal(0)))}
              + "".join(f"\n  {cost.category}: {number(cost.count)} × {reais(cost.price, places=4)} = "
                        f"{reais(cost.total)}" for cost in costs))


def moment(value):
    """A time as people read it here: TIME_ZONE, the language's short format; "—" for none."""
    if value is None:
        return "—"
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


def number(value):
    return formats.number_format(value, force_grouping=True)


def reais(amount, places=2):
    """R$ 1.234,56: Brazil's grouping and decimal comma, whatever the language."""
    rounded = Decimal(amount).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{rounded:,.{places}f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"R$ {text}"


def skips(skipped):
    labels = dict(Recipient.Skip.choices)
    parts = [f"{number(count)} {labels.get(reason, reason)}" for reason, count in sorted(skipped.items()) if count]
    return ", ".join(parts) or _("no one")
