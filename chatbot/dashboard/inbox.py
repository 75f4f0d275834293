"""The operators' inbox: the conversation list beside the open conversation and the customer's
panel (one page on a desk, one column on a phone), its live updates, and every action on a
conversation. Each action is a POST answered with a redirect and a message saying what happened.
"""

import hashlib
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from .. import conversation, handling, media, message_templates, presence, scheduling
from ..models import CannedReply, ContactAttribute, Department, Label, Message, OperatorProfile, Session
from . import actions, forms, selectors
from .permissions import may_cancel_scheduled, operator_required, operators, visible

LIST_KEYS = ("status", "department", "assignee", "unread", "q", "sort", "label")


def number(query, key):
    """query[key] as a positive integer, or None (ASCII digits only: int() takes "²" for a digit
    but not as a number)."""
    value = query.get(key, "")
    return int(value) if value.isascii() and value.isdigit() else None


def list_filters(query):
    return selectors.ListFilters(
        status=query.get("status", ""), department=number(query, "department"),
        assignee=query.get("assignee", ""), unread=query.get("unread") == "1", q=query.get("q", "").strip()[:100],
        sort=query.get("sort", "") if query.get("sort") in ("window", "activity") else "",
        label=number(query, "label"),
    )


def list_query(request):
    """The list's filters as a query string, kept in every link of the inbox."""
    return urlencode([(key, request.GET[key]) for key in LIST_KEYS if request.GET.get(key)])


def list_context(request, selected=None):
    selected = selected or number(request.GET, "selected")
    filters = list_filters(request.GET)
    page = selectors.ListPage(selectors.conversations(filters, request.user), number(request.GET, "page") or 1,
                              selectors.LIST_PAGE)
    return {"page": page, "filters": filters, "list_query": list_query(request), "selected": selected,
            "now": timezone.now(), "section": "conversations",
            # Each row links to <this>/<id>/: one reverse() for the page, not one per row.
            "conversations_url": reverse("chatbot:dashboard-conversations")}


@require_GET
@operator_required
def conversation_list(request):
    context = list_context(request)
    if request.GET.get("partial") == "1":
        return render(request, "dashboard/_conversation_rows.html", context)
    return render(request, "dashboard/inbox.html", {**context, **choices()})


def choices():
    return {"departments": Department.objects.filter(is_active=True), "operators": operators(),
            "labels": Label.objects.all(), "statuses": Session.Status.choices}


def visible_session(request, session_id, *related):
    """The session, if this operator may see it (404 otherwise: its existence is not told)."""
    return get_object_or_404(visible(Session.objects.select_related(*related), request.user), pk=session_id)


def conversation_context(request, session):
    before = number(request.GET, "before")
    thread = selectors.thread(session, before=before)
    window_left = selectors.window_left(session.contact)
    approved = selectors.approved_templates()
    templates = approved if window_left is None else []
    colleague = handling.colleague(session, request.user)
    viewers = selectors.viewers(session, request.user)
    session_labels = list(session.labels.all())
    contact_labels = list(session.contact.labels.all())
    return {
        "session": session, "contact": session.contact, "thread": thread, "window_left": window_left,
        "older": thread[0].pk if len(thread) == selectors.THREAD_PAGE else None,
        "mark": marks(session, viewers, session_labels), "notes": session.notes.select_related("author"),
        "canned": CannedReply.objects.all(), "templates": templates, "approved_templates": approved,
        "template_fields": {t.pk: message_templates.placeholders(t) for t in approved},
        **schedule_context(session), "colleague": colleague, "viewers": viewers,
        "past": selectors.past_conversations(session, request.user),
        "attributes": ContactAttribute.objects.all(), "paging_back": before is not None,
        "state": writing_state(session, window_left, colleague),
        "session_labels": session_labels, "session_label_ids": {label.pk for label in session_labels},
        "contact_labels": contact_labels, "contact_label_ids": {label.pk for label in contact_labels},
    }


