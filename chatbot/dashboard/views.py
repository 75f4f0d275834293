"""The operators' dashboard: pages under /chatbot/dashboard/ (design.md, "Dashboard") but the
inbox (`inbox`): the overview, contacts, templates, the webhook log, the operator's own choices,
and the customers' files the conversations show.

Views translate HTTP: reads come from `selectors`, actions from `actions`, `handling` and the
services, who may see what from `permissions`, and POSTs are read through `forms`. Every action is
a POST (CSRF-checked) answered with a redirect, so a reload never repeats it.
"""

import json

from csp.constants import NONE
from csp.decorators import csp
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from .. import contacts, inbound, lgpd, media, message_templates, presence
from ..models import Contact, ContactAttribute, Label, Message, OperatorProfile, Template, WebhookEvent
from . import actions, forms, selectors
from .permissions import admin_required, is_admin, operator_required, visible


def number(query, key):
    """query[key] as a positive integer, or None (ASCII digits only: int() takes "²" for a digit
    but not as a number)."""
    value = query.get(key, "")
    return int(value) if value.isascii() and value.isdigit() else None


# --- Overview --------------------------------------------------------------------------------


@require_GET
@operator_required
def overview(request):
    """The overview; `?partial=1` is its figures alone, which the page fetches to stay current."""
    context = {"stats": selectors.overview(request.user), "section": "overview"}
    if request.GET.get("partial") == "1":
        return render(request, "dashboard/_overview_figures.html", context)
    context["disabled_endpoints"] = selectors.disabled_endpoints() if is_admin(request.user) else []
    return render(request, "dashboard/overview.html", context)


@require_POST
@operator_required
def preferences(request):
    """The operator's own switches: sound and browser notifications."""
    form = forms.PreferencesForm(request.POST)
    if form.is_valid():
        OperatorProfile.objects.update_or_create(user=request.user, defaults=form.cleaned_data)
        messages.success(request, _("Your preferences were saved."))
    return redirect(safe_next(request, "chatbot:dashboard"))


@require_POST
@operator_required
def presence_choice(request):
    """The operator's own presence: online (given conversations automatically) or away."""
    form = forms.PresenceForm(request.POST)
    if form.is_valid():
        chosen = presence.choose(request.user, form.cleaned_data["presence"]).chosen_presence
        messages.success(request, _("You are online: your departments' customers may be handed to you.")
                         if chosen == OperatorProfile.Presence.ONLINE
                         else _("You are away: no customer is handed to you until you are back online."))
    return redirect(safe_next(request, "chatbot:dashboard"))


# --- Contacts --------------------------------------------------------------------------------


@require_GET
@operator_required
def contact_list(request):
    contacts = Contact.objects.filter(anonymized_at__isnull=True).order_by("-last_seen_at")
    q = request.GET.get("q", "").strip()[:100]
    if q:
        contacts = contacts.filter(selectors.name_or_number(q))
    page = Paginator(contacts, selectors.LIST_PAGE).get_page(request.GET.get("page"))
    return render(request, "dashboard/contacts.html", {"page": page, "q": q, "section": "contacts"})


@require_GET
@operator_required
def contact_detail(request, contact_id):
    contact = get_object_or_404(Contact, pk=contact_id)
    sessions = visible(contact.sessions.select_related("department", "assigned_to"), request.user) \
        .order_by("-started_at")[:50]
    window_left = selectors.window_left(contact)
    templates = selectors.approved_templates() if window_left is None else []
    return render(request, "dashboard/contact.html", {
        "contact": contact, "sessions": sessions, "window_left": window_left, "templates": templates,
        "template_fields": {t.pk: message_templates.placeholders(t) for t in templates},
        "attributes": ContactAttribute.objects.all(), "labels": Label.objects.all(), "now": timezone.now(),
        "contact_labels": set(contact.labels.values_list("pk", flat=True)),
        "section": "contacts"})


@require_POST
@operator_required
def contact_start(request, contact_id):
    """Start a conversation with a customer: free text inside the 24-hour window, an approved
    template (with its parameters) outside it."""
    contact = get_object_or_404(Contact, pk=contact_id, anonymized_at__isnull=True)
    form = forms.StartForm(request.POST)
    form.is_valid()
    try:
        session = actions.start(contact=contact, user=request.user, text=form.cleaned_data.get("text", ""),
                                template=form.cleaned_data.get("template"), values=form.values())
    except actions.Refused as refused:
        messages.error(request, refused.message)
        return redirect("chatbot:dashboard-contact", contact_id=contact.pk)
    messages.success(request, _("Conversation started."))
    return redirect("chatbot:dashboard-conversation", session_id=session.pk)


@require_POST
@operator_required
def contact_attributes(request, contact_id):
    contact = get_object_or_404(Contact, pk=contact_id, anonymized_at__isnull=True)
    form = forms.AttributesForm(request.POST, attributes=ContactAttribute.objects.all())
    if form.is_valid():
        contact.attributes = {**contact.attributes, **{key: value.strip() for key, value in form.cleaned_data.items()
                                                        if value.strip() or key in contact.attributes}}
        contact.save(update_fields=["attributes"])
        messages.success(request, _("Contact saved."))
    return redirect(safe_next(request, "chatbot:dashboard-contact", contact_id=contact.pk))


