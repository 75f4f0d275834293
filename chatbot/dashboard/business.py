"""The business's settings in the dashboard, for administrators only (`permissions.admin_required`),
under /chatbot/dashboard/settings/: the bot's texts, the rows the owner keeps (one list, edit and
delete for every kind in `KINDS`) and the team's accounts (never deleted: messages name them).

Views translate HTTP: the forms in `business_forms` check and save. Every POST is answered with a
redirect and a message saying what happened.
"""

from dataclasses import dataclass
from operator import attrgetter

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from ..models import (
    DEFAULT_LIMIT,
    BotSettings,
    BusinessHours,
    CannedReply,
    ContactAttribute,
    Department,
    Holiday,
    Label,
    WebhookEndpoint,
)
from ..templatetags.dashboard import label_class, presence_label, presence_mark, presence_of
from . import business_forms
from .permissions import admin_required

LIST, FORM, INDEX = "dashboard/settings/list.html", "dashboard/settings/form.html", "dashboard/settings/index.html"


def yes_no(value):
    return _("Yes") if value else _("No")


@dataclass(frozen=True)
class Kind:
    """One kind of settings row: its model and form, the words its pages use, and its list's columns
    as (header, value of a row)."""

    model: type
    form: type
    title: Promise
    help: Promise
    new: Promise
    saved: Promise
    deleted: Promise
    columns: list
    consequence: Promise = ""  # what deleting a row does besides removing it
    prefetch: tuple = ()


KINDS = {
    "hours": Kind(
        BusinessHours, business_forms.BusinessHoursForm, _("Business hours"),
        _("When the bot treats messages as inside business hours. No hours at all means always open."),
        _("New opening hours"), _("Opening hours saved."), _("Opening hours deleted."),
        [(_("Weekday"), lambda row: row.get_weekday_display()), (_("Opens"), attrgetter("opens")),
         (_("Closes"), attrgetter("closes"))]),
    "holidays": Kind(
        Holiday, business_forms.HolidayForm, _("Holidays"), _("Days the business is closed all day."),
        _("New holiday"), _("Holiday saved."), _("Holiday deleted."),
        [(_("Date"), attrgetter("date")), (_("Name"), attrgetter("name"))]),
    "departments": Kind(
        Department, business_forms.DepartmentForm, _("Departments"),
        _("The queues customers choose when they ask for a person, and the operators who answer each."),
        _("New department"), _("Department saved."), _("Department deleted."),
        [(_("Name"), attrgetter("name")), (_("Active"), lambda row: yes_no(row.is_active)),
         (_("Restricted"), lambda row: yes_no(row.restricted)),
         (_("Automatic assignment"), lambda row: row.get_assignment_display()),
         (_("Operators"), lambda row: ", ".join(user.get_full_name() or user.get_username()
                                                 for user in row.operators.all()) or "—"),
         (_("Position"), attrgetter("position"))],
        consequence=_("A department that has conversations is deactivated instead of deleted, so that they keep "
                      "it (and its restriction). Menu options and keyword rules that hand off to it lose it."),
        prefetch=("operators",)),
    "canned": Kind(
        CannedReply, business_forms.CannedReplyForm, _("Canned replies"),
        _("Ready answers operators insert in the reply box."),
        _("New canned reply"), _("Canned reply saved."), _("Canned reply deleted."),
        [(_("Title"), attrgetter("title")), (_("Text"), lambda row: Truncator(row.text).chars(80)),
         (_("Position"), attrgetter("position"))]),
    "labels": Kind(
        Label, business_forms.LabelForm, _("Labels"), _("Coloured labels operators put on conversations and contacts."),
        _("New label"), _("Label saved."), _("Label deleted."),
        [(_("Label"), lambda row: format_html('<span class="label {}">{}</span>', label_class(row), row.name)),
         (_("Colour"), lambda row: row.get_color_display()), (_("Position"), attrgetter("position"))],
        consequence=_("It is taken off every conversation and contact that has it.")),
    "attributes": Kind(
        ContactAttribute, business_forms.ContactAttributeForm, _("Contact attributes"),
        _("Fields the business keeps for each contact (CPF, order, plan…), shown beside the conversation."),
        _("New contact attribute"), _("Contact attribute saved."), _("Contact attribute deleted."),
        [(_("Name"), attrgetter("name")), (_("Key"), attrgetter("key")), (_("Position"), attrgetter("position"))],
        consequence=_("Contacts keep their values, hidden until an attribute with the same key exists again.")),
}


def kind_or_404(kind):
    if kind not in KINDS:
        raise Http404
    return KINDS[kind]


def page(request, template, **context):
    return render(request, template, {"section": "settings", **context})


def form_page(request, form, **context):
    """The form, field by field (or group by group), with its errors."""
    groups = form.groups() if hasattr(form, "groups") else [("", list(form))]
    return page(request, FORM, form=form, groups=groups, **context)


@require_GET
@admin_required
def index(request):
    sections = [(kind.title, kind.help, reverse("chatbot:dashboard-settings-list", args=[slug]),
                 kind.model.objects.count()) for slug, kind in KINDS.items()]
    return page(request, INDEX, sections=sections, operators=business_forms.accounts(request.user).count(),
                endpoints=WebhookEndpoint.objects.listed().count())


