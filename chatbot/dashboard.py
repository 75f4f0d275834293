"""The operators' dashboard: pages under /chatbot/dashboard/ (design.md, "Dashboard").

Views translate HTTP: reads come from `selectors`, actions from `operators` and `conversation`.
Every action is a POST (CSRF-checked) answered with a redirect, so a reload never repeats it.
"""

import hashlib
import json

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from . import conversation, inbound, lgpd, logins, media, message_templates, operators, selectors
from .models import CannedReply, Contact, Department, Message, Session, Template, WebhookEvent
from .permissions import OPERATORS_GROUP, admin_required, operator_required, visible


class ThrottledLoginView(LoginView):
    """Django's login, refusing with 429 when a user's failed attempts pass the limits of
    `logins` (failures only; a stranger's guesses never lock out a browser the user logged in on)."""

    def post(self, request, *args, **kwargs):
        user = logins.identity(self.get_form().fields["username"], request.POST.get("username"))
        limits = logins.limits(request, user)
        wait = logins.take(limits)
        if wait:
            minutes = int(wait // 60) + 1
            throttled = ngettext("Too many failed attempts. Try again in %(minutes)d minute.",
                                 "Too many failed attempts. Try again in %(minutes)d minutes.", minutes) % {
                "minutes": minutes}
            return self.render_to_response(self.get_context_data(throttled=throttled), status=429)
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            logins.give_back(limits)
            logins.remember_device(response, user)
        return response


def number(query, key):
    """query[key] as a positive integer, or None (ASCII digits only: int() takes "²" for a digit
    but not as a number)."""
    value = query.get(key, "")
    return int(value) if value.isascii() and value.isdigit() else None


def operators_list():
    return get_user_model().objects.filter(Q(is_staff=True) | Q(groups__name=OPERATORS_GROUP),
                                           is_active=True).distinct().order_by("username")


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
                   operators=operators_list(),
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
        "template_fields": {t.pk: operators.template_placeholders(t) for t in templates},
        "departments": Department.objects.filter(is_active=True),
        "operators": operators_list(), "paging_back": before is not None,
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
    buttons = [title.strip() for title in request.POST.getlist("button") if title.strip()]
    try:
        operators.reply(session=session, user=request.user, text=request.POST.get("text", ""), buttons=buttons,
                        upload=request.FILES.get("file"))
    except operators.Refused as refused:
        # The page comes back with the text kept: a refused reply is never lost.
        messages.error(request, refused.message)
        context = conversation_context(request, session)
        context.update(draft=request.POST.get("text", ""), draft_buttons=buttons)
        return render(request, "dashboard/conversation.html", context, status=400)
    return back_to(request, session)


@require_POST
@operator_required
def conversation_template(request, session_id):
    session = visible_session(request, session_id, "contact", "phone_number")
    template = get_object_or_404(Template, pk=number(request.POST, "template"), status="APPROVED")
    try:
        operators.send_template(session=session, user=request.user, template=template,
                                values=request.POST.getlist(f"param-{template.pk}"))
    except operators.Refused as refused:
        messages.error(request, refused.message)
    return back_to(request, session)


@require_POST
@operator_required
def conversation_action(request, session_id):
    session = visible_session(request, session_id, "contact", "phone_number")
    action = request.POST.get("action")
    if action == "take":
        done = conversation.take(session, request.user)
    elif action == "assign":
        done = conversation.transfer(session, user=get_object_or_404(operators_list(), pk=number(request.POST, "user")))
    elif action == "transfer":
        department = get_object_or_404(Department, pk=number(request.POST, "department"), is_active=True)
        done = conversation.transfer(session, department=department)
    elif action == "return":
        done = conversation.return_to_bot(session)
    elif action == "close":
        done = conversation.close(session)
    else:
        return HttpResponse(_("Unknown action."), status=400, content_type="text/plain; charset=utf-8")
    if not done:
        messages.error(request, _("This conversation is closed."))
    return back_to(request, session)


@require_POST
@operator_required
def conversation_note(request, session_id):
    session = visible_session(request, session_id)
    try:
        operators.add_note(session=session, user=request.user, text=request.POST.get("text", ""))
    except operators.Refused as refused:
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
    field = request.POST.get("field")
    if field not in ("blocked", "opted_out"):
        return HttpResponse(_("Unknown field."), status=400, content_type="text/plain; charset=utf-8")
    setattr(contact, field, request.POST.get("value") == "1")
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
    if request.POST.get("confirm", "").strip() != (contact.wa_id or str(contact.pk)):
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
        messages.success(request, _("%(count)d templates synced.") % {"count": count})
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
