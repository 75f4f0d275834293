"""The dashboard's POSTs, read through Django forms: each field checked and converted, so that an
odd value is refused with a clear answer instead of reaching the actions."""

from django import forms
from django.utils.translation import gettext_lazy as _

from ..models import Department, Label, Template
from .permissions import operators


class UnixNewlines:
    """Browsers send a textarea's line breaks as CRLF: the customer gets (and the database keeps)
    plain newlines."""

    def clean(self):
        data = super().clean()
        return {key: value.replace("\r\n", "\n") if isinstance(value, str) else value for key, value in data.items()}


class TextsField(forms.Field):
    """Every value sent under one name (the reply buttons' titles), stripped, blanks dropped."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        return [str(item).strip() for item in value or [] if str(item).strip()]


class ReplyForm(UnixNewlines, forms.Form):
    text = forms.CharField(required=False, strip=False)  # stripped by `actions.reply`, once
    button = TextsField(required=False)
    file = forms.FileField(required=False)


class TemplateForm(forms.Form):
    template = forms.ModelChoiceField(queryset=Template.objects.filter(status="APPROVED"))

    def values(self):
        """The parameters typed for the chosen template, in its order."""
        return self.data.getlist(f"param-{self.cleaned_data['template'].pk}")


class ScheduleForm(UnixNewlines, forms.Form):
    """A message scheduled in a conversation: when (a browser's datetime-local, in TIME_ZONE), and
    free text or an approved template with its parameters."""

    WHEN = _("Choose the day and time to send it.")

    at = forms.DateTimeField(error_messages={"required": WHEN, "invalid": WHEN})
    kind = forms.ChoiceField(choices=[("text", "text"), ("template", "template")])
    text = forms.CharField(required=False, strip=False)
    template = forms.ModelChoiceField(queryset=Template.objects.filter(status="APPROVED"), required=False)

    def clean(self):
        data = super().clean()
        if data.get("kind") == "template" and not data.get("template"):
            self.add_error("template", _("Choose a template."))
        return data

    def message(self):
        """What `actions.schedule` takes: the time, and the text or the template with its values."""
        data = self.cleaned_data
        if data["kind"] == "template":
            template = data["template"]
            return {"at": data["at"], "template": template, "values": self.data.getlist(f"param-{template.pk}")}
        return {"at": data["at"], "text": data["text"]}

    def first_error(self):
        return next(iter(self.errors.values()))[0]


class ActionForm(forms.Form):
    ACTIONS = ["take", "assign", "transfer", "return", "close", "reopen"]

    action = forms.ChoiceField(choices=[(action, action) for action in ACTIONS])
    user = forms.ModelChoiceField(queryset=operators(), required=False)
    department = forms.ModelChoiceField(queryset=Department.objects.filter(is_active=True), required=False)
    override = forms.BooleanField(required=False)  # take it though a colleague has it

    def clean(self):
        data = super().clean()
        if data.get("action") == "assign" and not data.get("user"):
            self.add_error("user", _("Choose an operator."))
        if data.get("action") == "transfer" and not data.get("department"):
            self.add_error("department", _("Choose a department."))
        return data


class LabelsForm(forms.Form):
    labels = forms.ModelMultipleChoiceField(queryset=Label.objects.all(), required=False)


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=[("assign", "assign"), ("label", "label"), ("close", "close")])
    sessions = forms.ModelMultipleChoiceField(queryset=None)
    user = forms.ModelChoiceField(queryset=operators(), required=False)
    label = forms.ModelChoiceField(queryset=Label.objects.all(), required=False)

    def __init__(self, *args, sessions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sessions"].queryset = sessions  # only those the operator may see

    def clean(self):
        data = super().clean()
        if data.get("action") == "assign" and not data.get("user"):
            self.add_error("user", _("Choose an operator."))
        if data.get("action") == "label" and not data.get("label"):
            self.add_error("label", _("Choose a label."))
        return data


class AttributesForm(forms.Form):
    """The contact's attributes, one field per attribute the business defined."""

    def __init__(self, *args, attributes, **kwargs):
        super().__init__(*args, **kwargs)
        for attribute in attributes:
            self.fields[attribute.key] = forms.CharField(label=attribute.name, required=False, max_length=255)


class StartForm(UnixNewlines, forms.Form):
    """The first message of a conversation an operator starts: free text inside the window, an
    approved template outside it."""

    text = forms.CharField(required=False)
    template = forms.ModelChoiceField(queryset=Template.objects.filter(status="APPROVED"), required=False)

    def values(self):
        template = self.cleaned_data.get("template")
        return self.data.getlist(f"param-{template.pk}") if template else []


class PreferencesForm(forms.Form):
    sound = forms.BooleanField(required=False)
    notifications = forms.BooleanField(required=False)


class PresenceForm(forms.Form):
    presence = forms.ChoiceField(choices=[(value, value) for value in ("online", "away")])


class NoteForm(UnixNewlines, forms.Form):
    text = forms.CharField(required=False)


class ContactUpdateForm(forms.Form):
    field = forms.ChoiceField(choices=[("blocked", "blocked"), ("opted_out", "opted_out")])
    value = forms.BooleanField(required=False)


class AnonymizeForm(forms.Form):
    """The erasure is confirmed by typing the contact's number (or its row id when it has none)."""

    confirm = forms.CharField()

    def __init__(self, *args, contact, **kwargs):
        super().__init__(*args, **kwargs)
        self.contact = contact

    def clean_confirm(self):
        if self.cleaned_data["confirm"] != (self.contact.wa_id or str(self.contact.pk)):
            raise forms.ValidationError(_("Type the number exactly as shown to confirm."))
        return self.cleaned_data["confirm"]