def schedule_context(session):
    """The scheduled messages' list and what the form to schedule one needs."""
    now = timezone.localtime()
    return {"scheduled": list(scheduling.pending(session)), "window_closes": scheduling.window_closes(session.contact),
            "schedule_min": f"{now:%Y-%m-%dT%H:%M}", "schedule_max": f"{now + scheduling.MAX_AHEAD:%Y-%m-%dT%H:%M}"}


def marks(session, viewers, labels):
    """What the live updates compare: the thread's mark, and the conversation's state (status,
    operator, department, labels, who else has it open)."""
    state = "|".join(str(value) for value in (
        session.status, session.assigned_to_id, session.department_id, ",".join(str(label.pk) for label in labels),
        ",".join(viewers)))
    return f"{selectors.last_change(session)}#{state}"


@require_GET
@operator_required
def conversation_detail(request, session_id):
    session = visible_session(request, session_id, "contact", "department", "assigned_to", "phone_number")
    if session.unread:
        Session.objects.filter(pk=session.pk).update(unread=0)
    on_screen(request.user, session)
    context = {**list_context(request, selected=session.pk), **choices(), **conversation_context(request, session)}
    return render(request, "dashboard/inbox.html", context)


def on_screen(user, session):
    """Record that `user` has the conversation open (an UPDATE at most every few seconds); the
    profile is kept on the user for the page (its sound and notification switches)."""
    now = timezone.now()
    profile, _created = OperatorProfile.objects.get_or_create(user=user)
    if profile.viewing_id != session.pk or not profile.viewing_at or now - profile.viewing_at > timedelta(seconds=4):
        OperatorProfile.objects.filter(pk=profile.pk).update(viewing=session, viewing_at=now, seen_at=now)
    user.profile = profile


@require_GET
@operator_required
def conversation_updates(request, session_id):
    """What changed on the open conversation since the page's `mark`: the last page of the thread,
    each message's HTML with a version (the script replaces only what changed), and the head and
    actions when the conversation's state changed. Polled every 2 s."""
    session = visible_session(request, session_id, "contact", "department", "assigned_to")
    on_screen(request.user, session)
    viewers = selectors.viewers(session, request.user)
    session_labels = list(session.labels.all())
    mark = marks(session, viewers, session_labels)
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
    window_left = selectors.window_left(session.contact)
    templates = selectors.approved_templates() if window_left is None else []
    context = {"session": session, "contact": session.contact, "colleague": handling.colleague(session, request.user),
               "viewers": viewers, "session_labels": session_labels, "now": timezone.now(), **choices(),
               "window_left": window_left, "canned": CannedReply.objects.all(), "templates": templates,
               "template_fields": {t.pk: message_templates.placeholders(t) for t in templates}}
    return JsonResponse({
        "mark": mark, "changed": True, "messages": rendered,
        # What the reply box depends on: who may write what.
        "state": writing_state(session, window_left, context["colleague"]),
        "head": render_to_string("dashboard/_conversation_head.html", context, request),
        "actions": render_to_string("dashboard/_conversation_actions.html", context, request),
        "compose": render_to_string("dashboard/_compose.html", context, request),
        "scheduled": render_to_string("dashboard/_scheduled_list.html",
                                      {"scheduled": scheduling.pending(session), "session": session}, request),
    })


def writing_state(session, window_left, colleague):
    return f"{session.status}|{'open' if window_left else 'closed'}|{colleague.pk if colleague else ''}"


def back_to(request, session, anchor=""):
    """To the conversation, or to the list when the action put it out of this operator's sight
    (transferred to a department of others)."""
    query = list_query(request)
    if not visible(Session.objects.filter(pk=session.pk), request.user).exists():
        return redirect(reverse("chatbot:dashboard-conversations") + (f"?{query}" if query else ""))
    url = reverse("chatbot:dashboard-conversation", args=[session.pk])
    return redirect(url + (f"?{query}" if query else "") + anchor)


