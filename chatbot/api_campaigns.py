"""The campaigns API (design.md, "Campaigns API"): create, list, read, pause / resume / cancel, and
the per-recipient CSV, for tokens with the `campaigns` scope. Authentication, scopes, idempotency
and the mapping of the services' refusals (`CampaignRefused` 400, `CampaignConflict` 409) are
chatbot/api.py's, as for the rest of the API; the services are chatbot/campaigns.py and
campaign_report.py."""

from datetime import datetime, time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from . import campaign_report, campaigns, documents, sending
from .api import ApiError, api_view, once, parse
from .models import Campaign, Department, Scope


@csrf_exempt
def campaign_collection(request):
    """/api/campaigns/: GET lists the campaigns, POST creates one."""
    return (create_campaign if request.method == "POST" else campaign_list)(request)


@api_view(Scope.CAMPAIGNS, "POST")
def create_campaign(request, token):
    try:
        body = request.body
    except RequestDataTooBig:
        raise ApiError(413, "too_large", _("The request body is too large.")) from None
    return once(token, body, request.headers.get("Idempotency-Key", ""), 201,
                lambda: new_campaign(token, parse(body)))


def new_campaign(token, data):
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", _("The body must be a JSON object."))
    if not isinstance(data.get("name"), str):
        raise ApiError(400, "invalid_request", _("name is required: what the campaign is called."), field="name")
    options = {"phone_number": sending.sending_number(data.get("phone_number_id")),
               "scheduled_at": scheduled_at(data.get("scheduled_at")), "window": sending_window(data.get("window")),
               "department": department(data.get("department")), "delay_ms": settings.BULK_MESSAGE_DELAY}
    # One transaction: numbers of the audience that were not contacts yet are not kept when the
    # campaign is refused after all (nobody to send it to, a bad name).
    with transaction.atomic():
        plan = campaigns.plan(audience=data.get("audience"), **content(data))
        campaign = campaigns.create(name=data["name"], plan=plan, api_token=token, **options)
    return documents.campaign_created(campaign)


@api_view(Scope.CAMPAIGNS, "GET")
def campaign_list(request, token):
    """Newest first: `?status=` one status, `?limit=` at most that many (LIST_LIMIT by default)."""
    found = Campaign.objects.select_related("phone_number").order_by("-created_at", "-pk")
    status = request.GET.get("status")
    if status:
        if status not in Campaign.Status.values:
            raise ApiError(400, "invalid_request", _("status must be one of %(values)s.") % {
                "values": ", ".join(Campaign.Status.values)}, field="status")
        found = found.filter(status=status)
    limit = request.GET.get("limit", str(LIST_LIMIT))
    if not (limit.isdigit() and 1 <= int(limit) <= LIST_LIMIT_MAX):
        raise ApiError(400, "invalid_request", _("limit must be a whole number from 1 to %(max)d.") % {
            "max": LIST_LIMIT_MAX}, field="limit")
    return 200, [documents.campaign_object(campaign) for campaign in found[:int(limit)]]


@api_view(Scope.CAMPAIGNS, "GET")
def campaign_detail(request, token, campaign_id):
    return 200, documents.campaign_object(find_campaign(campaign_id))


MOVES = {"pause": campaigns.pause, "resume": campaigns.resume, "cancel": campaigns.cancel}


@api_view(Scope.CAMPAIGNS, "POST")
def campaign_move(request, token, campaign_id, move):
    """pause, resume or cancel; CampaignConflict (409) when the campaign's status does not allow it."""
    if move not in MOVES:
        raise ApiError(404, "not_found", _("No such campaign action: use pause, resume or cancel."))
    find_campaign(campaign_id)
    return 200, documents.campaign_object(MOVES[move](campaign_id))


