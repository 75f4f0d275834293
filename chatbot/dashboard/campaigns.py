"""The campaign pages (design.md, "Campaigns API", as operators see it): the list, the wizard
(its form and review in `campaign_forms`), each campaign's live report with its per-recipient
CSV, and pause / resume / cancel. Every operator reads them; administrators create and stop them.

The report's figures come from `chatbot.campaign_report` (the worker's last count, a few seconds
old at most while someone watches); the page and its 2 s poll (`campaign_live`, read by
static/js/campaigns.js) are written from the same `report` dict, so they cannot disagree. The
status, its notices and the buttons it allows are read from the campaign's row at every poll.
"""

from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import campaign_report, campaign_sending, campaigns
from ..models import Campaign, Recipient
from .campaign_forms import CampaignForm, skipped_sentences
from .permissions import admin_required, is_admin, operator_required

STATUS = {
    Campaign.Status.SCHEDULED: pgettext_lazy("campaign", "Scheduled"),
    Campaign.Status.RUNNING: pgettext_lazy("campaign", "Sending"),
    Campaign.Status.PAUSED: pgettext_lazy("campaign", "Paused"),
    Campaign.Status.FINISHED: pgettext_lazy("campaign", "Finished"),
    Campaign.Status.CANCELLED: pgettext_lazy("campaign", "Cancelled"),
}
# What a paused campaign's reason means for the person who may resume it.
PAUSED = {
    Campaign.PauseReason.MANUAL: gettext_lazy("Paused by a person of the team. Nothing more is sent until it is "
                                              "resumed."),
    Campaign.PauseReason.QUALITY: gettext_lazy(
        "Paused automatically: Meta lowered the quality rating of the business number. Customers may be "
        "blocking or reporting it; check the number's quality in WhatsApp Manager before resuming."),
    Campaign.PauseReason.SPAM: gettext_lazy(
        "Paused automatically: Meta refused too many of its messages as unwanted. Sending more now could get "
        "the number restricted; review the audience and the template before resuming."),
    Campaign.PauseReason.TEMPLATE: gettext_lazy(
        "Paused automatically: the template can no longer be sent (Meta paused, disabled or deleted it). "
        "Resume once Meta approves it again, or cancel."),
}
ACTIONS = {"pause": campaigns.pause, "resume": campaigns.resume, "cancel": campaigns.cancel}
ALLOWED = {Campaign.Status.SCHEDULED: ["pause", "cancel"], Campaign.Status.RUNNING: ["pause", "cancel"],
           Campaign.Status.PAUSED: ["resume", "cancel"]}
DONE = {
    "pause": gettext_lazy("Campaign paused: nothing more is sent until you resume it."),
    "resume": gettext_lazy("Campaign resumed."),
    "cancel": gettext_lazy("Campaign cancelled: the contacts not yet sent will not receive it."),
}
CATEGORIES = {"marketing": pgettext_lazy("pricing", "Marketing"),
              "marketing_lite": pgettext_lazy("pricing", "Marketing"),
              "utility": pgettext_lazy("pricing", "Utility"),
              "authentication": pgettext_lazy("pricing", "Authentication"),
              "authentication-international": pgettext_lazy("pricing", "Authentication")}
LIST_PAGE = 25
CHART_BARS = 400  # past this many minutes or hours, the chart shows only those with deliveries
CHART_MIN_WIDTH = 30


# --- Views -------------------------------------------------------------------------------------


@require_GET
@operator_required
def campaign_list(request):
    page = Paginator(Campaign.objects.all(), LIST_PAGE).get_page(request.GET.get("page"))
    return render(request, "dashboard/campaigns.html", {
        "page": page, "rows": list_rows(page.object_list), "can_manage": is_admin(request.user),
        "section": "campaigns"})


@require_http_methods(["GET", "POST"])
@admin_required
def campaign_new(request):
    """Step 1, the form; POST step=review, step 2 (nothing saved); step=create saves and goes
    to the report; step=edit back to step 1 with what was typed."""
    step = request.POST.get("step", "")
    form = CampaignForm(request.POST) if step in ("review", "create") else CampaignForm.editing(request.POST)
    outcome = form.submit(step, request.user) if step in ("review", "create") else None
    if isinstance(outcome, Campaign):
        messages.success(request, _("Campaign created."))
        return redirect("chatbot:dashboard-campaign", outcome.pk)
    return render(request, "dashboard/campaign_new.html", {
        "form": form, "review": outcome, "carried": form.carried() if outcome else [], "section": "campaigns",
        "time_zone": settings.TIME_ZONE})