@require_POST
@operator_required
def conversation_reply(request, session_id):
    session = visible_session(request, session_id, "contact", "phone_number", "assigned_to")
    form = forms.ReplyForm(request.POST, request.FILES)
    form.is_valid()  # every field is optional: what is there is what the operator wrote
    reply = {"text": form.cleaned_data.get("text", ""), "buttons": form.cleaned_data.get("button", []),
             "upload": form.cleaned_data.get("file")}
    try:
        actions.reply(session=session, user=request.user, override=request.POST.get("override") == "1", **reply)
    except (actions.Refused, handling.ColleagueHasIt) as refused:
        # The page comes back with the text kept: a refused reply is never lost.
        messages.error(request, refusal(refused))
        context = {**list_context(request, selected=session.pk), **choices(), **conversation_context(request, session)}
        context.update(draft=reply["text"], draft_buttons=reply["buttons"])
        return render(request, "dashboard/inbox.html", context, status=400)
    return back_to(request, session, "#reply-form")


def refusal(error):
    if isinstance(error, handling.ColleagueHasIt):
        return _("%(operator)s is answering this conversation: confirm to answer too.") % {
            "operator": error.colleague.get_username()}
    return error.message


@require_POST
@operator_required
def conversation_template(request, session_id):
    session = visible_session(request, session_id, "contact", "phone_number", "assigned_to")
    form = forms.TemplateForm(request.POST)
    if not form.is_valid():
        raise Http404  # not an approved template of ours
    try:
        actions.send_template(session=session, user=request.user, template=form.cleaned_data["template"],
                              values=form.values(), override=request.POST.get("override") == "1")
    except (actions.Refused, handling.ColleagueHasIt) as refused:
        messages.error(request, refusal(refused))
    else:
        messages.success(request, _("Template sent."))
    return back_to(request, session)


@require_POST
@operator_required
def conversation_schedule(request, session_id):
    session = visible_session(request, session_id, "contact", "phone_number", "assigned_to")
    form = forms.ScheduleForm(request.POST)
    try:
        if not form.is_valid():
            raise actions.Refused(form.first_error())
        message = actions.schedule(session=session, user=request.user, override=request.POST.get("override") == "1",
                                   **form.message())
    except (actions.Refused, handling.ColleagueHasIt) as refused:
        # The page comes back with the form as it was written.
        messages.error(request, refusal(refused))
        context = {**list_context(request, selected=session.pk), **choices(), **conversation_context(request, session)}
        context["schedule_draft"] = form.data
        return render(request, "dashboard/inbox.html", context, status=400)
    messages.success(request, _("Message scheduled for %(time)s.") % {"time": scheduling.local(message.timestamp)})
    return back_to(request, session, "#scheduled")


@require_POST
@operator_required
def scheduled_cancel(request, message_id):
    message = (visible(Message.objects.filter(scheduling.SCHEDULED), request.user, "session__")
               .select_related("session").filter(pk=message_id).first())
    if message is None:  # cancelled meanwhile (another tab, an administrator)
        session = visible_session(request, number(request.POST, "session") or 0)
        messages.info(request, _("This scheduled message was already cancelled."))
        return back_to(request, session, "#scheduled")
    if not may_cancel_scheduled(request.user, message):
        raise PermissionDenied
    try:
        scheduling.cancel(message)
    except scheduling.TooLate:
        messages.error(request, _("Too late to cancel: the message is being sent, or was sent."))
    else:
        messages.success(request, _("Scheduled message cancelled."))
    if message.session_id is None:
        return redirect("chatbot:dashboard-conversations")
    return back_to(request, message.session, "#scheduled")


@require_POST
@operator_required
def conversation_action(request, session_id):
    session = visible_session(request, session_id, "contact", "phone_number", "department")
    form = forms.ActionForm(request.POST)
    if "action" in form.errors:
        return HttpResponse(_("Unknown action."), status=400, content_type="text/plain; charset=utf-8")
    if not form.is_valid():
        raise Http404  # no such operator or active department
    action, data = form.cleaned_data["action"], form.cleaned_data
    try:
        done, said = act(request, session, action, data)
    except handling.ColleagueHasIt as busy:
        messages.error(request, _("%(operator)s is answering this conversation: confirm to take it.") % {
            "operator": busy.colleague.get_username()})
        return back_to(request, session)
    if isinstance(done, Session):  # reopening led to the customer's open conversation
        messages.success(request, said)
        return back_to(request, done)
    if done:
        messages.success(request, said)
    else:
        messages.error(request, _("This conversation is closed."))
    return back_to(request, session)


