"""The event webhooks in the business's settings (design.md, "Event webhooks"), for administrators
only, under /chatbot/dashboard/settings/event-webhooks/: the endpoints with their state and
backlog, adding and changing one (`integration_forms`), its signing secret, a test post, enabling,
disabling and removing it, and its delivery log with replays.

Views translate HTTP: `webhook_endpoints` does the work, `event_delivery.test` posts the test. Every
POST is answered with a redirect and a message saying what happened.

The signing secret is never in a URL: after adding an endpoint (or making it a new secret) only its
id is kept in the session, and the endpoint's page shows the secret in full once; after that it is
behind a disclosure on the same page, which no cache may keep (`never_cache`).
"""

import json

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import event_delivery, webhook_endpoints
from ..models import EventDelivery, WebhookEndpoint
from . import selectors
from .business import page
from .integration_forms import EndpointForm
from .permissions import admin_required
from .views import number

LIST, ENDPOINT = "dashboard/settings/endpoints.html", "dashboard/settings/endpoint.html"
FORM = "dashboard/settings/endpoint_form.html"  # the settings' form.html, with this section's stylesheet
# The session key naming the endpoint whose secret its page shows in full, once.
SHOW_SECRET = "event_webhook_secret_shown"
LOG_PAGE = 25
ANSWER_SHOWN = 200  # characters of a test's answer in its message
# A delivery's status, and the look (a status class of app.css) it shares with other statuses.
STATUS = {
    EventDelivery.Status.PENDING: pgettext_lazy("delivery", "Pending"),
    EventDelivery.Status.DELIVERED: pgettext_lazy("delivery", "Delivered"),
    EventDelivery.Status.FAILED: pgettext_lazy("delivery", "Failed"),
}
# The log's filters, which name many.
FILTERS = {
    EventDelivery.Status.PENDING: pgettext_lazy("deliveries", "Pending"),
    EventDelivery.Status.DELIVERED: pgettext_lazy("deliveries", "Delivered"),
    EventDelivery.Status.FAILED: pgettext_lazy("deliveries", "Failed"),
}
LOOK = {EventDelivery.Status.PENDING: "waiting", EventDelivery.Status.DELIVERED: "approved",
        EventDelivery.Status.FAILED: "failed"}


def local(moment):
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def state(endpoint):
    """(status class, what the endpoint's state is in words)."""
    if endpoint.active and endpoint.failing_since:
        return "waiting", _("Active, failing since %(when)s") % {"when": local(endpoint.failing_since)}
    if endpoint.active:
        return "approved", _("Active")
    if endpoint.disabled_reason == WebhookEndpoint.DISABLED_FAILING:
        return "failed", _("Disabled after failures, since %(when)s") % {"when": local(endpoint.disabled_at)}
    return "closed", _("Disabled")


def types_text(endpoint):
    return ", ".join(endpoint.events) if endpoint.events else _("all")


def endpoint_or_404(endpoint_id):
    return get_object_or_404(WebhookEndpoint.objects.listed(), pk=endpoint_id)


def log_url(endpoint, status=""):
    """The endpoint's page at its log, with the status filter it was on."""
    query = f"?status={status}" if status in STATUS else ""
    return reverse("chatbot:dashboard-settings-endpoint", args=[endpoint.pk]) + query + "#deliveries"


def form_page(request, form, **context):
    return page(request, FORM, form=form, groups=[("", list(form))], **context)


def pretty(body):
    try:
        return json.dumps(json.loads(body), ensure_ascii=False, indent=2)
    except ValueError:
        return body


# --- Views ---------------------------------------------------------------------------------------


@require_GET
@admin_required
def endpoint_list(request):
    endpoints = list(WebhookEndpoint.objects.listed())
    counts = webhook_endpoints.backlog(endpoints)
    rows = []
    for endpoint in endpoints:
        last = webhook_endpoints.last_attempt(endpoint)
        # The last attempt's outcome: a delivery still pending after an attempt failed that attempt.
        delivered = last is not None and last.status == EventDelivery.Status.DELIVERED
        outcome = EventDelivery.Status.DELIVERED if delivered else EventDelivery.Status.FAILED
        rows.append({"endpoint": endpoint, "state": state(endpoint), "types": types_text(endpoint), "last": last,
                     "last_result": STATUS[outcome], "last_look": LOOK[outcome],
                     "counts": counts[endpoint.pk]})
    return page(request, LIST, rows=rows)


@require_http_methods(["GET", "POST"])
@admin_required
def endpoint_new(request):
    form = EndpointForm(request.POST if request.method == "POST" else None)
    endpoint = form.save()  # None for the empty form, or with the refusal on its field
    if endpoint is not None:
        request.session[SHOW_SECRET] = endpoint.pk
        messages.success(request, _("Event webhook added. Copy its signing secret now."))
        return redirect("chatbot:dashboard-settings-endpoint", endpoint.pk)
    return form_page(request, form, title=_("New event webhook"), back=reverse("chatbot:dashboard-settings-endpoints"),
                     back_title=_("Event webhooks"),
                     intro=_("Other systems (a shop, a CRM, n8n…) hear what happens here as it happens: each event "
                             "is POSTed as signed JSON, and retried for 24 hours until they answer 2xx."))