@require_GET
@operator_required
def campaign_page(request, campaign_id):
    campaign = get_object_or_404(Campaign.objects.select_related("department", "created_by", "phone_number"),
                                 pk=campaign_id)
    return render(request, "dashboard/campaign.html", {
        "campaign": campaign, "report": report(campaign), "can_manage": is_admin(request.user),
        "allowed": ALLOWED.get(campaign.status, []), "facts": facts(campaign), "skipped": skipped(campaign),
        "section": "campaigns"})


@require_GET
@operator_required
def campaign_live(request, campaign_id):
    """The report's changing parts for the page's poll (campaigns.js): the status and its notices,
    the figures, and the moves the status allows (the page's buttons, shown or hidden)."""
    campaign = get_object_or_404(Campaign.objects.select_related("phone_number"), pk=campaign_id)
    context = {"campaign": campaign, "report": report(campaign)}
    return JsonResponse({
        "status": campaign.status, "status_label": str(STATUS[campaign.status]),
        "active": campaign_report.live(campaign),
        "actions": ALLOWED.get(campaign.status, []),
        "status_html": render_to_string("dashboard/_campaign_status.html", context, request),
        "html": render_to_string("dashboard/_campaign_live.html", context, request)})


@require_POST
@admin_required
def campaign_action(request, campaign_id, action):
    if action not in ACTIONS:
        raise Http404(_("Unknown action."))
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    try:
        ACTIONS[action](campaign.pk)
    except campaigns.CampaignConflict as conflict:
        messages.error(request, str(conflict))
    else:
        messages.success(request, DONE[action])
    return redirect("chatbot:dashboard-campaign", campaign.pk)


@require_GET
@admin_required  # every customer's number and name: not for operators of a restricted department
def campaign_csv(request, campaign_id):
    """One row per recipient (campaign_report.CSV_HEADER), as the reports' CSVs are written: UTF-8
    with a BOM, ";" between fields in Portuguese (what a spreadsheet in Brazil opens into
    columns), "," in English. Streamed: a campaign may have 100,000 recipients."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    delimiter = ";" if formats.get_format("DECIMAL_SEPARATOR") == "," else ","
    response = StreamingHttpResponse(campaign_report.csv_lines(campaign, delimiter=delimiter, prefix="\ufeff"),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campanha-{campaign.pk}-destinatarios.csv"'
    return response


# --- The list ----------------------------------------------------------------------------------


def list_rows(page):
    """[{campaign, figures, status, progress}] for a page of campaigns, from each campaign's last
    counted figures (campaign_report.snapshot: no count of their recipients here)."""
    rows = []
    for campaign in page:
        figures = campaign_report.counts(campaign)
        rows.append({"campaign": campaign, "figures": figures, "status": STATUS[campaign.status],
                     "progress": campaign_report.progress(campaign, figures)})
    return rows


# --- The report --------------------------------------------------------------------------------


def report(campaign, now=None):
    """Everything the report shows that changes while the campaign sends."""
    now = now or timezone.now()
    figures = campaign_report.counts(campaign)
    done = figures["sent"] + figures["failed"] + figures["skipped"] + figures["cancelled"]
    costs = campaign_report.costs(campaign)
    return {
        "status": STATUS[campaign.status], "figures": figures, "progress": campaign_report.progress(campaign, figures),
        "done": done, "total": done + figures["queued"], "notices": notices(campaign, now),
        "paused": PAUSED.get(campaign.pause_reason) if campaign.status == Campaign.Status.PAUSED else None,
        "failures": campaign_report.failures(campaign),
        "costs": [{"category": CATEGORIES.get(cost.category, cost.category), "count": cost.count,
                   "price": money(cost.price, 4), "total": money(cost.total)} for cost in costs],
        "cost_total": money(sum((cost.total for cost in costs), start=0)),
        "chart": chart(campaign, campaign_report.timeline(campaign, now), now),
        "live": campaign_report.live(campaign, now),
    }


def skipped(campaign):
    """Contacts left out, by reason: the rows skipped (when created or when their turn came), and
    the listed numbers that were never contacts (counted when created, without a row). One
    grouped query, made for the page and not for its polls."""
    found = Counter(dict(Recipient.objects.filter(campaign=campaign, state=Recipient.State.SKIPPED)
                         .values_list("skip_reason").annotate(n=Count("pk")).order_by()))
    for reason, count in (campaign.skipped or {}).items():
        found[reason] = max(found[reason], count)
    return skipped_sentences(found)


def money(value, places=2):
    """R$ as the page's language writes it (pt-BR: R$ 1.234,56)."""
    return "R$ " + formats.number_format(value, places, force_grouping=True)


def local(moment):
    """A moment as "30/11/2026 14:05" (TIME_ZONE)."""
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def when(moment, now):
    """"at 14:05" today, "on 01/12/2026 at 14:05" another day (TIME_ZONE)."""
    moment = timezone.localtime(moment)
    if moment.date() == timezone.localtime(now).date():
        return _("at %(time)s") % {"time": formats.time_format(moment, "H:i")}
    return _("on %(date)s at %(time)s") % {"date": formats.date_format(moment, "SHORT_DATE_FORMAT"),
                                           "time": formats.time_format(moment, "H:i")}


