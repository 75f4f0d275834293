"""The forms of the business settings pages (`business`): the bot's texts, the rows the owner keeps
(hours, holidays, departments, canned replies, labels, contact attributes) and the team's accounts.

Every check is here, and so is every save that takes more than one step (an operator's account,
group and departments in one transaction), so the views only read the request and answer.
"""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import assignment
from ..models import (
    DEFAULT_LIMIT,
    BotSettings,
    BusinessHours,
    CannedReply,
    ContactAttribute,
    Department,
    Holiday,
    Label,
    OperatorProfile,
)
from .forms import UnixNewlines
from .permissions import OPERATORS_GROUP

# The bot's texts as the owner reads them, group by group (the admin shows the same groups).
BOT_GROUPS = [
    (_("Conversation"), ["greeting", "menu_text", "menu_button", "human_option", "fallback_text", "fallback_limit"]),
    (_("Handoff to people"), ["handoff_text", "transfer_text", "return_to_bot_text", "handoff_timeout_minutes",
                              "handoff_timeout_text", "followup_template", "followup_template_language"]),
    (_("Business hours"), ["out_of_hours_text"]),
    (_("Marketing opt-out"), ["opt_out_confirm_text", "opt_out_done_text", "opt_in_text"]),
    (_("Sessions and spam"), ["inactivity_hours", "closing_text", "spam_cooldown_minutes"]),
    (_("Satisfaction survey"), ["csat_enabled", "csat_question", "csat_button", "csat_comment_question",
                                "csat_thanks", "csat_template", "csat_template_language"]),
    (_("Campaigns"), ["campaigns_require_opt_in", "price_marketing", "price_utility", "price_authentication"]),
]