@require_http_methods(["GET", "POST"])
@admin_required
def endpoint_edit(request, endpoint_id):
    endpoint = endpoint_or_404(endpoint_id)
    form = EndpointForm(request.POST if request.method == "POST" else None, endpoint=endpoint)
    if form.save() is not None:
        messages.success(request, _("Event webhook saved."))
        return redirect("chatbot:dashboard-settings-endpoint", endpoint.pk)
    return form_page(request, form, title=_("Edit event webhook"),
                     back=reverse("chatbot:dashboard-settings-endpoint", args=[endpoint.pk]),
                     back_title=_("Event webhook"),
                     delete_url=reverse("chatbot:dashboard-settings-endpoint-delete", args=[endpoint.pk]))


@never_cache  # the page holds the signing secret
@require_GET
@admin_required
def endpoint_page(request, endpoint_id):
    """The endpoint, its secret, its actions and its delivery log (`?status=`, `?page=`)."""
    endpoint = endpoint_or_404(endpoint_id)
    status = request.GET.get("status", "")
    status = status if status in STATUS else ""
    deliveries = endpoint.deliveries.order_by("-created_at", "-pk")
    if status:
        deliveries = deliveries.filter(status=status)
    # No count of the whole log: an endpoint may have millions of deliveries.
    log = selectors.ListPage(deliveries, number(request.GET, "page") or 1, LOG_PAGE)
    rows = [{"delivery": delivery, "status": STATUS.get(delivery.status, delivery.status),
             "look": LOOK.get(delivery.status, ""), "body": pretty(delivery.body),
             # "HTTP 500" says no more than the status code beside it; a timeout or a redirect does.
             "error": "" if delivery.error == f"HTTP {delivery.response_status}" else delivery.error}
            for delivery in log]
    counts = webhook_endpoints.backlog([endpoint])[endpoint.pk]
    filters = [("", _("All"), None), *[(value, label, counts.get(value)) for value, label in FILTERS.items()]]
    fresh = request.session.pop(SHOW_SECRET, None) == endpoint.pk
    return page(request, ENDPOINT, endpoint=endpoint, state=state(endpoint), types=types_text(endpoint),
                counts=counts, fresh_secret=fresh, page=log, rows=rows, status=status, filters=filters)


@require_http_methods(["GET", "POST"])
@admin_required
def endpoint_delete(request, endpoint_id):
    """A confirmation page (GET), then the removal (POST) with its delivery log."""
    endpoint = endpoint_or_404(endpoint_id)
    if request.method == "POST":
        webhook_endpoints.remove(endpoint)
        messages.success(request, _("Event webhook removed."))
        return redirect("chatbot:dashboard-settings-endpoints")
    return page(request, "dashboard/settings/endpoint_delete.html", endpoint=endpoint)


# --- Actions: each takes the request and the endpoint, and says what it did ---------------------------


def send_test(request, endpoint):
    attempt = event_delivery.test(endpoint)
    answer = Truncator(attempt.answer.strip()).chars(ANSWER_SHOWN)
    facts = {"status": attempt.status, "ms": attempt.duration_ms, "answer": answer or "—", "error": attempt.error}
    if attempt.ok:
        messages.success(request, _("Test delivered: HTTP %(status)s in %(ms)s ms. Answer: %(answer)s") % facts)
    elif attempt.status is not None:
        messages.error(request, _("Test not delivered: HTTP %(status)s in %(ms)s ms. Answer: %(answer)s") % facts)
    else:
        messages.error(request, _("Test not delivered: %(error)s") % facts)


def enable(request, endpoint):
    webhook_endpoints.set_active(endpoint, True)
    messages.success(request, _("Event webhook enabled: the deliveries waiting are sent now."))


def disable(request, endpoint):
    webhook_endpoints.set_active(endpoint, False)
    messages.success(request, _("Event webhook disabled: nothing is sent to it, and what happens until it is "
                                "enabled again is not recorded for it."))


def new_secret(request, endpoint):
    webhook_endpoints.new_signing_secret(endpoint)
    request.session[SHOW_SECRET] = endpoint.pk
    messages.success(request, _("New signing secret made: deliveries are signed with it from now on. Copy it now."))


def replay_failed(request, endpoint):
    count = webhook_endpoints.replay(endpoint.deliveries.filter(status=EventDelivery.Status.FAILED))
    messages.success(request, replayed(endpoint, count))


def replayed(endpoint, count):
    if not endpoint.active:
        return ngettext("%(count)s delivery will be sent again once the webhook is enabled.",
                        "%(count)s deliveries will be sent again once the webhook is enabled.", count) % {
            "count": count}
    return ngettext("%(count)s delivery is being sent again.", "%(count)s deliveries are being sent again.",
                    count) % {"count": count}


ACTIONS = {"test": send_test, "enable": enable, "disable": disable, "secret": new_secret,
           "replay-failed": replay_failed}


@require_POST
@admin_required
def endpoint_action(request, endpoint_id, action):
    if action not in ACTIONS:
        raise Http404(_("Unknown action."))
    endpoint = endpoint_or_404(endpoint_id)
    ACTIONS[action](request, endpoint)
    if action == "replay-failed":
        return redirect(log_url(endpoint, request.POST.get("status", "")))
    return redirect("chatbot:dashboard-settings-endpoint", endpoint.pk)


@require_POST
@admin_required
def delivery_replay(request, endpoint_id, delivery_id):
    endpoint = endpoint_or_404(endpoint_id)
    delivery = get_object_or_404(EventDelivery, pk=delivery_id, endpoint=endpoint)
    count = webhook_endpoints.replay(EventDelivery.objects.filter(pk=delivery.pk))
    messages.success(request, replayed(endpoint, count))
    return redirect(log_url(endpoint, request.POST.get("status", "")))
