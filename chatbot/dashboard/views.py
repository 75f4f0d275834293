"""The operators' dashboard: pages under /chatbot/dashboard/ (design.md, "Dashboard"), and the
customers' files they show.

Views translate HTTP: reads come from `selectors`, actions from `actions` and `conversation`, who
may see what from `permissions`, and POSTs are read through `forms`. Every action is a POST
(CSRF-checked) answered with a redirect, so a reload never repeats it.
"""

import hashlib
import json

from csp.constants import NONE
from csp.decorators import csp
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from .. import conversation, inbound, lgpd, media, message_templates
from ..models import CannedReply, Contact, Department, Message, Session, Template, WebhookEvent
from . import actions, forms, selectors
from .permissions import admin_required, operator_required, operators, visible


def number(query, key):
    """query[key] as a positive integer, or None (ASCII digits only: int() takes "²" for a digit
    but not as a number)."""
    value = query.get(key, "")
    return int(value) if value.isascii() and value.isdigit() else None


# --- Overview --------------------------------------------------------------------------------


@require_GET
@operator_required
def overview(request):
    return render(request, "dashboard/overview.html", {"stats": selectors.overview(request.user),
                                                       "section": "overview"})


# --- Conversations ---------------------------------------------------------------------------


def list_filters(query):
    return selectors.ListFilters(
        status=query.get("status", ""), department=number(query, "department"),
        assignee=query.get("assignee", ""), unread=query.get("unread") == "1", q=query.get("q", "").strip()[:100],
        sort="window" if query.get("sort") == "window" else "activity",
    )


@require_GET
@operator_required
def conversation_list(request):
    filters = list_filters(request.GET)
    page = Paginator(selectors.conversations(filters, request.user), selectors.LIST_PAGE).get_page(
        request.GET.get("page"))
    context = {"page": page, "filters": filters, "now": timezone.now(), "section": "conversations"}
    if request.GET.get("partial") == "1":
        return render(request, "dashboard/_conversation_rows.html", context)
    context.update(departments=Department.objects.filter(is_active=True),
                   operators=operators(),
                   statuses=Session.Status.choices)
    return render(request, "dashboard/conversations.html", context)


def conversation_context(request, session):
    before = number(request.GET, "before")
    thread = selectors.thread(session, before=before)
    window_left = selectors.window_left(session.contact)
    templates = selectors.approved_templates() if window_left is None else []
    return {
        "session": session, "contact": session.contact, "thread": thread, "window_left": window_left,
        "older": thread[0].pk if len(thread) == selectors.THREAD_PAGE else None,
        "mark": selectors.last_change(session), "notes": session.notes.select_related("author"),
        "canned": CannedReply.objects.all(), "templates": templates,
        "template_fields": {t.pk: actions.template_placeholders(t) for t in templates},
        "departments": Department.objects.filter(is_active=True),
        "operators": operators(), "paging_back": before is not None,
        "now": timezone.now(), "section": "conversations",
    }


def visible_session(request, session_id, *related):
    """The session, if this operator may see it (404 otherwise: its existence is not told)."""
    return get_object_or_404(visible(Session.objects.select_related(*related), request.user), pk=session_id)


@require_GET
@operator_required
def conversation_detail(request, session_id):
    session = visible_session(request, session_id, "contact", "department", "assigned_to", "phone_number")
    if session.unread:
        Session.objects.filter(pk=session.pk).update(unread=0)
    return render(request, "dashboard/conversation.html", conversation_context(request, session))


@require_GET
@operator_required
def conversation_updates(request, session_id):
    """The last page of the thread when anything on it changed since the page's `mark` (a new
    message, a status, a reaction, an edit): each message's HTML with a version, which the page's
    script compares, so only what changed is replaced. Polled every 2 s."""
    session = visible_session(request, session_id, "contact")
    mark = selectors.last_change(session)
    if mark == request.GET.get("mark"):
        return JsonResponse({"mark": mark, "changed": False})
    if session.unread:  # shown on an operator's screen: read
        Session.objects.filter(pk=session.pk).update(unread=0)
    after = number(request.GET, "after")
    if after is not None and selectors.count_after(session, after) > selectors.THREAD_PAGE:
        return JsonResponse({"mark": mark, "changed": True, "reload": True})  # more than a page arrived
    rendered = []
    for message in selectors.thread(session):
        html = render_to_string("dashboard/_message.html", {"message": message}, request)
        rendered.append([message.pk, hashlib.sha256(html.encode()).hexdigest()[:16], html])
    return JsonResponse({"mark": mark, "changed": True, "messages": rendered, "status": session.status,
                         "window_open": selectors.window_left(session.contact) is not None})