def notices(campaign, now):
    """Why nothing is being sent right now, in plain words ([] while it sends)."""
    found = []
    if campaign.status == Campaign.Status.SCHEDULED and campaign.scheduled_at > now:
        found.append(_("Scheduled for %(when)s (%(zone)s).") % {"when": local(campaign.scheduled_at),
                                                                "zone": settings.TIME_ZONE})
    if campaign.status in (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED) and campaign.scheduled_at <= now:
        if not campaign_sending.window_open(campaign, now):
            found.append(_("Outside the daily sending window: sending resumes %(when)s.") % {
                "when": when(campaign_sending.next_window(campaign, now), now)})
        limit = campaign_sending.messaging_limit(campaign.phone_number)
        if limit is not None and campaign_sending.room_under_limit(limit, now) <= 0:
            found.append(_("Waiting for Meta's messaging limit (%(limit)s customers in 24 hours): sending goes on "
                           "%(when)s.") % {"limit": formats.number_format(limit, force_grouping=True),
                                           "when": when(campaign_sending.limit_frees_at(now), now)})
    return found


def chart(campaign, timeline, now):
    """Deliveries over time as bars in a 0-100 box (y down), with every minute (or hour) between
    the first and the last, so that a pause shows as a gap; the table beside says the same."""
    if not timeline:
        return None
    # The buckets campaign_report counted: hours once the campaign was over three hours old then.
    hourly = (campaign.figures_at or now) - (campaign.started_at or campaign.created_at) > timedelta(hours=3)
    step = timedelta(hours=1) if hourly else timedelta(minutes=1)
    counts = dict(timeline)
    first, last = timeline[0][0], timeline[-1][0]
    moments = [at for at, _count in timeline]
    if (last - first) / step < CHART_BARS:
        moments = [first + step * index for index in range(int((last - first) / step) + 1)]
    top = max(counts.values())
    bars = []
    for index, moment in enumerate(moments):
        count = counts.get(moment, 0)
        height = 100 * count / top
        bars.append({"x": f"{index + 0.1:.1f}", "y": f"{100 - height:.2f}", "height": f"{height:.2f}", "count": count,
                     "label": local(moment) if hourly else formats.time_format(timezone.localtime(moment), "H:i")})
    # A few bars are drawn as narrow as some would be: one delivery minute is not a wall of colour.
    return {"bars": bars, "width": max(len(bars), CHART_MIN_WIDTH), "top": top, "hourly": hourly,
            "first": bars[0]["label"], "last": bars[-1]["label"], "rows": [bar for bar in bars if bar["count"]]}


def facts(campaign):
    """What the campaign is: [(label, text)] for the report's header."""
    audience = campaign.audience or {}
    who = []
    if audience.get("labels"):
        who.append(_("labels: %(names)s") % {"names": ", ".join(audience["labels"])})
    if audience.get("wa_ids"):
        who.append(ngettext("%(count)s listed number", "%(count)s listed numbers", audience["wa_ids"])
                   % {"count": audience["wa_ids"]})
    if audience.get("everyone"):
        who.append(_("every contact"))
    who += [f"{key} = {value}" for key, value in (audience.get("attributes") or {}).items()]
    if audience.get("last_contact_days"):
        who.append(ngettext("wrote in the last %(days)s day", "wrote in the last %(days)s days",
                            audience["last_contact_days"]) % {"days": audience["last_contact_days"]})
    if audience.get("require_opt_in"):
        who.append(_("only with a recorded opt-in"))
    window = _("any hour")
    if campaign.window_start is not None:
        window = _("from %(start)s to %(end)s (%(zone)s)") % {
            "start": f"{campaign.window_start:%H:%M}", "end": f"{campaign.window_end:%H:%M}",
            "zone": settings.TIME_ZONE}
    rows = [(_("Template"), f"{campaign.template_name} ({campaign.template_language})"),
            (_("Audience"), "; ".join(who) or "—"),
            (_("Replies are answered by"), campaign.department.name if campaign.department else _("the bot")),
            (_("Daily sending window"), window),
            (_("Created at"), local(campaign.created_at) + (f" · {campaign.created_by.get_username()}"
                                                              if campaign.created_by else ""))]
    if campaign.started_at:
        rows.append((_("Started at"), local(campaign.started_at)))
    elif campaign.status == Campaign.Status.SCHEDULED:
        rows.append((_("Scheduled for"), local(campaign.scheduled_at)))
    if campaign.finished_at:
        rows.append((_("Cancelled at") if campaign.status == Campaign.Status.CANCELLED else _("Finished at"),
                     local(campaign.finished_at)))
    return rows

