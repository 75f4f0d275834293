"""The campaign wizard's form (`dashboard.campaigns.campaign_new`): what the administrator typed,
read into what `chatbot.campaigns` takes, and its refusals (`CampaignRefused.field`) put back
beside the field they name, so the page keeps every value and says what to change.

One form for every approved template: each template's placeholders, media header and link
buttons are fields named after the template (`var-<pk>-<placeholder>`, `header-<pk>`,
`button-<pk>-<index>`); campaigns.js shows only the chosen template's, and without it every
template's fields are on the page and only the chosen one's are read.
"""

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext_lazy, pgettext_lazy

from .. import campaigns, message_templates
from ..campaign_content import CampaignRefused, check_content, media_format, url_buttons
from ..models import BotSettings, ContactAttribute, Department, Label, Recipient, Template
from ..whatsapp import validation

# Each skip reason as a sentence about `count` contacts (the review and the report); "n" is the
# number that chooses the plural, "count" the same number as the language writes it (1.234).
SKIPPED = {
    Recipient.Skip.OPTED_OUT: ngettext_lazy("%(count)s contact asked not to receive marketing messages",
                                            "%(count)s contacts asked not to receive marketing messages", "n"),
    Recipient.Skip.BLOCKED: ngettext_lazy("%(count)s contact is blocked", "%(count)s contacts are blocked", "n"),
    Recipient.Skip.INVALID: ngettext_lazy("%(count)s contact has no valid WhatsApp number",
                                          "%(count)s contacts have no valid WhatsApp number", "n"),
    Recipient.Skip.NO_OPT_IN: ngettext_lazy("%(count)s contact has no recorded opt-in",
                                            "%(count)s contacts have no recorded opt-in", "n"),
    Recipient.Skip.INCOMPLETE: ngettext_lazy("%(count)s contact lacks a value for a variable without a fallback",
                                             "%(count)s contacts lack a value for a variable without a fallback", "n"),
}
MEDIA = {"image": pgettext_lazy("media", "image"), "video": pgettext_lazy("media", "video"),
         "document": pgettext_lazy("media", "document")}
DATETIME_INPUT = "%Y-%m-%dT%H:%M"


def approved_templates():
    return Template.objects.filter(status__iexact="APPROVED").order_by("name", "language")


def skipped_sentences(counts):
    """[sentence, …] for a {reason: count} mapping, in the order of SKIPPED."""
    return [sentence % {"n": counts[reason.value], "count": formats.number_format(counts[reason.value],
                                                                                  force_grouping=True)}
            for reason, sentence in SKIPPED.items() if counts.get(reason.value)]


@dataclass
class TemplateFields:
    """One approved template's part of the form: its text (for the label) and bound fields."""

    template: Template
    body: str
    variables: list
    header: object
    buttons: list


def template_text(template, kind):
    for component in template.components if isinstance(template.components, list) else []:
        if isinstance(component, dict) and str(component.get("type", "")).lower() == kind:
            return component.get("text") or ""
    return ""


class CampaignForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120,
                           help_text=gettext_lazy("For your team only: customers never see it."))
    template = forms.ChoiceField(label=gettext_lazy("Template"))
    audience = forms.ChoiceField(label=gettext_lazy("Who receives it"), widget=forms.RadioSelect, initial="labels",
                                 choices=[("labels", gettext_lazy("Contacts with any of the labels below")),
                                          ("everyone", gettext_lazy("Every contact"))])
    labels = forms.MultipleChoiceField(label=gettext_lazy("Labels"), required=False,
                                       widget=forms.CheckboxSelectMultiple)
    last_contact_days = forms.IntegerField(
        label=gettext_lazy("Only those who wrote in the last … days"), required=False, min_value=1, max_value=3650,
        help_text=gettext_lazy("Empty: whenever they last wrote."))
    require_opt_in = forms.BooleanField(label=gettext_lazy("Only contacts with a recorded opt-in"), required=False)
    department = forms.ChoiceField(label=gettext_lazy("Replies are answered by"), required=False)
    when = forms.ChoiceField(label=gettext_lazy("When"), widget=forms.RadioSelect, initial="now",
                             choices=[("now", gettext_lazy("Now")), ("later", gettext_lazy("At a date and time"))])
    scheduled_at = forms.DateTimeField(label=gettext_lazy("Date and time"), required=False,
                                       input_formats=[DATETIME_INPUT, f"{DATETIME_INPUT}:%S"],
                                       widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                  format=DATETIME_INPUT))
    window_start = forms.TimeField(label=gettext_lazy("Send from"), required=False,
                                   widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    window_end = forms.TimeField(label=gettext_lazy("Send until"), required=False,
                                 widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.templates = {str(template.pk): template for template in approved_templates()}
        self.fields["template"].choices = [("", _("Choose a template"))] + [
            (pk, f"{template.name} ({template.language}) · {template.category.lower()}")
            for pk, template in self.templates.items()]
        self.fields["labels"].choices = [(label.name, label.name) for label in Label.objects.all()]
        self.fields["department"].choices = [("", _("The bot, as any message"))] + [
            (str(department.pk), department.name) for department in Department.objects.filter(is_active=True)]
        if BotSettings.load().campaigns_require_opt_in:
            # The business asks it of every campaign (chatbot/campaigns.py reads the same setting).
            field = self.fields["require_opt_in"]
            field.initial, field.disabled = True, True
            field.help_text = _("Every campaign requires it: see the settings (Bot texts → Campaigns).")
        self.attributes = list(ContactAttribute.objects.all())
        for attribute in self.attributes:
            self.fields[f"attr-{attribute.key}"] = forms.CharField(label=attribute.name, required=False,
                                                                   max_length=255)
        for pk, template in self.templates.items():
            for kind, name in message_templates.placeholders(template):
                key = name if kind == "body" else f"header.{name}"
                label = (_("Header {{%(name)s}}") if kind == "header" else "{{%(name)s}}") % {"name": name}
                self.fields[f"var-{pk}-{key}"] = forms.CharField(label=label, required=False, max_length=1024)
            if media_format(template):
                self.fields[f"header-{pk}"] = forms.CharField(
                    label=_("Link to the header's %(kind)s") % {"kind": MEDIA[media_format(template)]}, required=False,
                    max_length=2000, help_text=_("An https:// address Meta can download, or an uploaded media id."))
            for index in url_buttons(template):
                self.fields[f"button-{pk}-{index}"] = forms.CharField(
                    label=_("End of the link of button %(number)s") % {"number": int(index) + 1}, required=False,
                    max_length=1024)

    # --- Reading what was typed ------------------------------------------------------------

    @classmethod
    def editing(cls, data):
        """An unbound form showing `data` again (the review's "Edit" button): no errors yet."""
        form = cls()
        form.initial = {name: data.getlist(name) if name == "labels" else data.get(name)
                        for name in form.fields if name in data}
        return form

    def template_fields(self):
        """[TemplateFields, …], one per approved template, with their bound fields."""
        groups = []
        for pk, template in self.templates.items():
            groups.append(TemplateFields(
                template=template, body=template_text(template, "body"),
                variables=[self[name] for name in self.fields if name.startswith(f"var-{pk}-")],
                header=self[f"header-{pk}"] if f"header-{pk}" in self.fields else None,
                buttons=[self[name] for name in self.fields if name.startswith(f"button-{pk}-")]))
        return groups

    def attribute_fields(self):
        return [self[f"attr-{attribute.key}"] for attribute in self.attributes]

    def add_error(self, field, error):
        super().add_error(field, error)
        # Screen readers read the message with the field (_campaign_field.html gives it this id).
        for name in self.errors:
            if name in self.fields:
                bound = self[name]
                described = [f"{bound.auto_id}_error"] + ([f"{bound.auto_id}_helptext"] if bound.help_text else [])
                self.fields[name].widget.attrs.update({"aria-describedby": " ".join(described),
                                                       "aria-invalid": "true"})

    def clean(self):
        data = super().clean()
        if data.get("when") == "later":
            moment = data.get("scheduled_at")
            if moment is None and "scheduled_at" not in self.errors:
                self.add_error("scheduled_at", _("Choose the date and time, or send now."))
            elif moment is not None and moment <= timezone.now():
                self.add_error("scheduled_at", _("That moment has passed: choose a later one, or send now."))
        start, end = data.get("window_start"), data.get("window_end")
        if (start is None) != (end is None) or (start is not None and start == end):
            self.add_error("window_end", _("A sending window needs a start and a different end, e.g. 08:00 to "
                                           "20:00; leave both empty to send at any hour."))
        if data.get("audience") == "labels" and not data.get("labels"):
            self.add_error("labels", _("Tick at least one label, or choose every contact."))
        return data

    @property
    def chosen(self):
        return self.templates[self.cleaned_data["template"]]

    def audience_data(self):
        data = self.cleaned_data
        audience = {"everyone": True} if data["audience"] == "everyone" else {"labels": data["labels"]}
        attributes = {attribute.key: data[f"attr-{attribute.key}"].strip() for attribute in self.attributes
                      if data.get(f"attr-{attribute.key}", "").strip()}
        if attributes:
            audience["attributes"] = attributes
        if data.get("last_contact_days"):
            audience["last_contact_days"] = data["last_contact_days"]
        if data.get("require_opt_in"):
            audience["require_opt_in"] = True
        return audience

    def content(self):
        """The template's content as `campaigns.plan` takes it: variables, header and buttons."""
        pk, data = self.cleaned_data["template"], self.cleaned_data
        prefix = f"var-{pk}-"
        variables = {name[len(prefix):]: data.get(name, "") for name in self.fields if name.startswith(prefix)}
        header = None
        if f"header-{pk}" in self.fields and data.get(f"header-{pk}", "").strip():
            source = data[f"header-{pk}"].strip()
            header = {"link": source} if "://" in source else {"id": source}
        buttons = {name.rsplit("-", 1)[1]: data.get(name, "") for name in self.fields
                   if name.startswith(f"button-{pk}-")}
        return {"variables": variables, "header": header, "buttons": buttons}

    def refused(self, refusal):
        """Put `refusal` (CampaignRefused) beside the field it names; a general one above the form."""
        pk, where = self.cleaned_data.get("template", ""), refusal.field
        names = {"name": "name", "template.name": "template", "audience": "audience", "audience.labels": "labels",
                 "audience.last_contact_days": "last_contact_days", "window": "window_end",
                 "header": f"header-{pk}", "variables": "template", "buttons": "template"}
        name = names.get(where)
        if where.startswith("variables."):
            name = f"var-{pk}-{where.removeprefix('variables.')}"
        elif where.startswith("buttons."):
            name = f"button-{pk}-{where.removeprefix('buttons.')}"
        elif where == "audience.attributes" and self.attributes:
            name = f"attr-{self.attributes[0].key}"
        message = refusal.message
        if name in self.fields and where and message.startswith(where):
            # "variables.1 needs a value" beside the field reads better with the field's own label.
            message = f"{self.fields[name].label}{message[len(where):]}"
        self.add_error(name if name in self.fields else None, message)

    # --- The review and the creation --------------------------------------------------------

    def submit(self, step, user):
        """Step "review": the Review; "create": the new Campaign; None when something is refused
        (each refusal is on its field)."""
        if not self.is_valid():
            # The template's fields are checked all the same, so that one round trip shows every
            # field to change.
            if self.cleaned_data.get("template") in self.templates:
                try:
                    check_content(self.chosen, **self.content())
                except CampaignRefused as refusal:
                    self.refused(refusal)
            return None
        return self.create(user) if step == "create" else self.review()

    def plan(self):
        """The campaign's plan (`campaigns.plan`), or None with the refusal on its field."""
        template = self.chosen
        try:
            return campaigns.plan(template_name=template.name, language=template.language,
                                  audience=self.audience_data(), **self.content())
        except CampaignRefused as refusal:
            self.refused(refusal)
            return None

    def review(self):
        """What the review step shows, or None (the refusal is on its field)."""
        plan = self.plan()
        if plan is None:
            return None
        return Review(plan=plan, preview=preview(plan.content.template, plan.preview),
                      skipped=skipped_sentences(plan.skipped), department=self.chosen_department(),
                      scheduled_at=self.send_at())

    def chosen_department(self):
        pk = self.cleaned_data.get("department")
        return Department.objects.filter(pk=pk).first() if pk else None

    def send_at(self):
        return self.cleaned_data["scheduled_at"] if self.cleaned_data["when"] == "later" else None

    def create(self, user):
        """The new campaign, or None (the refusal is on its field)."""
        plan = self.plan()
        if plan is None:
            return None
        if not plan.recipients:  # said as the review says it (the service's sentence is the API's)
            reasons = skipped_sentences(plan.skipped)
            self.add_error("audience", _("No one in this audience can receive it: %(reasons)s.") % {
                "reasons": "; ".join(reasons)} if reasons else _("No contact matches this audience."))
            return None
        try:
            return campaigns.create(
                name=self.cleaned_data["name"], plan=plan, scheduled_at=self.send_at(),
                window=(self.cleaned_data["window_start"], self.cleaned_data["window_end"]),
                department=self.chosen_department(), delay_ms=settings.BULK_MESSAGE_DELAY, created_by=user)
        except CampaignRefused as refusal:
            self.refused(refusal)
            return None

    def carried(self):
        """Every value typed, as (name, value) pairs: the review's hidden fields."""
        return [(name, value) for name in self.fields if name in self.data for value in self.data.getlist(name)]


@dataclass
class Review:
    plan: object
    preview: dict
    skipped: list
    department: object
    scheduled_at: object


# --- The preview: the template's texts with the first recipient's parameters ---------------------


def preview(template, message):
    """What the first recipient reads: {"header", "media", "body", "footer", "buttons"} with the
    placeholders of `template` filled from `message` (the Cloud API object), or None."""
    if message is None:
        return None
    components = message["template"].get("components", [])
    named = template.parameter_format.upper() == "NAMED"
    values = {"header": {}, "body": {}}
    media = None
    for kind in ("header", "body"):
        names = [name for part, name in message_templates.placeholders(template) if part == kind]
        texts = [parameter for component in components if component["type"] == kind
                 for parameter in component["parameters"] if parameter.get("type") == "text"]
        for name, parameter in zip(names, texts, strict=False):
            values[kind][parameter.get("parameter_name", name) if named else name] = parameter["text"]
    for component in components:
        if component["type"] == "header":
            for parameter in component["parameters"]:
                if parameter.get("type") in ("image", "video", "document"):
                    source = parameter[parameter["type"]]
                    media = {"kind": parameter["type"], "label": MEDIA[parameter["type"]],
                             "source": source.get("link") or source.get("id", "")}
    suffixes = {component["index"]: component["parameters"][0]["text"] for component in components
                if component["type"] == "button"}
    buttons = []
    for component in template.components if isinstance(template.components, list) else []:
        if isinstance(component, dict) and str(component.get("type", "")).upper() == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                if isinstance(button, dict):
                    url = str(button.get("url", ""))
                    url = validation.PLACEHOLDER.sub(lambda _match, i=str(index): suffixes.get(i, ""), url)
                    buttons.append({"text": button.get("text", ""), "url": url})

    def fill(text, kind):
        return validation.PLACEHOLDER.sub(lambda match: values[kind].get(match.group(1), match.group(0)), text)

    return {"header": fill(template_text(template, "header"), "header"), "media": media,
            "body": fill(template_text(template, "body"), "body"), "footer": template_text(template, "footer"),
            "buttons": buttons}