class BotSettingsForm(UnixNewlines, forms.ModelForm):
    class Meta:
        model = BotSettings
        fields = [name for _title, names in BOT_GROUPS for name in names]
        help_texts = {"csat_enabled": _("Asked once, after the closing message, when a conversation an operator "
                                        "handled is closed; never to customers who opted out or are blocked."),
                      "price_marketing": _("What Meta charges per delivered template of each category, in R$: used "
                                           "only for the campaigns' cost estimate.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field.widget, forms.Textarea):
                field.widget.attrs["rows"] = 3

    def groups(self):
        """[(title, [bound field, …]), …] in BOT_GROUPS' order."""
        return [(title, [self[name] for name in names]) for title, names in BOT_GROUPS]


class BusinessHoursForm(forms.ModelForm):
    class Meta:
        model = BusinessHours
        fields = ["weekday", "opens", "closes"]
        widgets = {"opens": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                   "closes": forms.TimeInput(attrs={"type": "time"}, format="%H:%M")}

    def clean(self):
        data = super().clean()
        # Said here, on the field: the table's constraint would only name itself.
        if data.get("opens") and data.get("closes") and data["closes"] <= data["opens"]:
            self.add_error("closes", _("Closing time must be after opening time."))
        return data


class HolidayForm(forms.ModelForm):
    class Meta:
        model = Holiday
        fields = ["date", "name"]
        widgets = {"date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}


def team():
    """Every account of the team, active or not: the operators group, administrators and superusers."""
    return get_user_model().objects.filter(
        Q(is_staff=True) | Q(is_superuser=True) | Q(groups__name=OPERATORS_GROUP)).distinct().order_by("username")


def accounts(by):
    """The team's accounts `by` may edit: a superuser's only by a superuser, so that an
    administrator cannot lock the owner out."""
    return team() if by.is_superuser else team().filter(is_superuser=False)


def person(user):
    name = user.get_full_name()
    label = f"{name} ({user.get_username()})" if name else user.get_username()
    return label if user.is_active else gettext("%(name)s (inactive)") % {"name": label}


class PeopleField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj):
        return person(obj)


class DepartmentForm(forms.ModelForm):
    # Inactive members too: saving the department must not drop them silently.
    operators = PeopleField(queryset=team(), required=False, label=_("Operators"))

    class Meta:
        model = Department
        fields = ["name", "description", "position", "is_active", "restricted", "assignment", "operators"]
        help_texts = {"assignment": _("Automatic: each customer in the queue goes at once to an online operator of "
                                      "the department under their limit of conversations at once; the others "
                                      "wait, and go as operators free up or come online.")}


class CannedReplyForm(UnixNewlines, forms.ModelForm):
    class Meta:
        model = CannedReply
        fields = ["title", "text", "position"]
        help_texts = {"text": _("You may use {first_name} and {name} (the customer's first and full name) and "
                                "{operator} (the name of the operator who sends it).")}
        widgets = {"text": forms.Textarea(attrs={"rows": 5})}


class LabelForm(forms.ModelForm):
    class Meta:
        model = Label
        fields = ["name", "color", "position"]


class ContactAttributeForm(forms.ModelForm):
    class Meta:
        model = ContactAttribute
        fields = ["key", "name", "position"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Contacts' values are stored under the key: a new key would orphan them.
            self.fields["key"].disabled = True
            self.fields["key"].help_text = _("The key cannot change: contacts' values are stored under it.")


def delete(row):
    """Delete a settings row; True if deleted. A department that has conversations is deactivated
    instead (False): deleting it would empty their department, which would also show a restricted
    department's conversations to every operator."""
    if isinstance(row, Department) and row.sessions.exists():
        row.is_active = False
        row.save(update_fields=["is_active"])
        return False
    row.delete()
    return True


# --- The team's accounts ---------------------------------------------------------------------

ACCOUNT_LABELS = {"first_name": _("Name"), "is_staff": _("Administrator"), "is_active": _("Active")}
ACCOUNT_HELP = {
    "is_staff": _("Administrators see every conversation and manage these settings."),
    "is_active": _("An inactive operator cannot log in; their messages and conversations stay."),
}


def departments_field():
    return forms.ModelMultipleChoiceField(queryset=Department.objects.all(), required=False,
                                          widget=forms.CheckboxSelectMultiple, label=_("Departments"))


def join(user, departments):
    """`user` in the operators group and in exactly `departments`."""
    user.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    user.departments.set(departments)


def limit_field():
    return forms.IntegerField(
        label=_("Conversations at once"), min_value=0, max_value=99, initial=DEFAULT_LIMIT,
        help_text=_("Automatic assignment gives this operator no more open conversations than this (0: none). "
                    "Taking conversations, or being assigned one by a colleague, may go over it."))


def set_limit(user, limit):
    OperatorProfile.objects.update_or_create(user=user, defaults={"max_conversations": limit})
    assignment.after_commit(operators=[user.pk])  # a raised limit (or new departments) makes room at once


class NewOperatorForm(UserCreationForm):
    """A new operator's account: the password goes through AUTH_PASSWORD_VALIDATORS."""

    departments = departments_field()
    max_conversations = limit_field()
    field_order = ["username", "first_name", "email", "password1", "password2", "departments", "max_conversations",
                   "is_staff"]

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ["username", "first_name", "email", "is_staff"]
        labels = ACCOUNT_LABELS
        help_texts = ACCOUNT_HELP

    @transaction.atomic
    def save(self):
        user = super().save(commit=False)
        user.save()
        join(user, self.cleaned_data["departments"])
        set_limit(user, self.cleaned_data["max_conversations"])
        return user


class OperatorForm(forms.ModelForm):
    """An operator's account, edited by `by`, who may not lock themselves out."""

    departments = departments_field()
    max_conversations = limit_field()
    field_order = ["first_name", "email", "departments", "max_conversations", "is_staff", "is_active"]

    class Meta:
        model = get_user_model()
        fields = ["first_name", "email", "is_staff", "is_active"]
        labels = ACCOUNT_LABELS
        help_texts = ACCOUNT_HELP

    def __init__(self, *args, by, **kwargs):
        super().__init__(*args, **kwargs)
        self.by = by
        self.fields["departments"].initial = list(self.instance.departments.all())
        profile = OperatorProfile.objects.filter(user=self.instance).first()
        if profile:
            self.fields["max_conversations"].initial = profile.max_conversations

    def clean(self):
        data = super().clean()
        if self.instance.pk == self.by.pk:
            if self.initial["is_staff"] and not data.get("is_staff"):
                self.add_error("is_staff", _("You cannot remove your own administrator access."))
            if not data.get("is_active"):
                self.add_error("is_active", _("You cannot deactivate your own account."))
        return data

    @transaction.atomic
    def save(self):
        user = super().save()
        join(user, self.cleaned_data["departments"])
        set_limit(user, self.cleaned_data["max_conversations"])
        return user