def act(request, session, action, data):
    """Do one action; returns (done, what to tell the operator)."""
    if action == "take":
        return handling.take(session, request.user, override=data["override"]), _("You have the conversation now.")
    if action == "assign":
        return handling.transfer(session, user=data["user"]), _("Assigned to %(operator)s.") % {
            "operator": data["user"].get_username()}
    if action == "transfer":
        return handling.transfer(session, department=data["department"]), _("Transferred to %(department)s.") % {
            "department": data["department"]}
    if action == "return":
        return handling.return_to_bot(session), _("The bot answers this customer again.")
    if action == "reopen":
        return handling.reopen(session, request.user), _("Conversation reopened.")
    return conversation.close(session), _("Conversation closed.")


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
    else:
        messages.success(request, _("Note added."))
    return back_to(request, session, "#notes")


@require_POST
@operator_required
def conversation_labels(request, session_id):
    session = visible_session(request, session_id)
    form = forms.LabelsForm(request.POST)
    if not form.is_valid():
        raise Http404
    session.labels.set(form.cleaned_data["labels"])
    messages.success(request, _("Labels saved."))
    return back_to(request, session)


@require_POST
@operator_required
def take_next(request):
    session = handling.take_next(request.user, selectors.queue_of(request.user))
    if session is None:
        messages.info(request, _("Nobody is waiting in your departments."))
        return redirect("chatbot:dashboard-conversations")
    messages.success(request, _("You have %(customer)s's conversation now.") % {"customer": session.contact})
    return redirect("chatbot:dashboard-conversation", session_id=session.pk)


@require_POST
@operator_required
def bulk(request):
    """One action on the conversations ticked in the list: assign, label or close."""
    form = forms.BulkForm(request.POST, sessions=visible(Session.objects.all(), request.user))
    if not form.is_valid():
        messages.error(request, _("Choose conversations and what to do with them."))
        return redirect(reverse("chatbot:dashboard-conversations") + f"?{list_query(request)}")
    chosen, data = form.cleaned_data["sessions"], form.cleaned_data
    done = 0
    for session in chosen:
        if data["action"] == "assign":
            done += handling.transfer(session, user=data["user"])
        elif data["action"] == "label":
            session.labels.add(data["label"])
            done += 1
        else:
            done += conversation.close(session)
    messages.success(request, ngettext("%(count)d conversation updated.", "%(count)d conversations updated.",
                                       done) % {"count": done})
    return redirect(reverse("chatbot:dashboard-conversations") + f"?{list_query(request)}")


@require_POST
@operator_required
def media_retry(request, message_id):
    message = get_object_or_404(visible(Message.objects.all(), request.user, "session__"), pk=message_id)
    if media.retry(message):
        messages.success(request, _("Downloading the file again."))
    else:
        messages.error(request, _("Meta keeps a customer's media for 7 days only; this file can't be fetched again."))
    return back_to(request, message.session) if message.session_id else redirect("chatbot:dashboard")


@require_GET
@operator_required
def pulse(request):
    """What every dashboard tab polls: the queue and unread counts (the tab's title), the newest
    arrivals (sound, notifications), the operator's choices about them and their presence.
    `?active=1`: there was input in the tab since its last poll (`presence.record_pulse`)."""
    profile = presence.record_pulse(request.user, active=request.GET.get("active") == "1")
    return JsonResponse({**selectors.pulse(request.user), "sound": profile.sound,
                         "notifications": profile.notifications, "presence": profile.presence,
                         "presence_label": str(profile.get_presence_display())})