def back_to(request, session):
    """To the conversation, or to the list when the action put it out of this operator's sight
    (transferred to a department of others)."""
    if not visible(Session.objects.filter(pk=session.pk), request.user).exists():
        return redirect("chatbot:dashboard-conversations")
    return redirect("chatbot:dashboard-conversation", session_id=session.pk)


@require_POST
@operator_required
def conversation_reply(request, session_id):
    session = visible_session(request, session_id, "contact", "phone_number")
    form = forms.ReplyForm(request.POST, request.FILES)
    form.is_valid()  # every field is optional: what is there is what the operator wrote
    reply = {"text": form.cleaned_data.get("text", ""), "buttons": form.cleaned_data.get("button", []),
             "upload": form.cleaned_data.get("file")}
    try:
        actions.reply(session=session, user=request.user, **reply)
    except actions.Refused as refused:
        # The page comes back with the text kept: a refused reply is never lost.
        messages.error(request, refused.message)
        context = conversation_context(request, session)
        context.update(draft=reply["text"], draft_buttons=reply["buttons"])
        return render(request, "dashboard/conversation.html", context, status=400)
    return back_to(request, session)


@require_POST
@operator_required
def conversation_template(request, session_id):
    session = visible_session(request, session_id, "contact", "phone_number")
    form = forms.TemplateForm(request.POST)
    if not form.is_valid():
        raise Http404  # not an approved template of ours
    try:
        actions.send_template(session=session, user=request.user, template=form.cleaned_data["template"],
                              values=form.values())
    except actions.Refused as refused:
        messages.error(request, refused.message)
    return back_to(request, session)


@require_POST
@operator_required
def conversation_action(request, session_id):
    session = visible_session(request, session_id, "contact", "phone_number")
    form = forms.ActionForm(request.POST)
    if "action" in form.errors:
        return HttpResponse(_("Unknown action."), status=400, content_type="text/plain; charset=utf-8")
    if not form.is_valid():
        raise Http404  # no such operator or active department
    action, data = form.cleaned_data["action"], form.cleaned_data
    if action == "take":
        done = conversation.take(session, request.user)
    elif action == "assign":
        done = conversation.transfer(session, user=data["user"])
    elif action == "transfer":
        done = conversation.transfer(session, department=data["department"])
    elif action == "return":
        done = conversation.return_to_bot(session)
    else:
        done = conversation.close(session)
    if not done:
        messages.error(request, _("This conversation is closed."))
    return back_to(request, session)


@require_POST
@operator_required
def conversation_note(request, session_id):
    session = visible_session(request, session_id)
    form = forms.NoteForm(request.POST)
    form.is_valid()
    try:
        actions.add_note(session=session, user=request.user, text=form.cleaned_data.get("text", ""))
    except actions.Refused as refused:
        messages.error(request, refused.message)
    return back_to(request, session)


@require_POST
@operator_required
def media_retry(request, message_id):
    message = get_object_or_404(visible(Message.objects.all(), request.user, "session__"), pk=message_id)
    if not media.retry(message):
        messages.error(request, _("Meta keeps a customer's media for 7 days only; this file can't be fetched again."))
    return back_to(request, message.session) if message.session_id else redirect("chatbot:dashboard")


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
    return render(request, "dashboard/contact.html", {"contact": contact, "sessions": sessions,
                                                      "section": "contacts"})


@require_POST
@operator_required
def contact_update(request, contact_id):
    """Block or unblock, opt out of or back into marketing."""
    contact = get_object_or_404(Contact, pk=contact_id)
    form = forms.ContactUpdateForm(request.POST)
    if not form.is_valid():
        return HttpResponse(_("Unknown field."), status=400, content_type="text/plain; charset=utf-8")
    field = form.cleaned_data["field"]
    setattr(contact, field, form.cleaned_data["value"])
    if field == "opted_out":
        contact.opted_out_at = timezone.now() if contact.opted_out else None
    contact.save(update_fields=[field, "opted_out_at"])
    return redirect("chatbot:dashboard-contact", contact_id=contact.pk)


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