@require_POST
@operator_required
def contact_labels(request, contact_id):
    contact = get_object_or_404(Contact, pk=contact_id)
    form = forms.LabelsForm(request.POST)
    if form.is_valid():
        contact.labels.set(form.cleaned_data["labels"])
        messages.success(request, _("Labels saved."))
    return redirect(safe_next(request, "chatbot:dashboard-contact", contact_id=contact.pk))


def safe_next(request, fallback, **kwargs):
    """Where the form asked to go back to (this site only), else `fallback`."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse(fallback, kwargs=kwargs)


@require_POST
@operator_required
def contact_update(request, contact_id):
    """Block or unblock, opt out of or back into marketing."""
    contact = get_object_or_404(Contact, pk=contact_id)
    form = forms.ContactUpdateForm(request.POST)
    if not form.is_valid():
        return HttpResponse(_("Unknown field."), status=400, content_type="text/plain; charset=utf-8")
    field, value = form.cleaned_data["field"], form.cleaned_data["value"]
    if field == "opted_out" and value:
        contacts.stopped_marketing([contact.pk], timezone.now())
    elif field == "opted_out":
        contacts.resumed_marketing([contact.pk])
    else:
        contact.blocked = value
        contact.save(update_fields=["blocked"])
    messages.success(request, _("Contact saved."))
    return redirect(safe_next(request, "chatbot:dashboard-contact", contact_id=contact.pk))


@require_GET
@admin_required
def contact_export(request, contact_id):
    contact = get_object_or_404(Contact, pk=contact_id)
    response = HttpResponse(json.dumps(lgpd.export(contact), ensure_ascii=False, indent=2),
                            content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="contato-{contact.pk}.json"'
    return response


@admin_required
def contact_anonymize(request, contact_id):
    """A confirmation page (GET), then the irreversible erasure (POST)."""
    contact = get_object_or_404(Contact, pk=contact_id, anonymized_at__isnull=True)
    if request.method != "POST":
        return render(request, "dashboard/contact_anonymize.html", {"contact": contact, "section": "contacts"})
    form = forms.AnonymizeForm(request.POST, contact=contact)
    if not form.is_valid():
        messages.error(request, _("Type the number exactly as shown to confirm."))
        return redirect("chatbot:dashboard-contact-anonymize", contact_id=contact.pk)
    lgpd.anonymize(contact, by=request.user)
    messages.success(request, _("The contact's personal data was erased."))
    return redirect("chatbot:dashboard-contacts")


# --- Templates and webhook log ---------------------------------------------------------------


@require_GET
@operator_required
def template_list(request):
    return render(request, "dashboard/templates.html", {"templates": Template.objects.all(),
                                                        "section": "templates"})


@require_POST
@operator_required
def template_sync(request):
    try:
        count = message_templates.sync()
    except message_templates.SyncError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, ngettext("%(count)d template synced.", "%(count)d templates synced.", count) % {
            "count": count})
    return redirect("chatbot:dashboard-templates")


# The raw bodies hold every customer's messages: administrators only, like the admin.
@require_GET
@admin_required
def webhook_list(request):
    events = WebhookEvent.objects.order_by("-received_at")
    result = request.GET.get("result", "")
    if result in WebhookEvent.Result.values:
        events = events.filter(result=result)
    page = Paginator(events.defer("body"), selectors.LIST_PAGE).get_page(request.GET.get("page"))
    return render(request, "dashboard/webhooks.html", {"page": page, "result": result,
                                                       "results": WebhookEvent.Result.choices,
                                                       "account_events": selectors.account_events(),
                                                       "section": "webhooks"})


@require_GET
@admin_required
def webhook_detail(request, event_id):
    event = get_object_or_404(WebhookEvent, pk=event_id)
    try:
        body = json.dumps(json.loads(event.body), ensure_ascii=False, indent=2)
    except ValueError:
        body = event.body
    return render(request, "dashboard/webhook.html", {"event": event, "body": body, "section": "webhooks"})


@require_POST
@admin_required
def webhook_reprocess(request, event_id):
    event = get_object_or_404(WebhookEvent, pk=event_id)
    inbound.reprocess(event)
    event.refresh_from_db()
    if event.result == WebhookEvent.Result.FAILED:
        messages.error(request, _("Event %(id)d failed again: %(error)s") % {"id": event.pk, "error": event.error})
    else:
        messages.success(request, _("Event %(id)d applied.") % {"id": event.pk})
    return redirect(reverse("chatbot:dashboard-webhook", args=[event.pk]))


# --- Customers' files ---------------------------------------------------------------------------


@require_GET
@operator_required
@csp({"default-src": [NONE], "sandbox": [True]})
def media_file(request, message_id):
    """A stored media file, for logged-in operators only (customers' files are personal data).

    The customer chose its bytes, its name and its declared type: only an allow-listed type is
    shown inline, under our own Content-Type string; everything else downloads as octet-stream.
    The sandbox policy keeps even a file a browser renders from running script in our origin."""
    message = get_object_or_404(visible(Message.objects.all(), request.user, "session__"), pk=message_id,
                                media_status=Message.MediaStatus.READY)
    content_type, inline = media.served_type(message.media_mime_type)
    filename = media.download_name(message.media_filename or message.media_file.name.rsplit("/", 1)[-1],
                                   f"arquivo-{message.pk}")
    response = FileResponse(message.media_file.open("rb"), content_type=content_type, as_attachment=not inline,
                            filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response
