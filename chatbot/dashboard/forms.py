"""The dashboard's POSTs, read through Django forms: each field checked and converted, so that an
odd value is refused with a clear answer instead of reaching the actions."""

from django import forms
from django.utils.translation import gettext_lazy as _

from ..models import Department, Template
from .permissions import operators


class TextsField(forms.Field):
    """Every value sent under one name (the reply buttons' titles), stripped, blanks dropped."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        return [str(item).strip() for item in value or [] if str(item).strip()]


class ReplyForm(forms.Form):
    text = forms.CharField(required=False, strip=False)  # stripped by `actions.reply`, once
    button = TextsField(required=False)
    file = forms.FileField(required=False)


class TemplateForm(forms.Form):
    template = forms.ModelChoiceField(queryset=Template.objects.filter(status="APPROVED"))

    def values(self):
        """The parameters typed for the chosen template, in its order."""
        return self.data.getlist(f"param-{self.cleaned_data['template'].pk}")


class ActionForm(forms.Form):
    ACTIONS = ["take", "assign", "transfer", "return", "close"]

    action = forms.ChoiceField(choices=[(action, action) for action in ACTIONS])
    user = forms.ModelChoiceField(queryset=operators(), required=False)
    department = forms.ModelChoiceField(queryset=Department.objects.filter(is_active=True), required=False)

    def clean(self):
        data = super().clean()
        if data.get("action") == "assign" and not data.get("user"):
            self.add_error("user", _("Choose an operator."))
        if data.get("action") == "transfer" and not data.get("department"):
            self.add_error("department", _("Choose a department."))
        return data


class NoteForm(forms.Form):
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