@require_http_methods(["GET", "POST"])
@admin_required
def bot_texts(request):
    form = business_forms.BotSettingsForm(request.POST if request.method == "POST" else None,
                                          instance=BotSettings.load())
    if form.is_valid():
        form.save()
        messages.success(request, _("Bot texts saved."))
        return redirect("chatbot:dashboard-settings-bot")
    return form_page(request, form, title=_("Bot texts"), back=reverse("chatbot:dashboard-settings"),
                     back_title=_("Settings"),
                     intro=_("Texts may use {name} (the customer's profile name), {department}, {position} (in "
                             "the queue) and {hours}. Changes reach the bot within seconds."))


@require_GET
@admin_required
def row_list(request, kind):
    spec = kind_or_404(kind)
    rows = [(str(row), reverse("chatbot:dashboard-settings-edit", args=[kind, row.pk]),
             reverse("chatbot:dashboard-settings-delete", args=[kind, row.pk]),
             [value(row) for _header, value in spec.columns])
            for row in spec.model.objects.prefetch_related(*spec.prefetch)]
    return page(request, LIST, title=spec.title, help=spec.help, new=spec.new, rows=rows,
                new_url=reverse("chatbot:dashboard-settings-new", args=[kind]),
                headers=[header for header, _value in spec.columns])


@require_http_methods(["GET", "POST"])
@admin_required
def row_edit(request, kind, pk=None):
    """A new row (no pk) or an existing one."""
    spec = kind_or_404(kind)
    row = get_object_or_404(spec.model, pk=pk) if pk is not None else None
    form = spec.form(request.POST if request.method == "POST" else None, instance=row)
    if form.is_valid():
        form.save()
        messages.success(request, spec.saved)
        return redirect("chatbot:dashboard-settings-list", kind=kind)
    return form_page(request, form, title=str(row) if row else spec.new,
                     back=reverse("chatbot:dashboard-settings-list", args=[kind]), back_title=spec.title,
                     delete_url=row and reverse("chatbot:dashboard-settings-delete", args=[kind, row.pk]))


@require_http_methods(["GET", "POST"])
@admin_required
def row_delete(request, kind, pk):
    """A confirmation page (GET), then the deletion (POST)."""
    spec = kind_or_404(kind)
    row = get_object_or_404(spec.model, pk=pk)
    if request.method == "POST":
        if business_forms.delete(row):
            messages.success(request, spec.deleted)
        else:
            messages.success(request, _("The department has conversations: it was deactivated instead of deleted."))
        return redirect("chatbot:dashboard-settings-list", kind=kind)
    return page(request, FORM, title=_("Delete “%(name)s”?") % {"name": row}, intro=spec.consequence,
                back=reverse("chatbot:dashboard-settings-list", args=[kind]), back_title=spec.title, delete=True)


# --- The team --------------------------------------------------------------------------------


def presence(person):
    state = presence_of(person)
    return f"{presence_mark(state)} {presence_label(state)}"


def limit(person):
    profile = getattr(person, "profile", None)
    return profile.max_conversations if profile else DEFAULT_LIMIT


@require_GET
@admin_required
def operator_list(request):
    rows = [(person.get_username(), reverse("chatbot:dashboard-settings-operator", args=[person.pk]), None,
             [person.get_username(), person.get_full_name(), person.email,
              ", ".join(department.name for department in person.departments.all()),
              _("Administrator") if person.is_staff or person.is_superuser else _("Operator"),
              _("Active") if person.is_active else _("Inactive"), presence(person), limit(person)])
            for person in business_forms.accounts(request.user).select_related("profile")
            .prefetch_related("departments")]
    return page(request, LIST, title=_("Operators"), new=_("New operator"), rows=rows,
                help=_("Operators answer conversations in the dashboard. Accounts are deactivated, never deleted: "
                       "their messages keep their names."),
                new_url=reverse("chatbot:dashboard-settings-operator-new"),
                headers=[_("Username"), _("Name"), _("Email"), _("Departments"), _("Role"), _("Status"),
                         _("Presence"), _("Conversations at once")])


@require_http_methods(["GET", "POST"])
@admin_required
def operator_new(request):
    form = business_forms.NewOperatorForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        form.save()
        messages.success(request, _("Operator created."))
        return redirect("chatbot:dashboard-settings-operators")
    return form_page(request, form, title=_("New operator"), back=reverse("chatbot:dashboard-settings-operators"),
                     back_title=_("Operators"))


@require_http_methods(["GET", "POST"])
@admin_required
def operator_edit(request, user_id):
    person = get_object_or_404(business_forms.accounts(request.user), pk=user_id)
    form = business_forms.OperatorForm(request.POST if request.method == "POST" else None, instance=person,
                                       by=request.user)
    if form.is_valid():
        form.save()
        messages.success(request, _("Operator saved."))
        return redirect("chatbot:dashboard-settings-operators")
    return form_page(request, form, title=person.get_full_name() or person.get_username(),
                     back=reverse("chatbot:dashboard-settings-operators"), back_title=_("Operators"))