@api_view(Scope.CAMPAIGNS, "GET")
def campaign_recipients(request, token, campaign_id):
    campaign = find_campaign(campaign_id)
    response = StreamingHttpResponse(campaign_report.csv_lines(campaign), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-recipients.csv"'
    return 200, response


# --- Campaigns: reading a request ----------------------------------------------------------------


LIST_LIMIT, LIST_LIMIT_MAX = 100, 1000


def find_campaign(campaign_id):
    campaign = Campaign.objects.select_related("phone_number").filter(pk=campaign_id).first()
    if campaign is None:
        raise ApiError(404, "not_found", _("No campaign with this id."))
    return campaign


def content(data):
    """The service's template arguments of a create request: the template's name and language, and
    its parameters from `variables`, `header` and `buttons`, or else from Meta-shaped
    `template.components`."""
    template = data.get("template")
    name = template.get("name") if isinstance(template, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "invalid_request", _("template.name is required: the name of an approved template."),
                       field="template.name")
    language = template.get("language")
    language = language.get("code") if isinstance(language, dict) else language  # Meta's {"code": …} too
    if not isinstance(language, str) or not language.strip():
        raise ApiError(400, "invalid_request", _("template.language is required: a code such as pt_BR."),
                       field="template.language")
    variables, header, buttons = from_components(template.get("components"))
    return {"template_name": name.strip(), "language": language.strip(),
            "variables": data.get("variables", variables), "header": data.get("header", header),
            "buttons": data.get("buttons", buttons)}


def from_components(components):
    """(variables, header, buttons) from Meta's template components: text parameters (which may
    hold {name}, {attr:key}…), a header's image, video or document, link buttons' suffixes."""
    variables, header, buttons = {}, {}, {}
    if components is None:
        return variables, header, buttons
    if not isinstance(components, list):
        raise ApiError(400, "invalid_request", _("template.components must be a list."), field="template.components")
    for index, component in enumerate(components):
        where = f"template.components[{index}]"
        kind = str(component.get("type", "")).lower() if isinstance(component, dict) else ""
        if kind not in ("header", "body", "button") or not isinstance(component.get("parameters"), list):
            raise ApiError(400, "invalid_request", _("%(field)s must be a header, body or button component with "
                                                     "its parameters.") % {"field": where}, field=where)
        for position, parameter in enumerate(component["parameters"]):
            kind_of = parameter.get("type") if isinstance(parameter, dict) else None
            if kind == "header" and kind_of in ("image", "video", "document"):
                header = {kind_of: parameter.get(kind_of)}
            elif kind in ("header", "body") and kind_of == "text":
                key = str(parameter.get("parameter_name") or position + 1)
                variables[key if kind == "body" else f"header.{key}"] = parameter.get("text")
            elif kind == "button" and kind_of == "text" and str(component.get("sub_type", "")).lower() == "url":
                buttons[str(component.get("index", ""))] = parameter.get("text")
            else:
                field = f"{where}.parameters[{position}]"
                raise ApiError(400, "invalid_request", _("%(field)s: a campaign takes text parameters, a header's "
                                                         "image, video or document, and link buttons' suffixes.")
                               % {"field": field}, field=field)
    return variables, header, buttons


def scheduled_at(value):
    """ISO 8601; without an offset, in TIME_ZONE (design.md). None: now."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_request", _("scheduled_at must be an ISO 8601 date and time, e.g. "
                                                 "2025-12-01T09:00:00-03:00."), field="scheduled_at") from None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, timezone.get_default_timezone())


def sending_window(value):
    """{"start": "08:00", "end": "20:00"}: the daily hours (TIME_ZONE) the campaign sends in."""
    if value is None:
        return None, None
    try:
        start, end = time.fromisoformat(value["start"]), time.fromisoformat(value["end"])
        if start.tzinfo or end.tzinfo:
            raise ValueError("the hours are in TIME_ZONE")
        return start, end
    except (TypeError, KeyError, ValueError):
        raise ApiError(400, "invalid_request", _('window must be {"start": "08:00", "end": "20:00"} (hours in '
                                                 '%(zone)s).') % {"zone": settings.TIME_ZONE},
                       field="window") from None


def department(name):
    """The department replies go to, by name; None: the bot answers them."""
    if name is None or name == "":
        return None
    found = Department.objects.filter(name=name).first() if isinstance(name, str) else None
    if found is None:
        raise ApiError(400, "invalid_request", _("No department named %(name)s.") % {"name": name},
                       field="department")
    return found
