"""What a campaign sends each recipient: an approved template, its parameters filled from the
contact's name and attributes (`{name|cliente}`, `{attr:pedido}`), a header's media, the suffixes
of its link buttons; checked against the synced template before anything is queued, since Meta
would fail a mismatch with 132000 (cloud-api.md §12)."""

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from . import message_templates
from .models import Template

# {name}, {first_name}, {wa_id}, {attr:pedido}, each with an optional fallback: {name|cliente}.
EXPRESSION = re.compile(r"\{([a-z_]+(?::[a-z0-9_-]+)?)(?:\|([^{}]*))?\}")
FIELDS = {"name", "first_name", "wa_id"}


class CampaignRefused(Exception):
    """A campaign that cannot be created as asked: a sentence for people and the field at fault."""

    def __init__(self, message, field=""):
        super().__init__(message)
        self.message, self.field = str(message), field


# --- The content -----------------------------------------------------------------------------


def value(expression, contact):
    """One parameter for `contact`: the expression with {name}, {attr:pedido}… filled in, each by
    its fallback when the contact has nothing; one line, as Meta takes parameters."""

    def fill(match):
        key, fallback = match.group(1), (match.group(2) or "").strip()
        if key.startswith("attr:"):
            found = (contact.attributes or {}).get(key[5:]) if isinstance(contact.attributes, dict) else None
        elif key == "first_name":
            found = contact.name.split()[0] if contact.name.strip() else ""
        else:
            found = getattr(contact, key)
        found = "" if found is None else str(found).strip()
        return found or fallback

    return " ".join(EXPRESSION.sub(fill, expression).split())


def check_expression(expression, where):
    if not isinstance(expression, str) or not expression.strip():
        raise CampaignRefused(_("%(field)s needs a value, e.g. {name|cliente}.") % {"field": where}, where)
    for match in EXPRESSION.finditer(expression):
        key = match.group(1)
        if key not in FIELDS and not key.startswith("attr:"):
            raise CampaignRefused(_("%(field)s: unknown {%(key)s}; use {name}, {first_name}, {wa_id} or "
                                    "{attr:key}.") % {"field": where, "key": key}, where)
    if len(expression) > 1024:
        raise CampaignRefused(_("%(field)s is too long.") % {"field": where}, where)


@dataclass
class Content:
    """What each recipient is sent: the template with its parameters' expressions."""

    template: Template
    variables: dict
    header: dict
    buttons: dict

    @property
    def marketing(self):
        return self.template.category.upper() == "MARKETING"

    def message(self, contact):
        """The Cloud API message object for `contact` (without `to`)."""
        named = self.template.parameter_format.upper() == "NAMED"
        components = []
        if self.header:
            components.append({"type": "header", "parameters": [self.header]})
        by_kind = {}
        for kind, name in message_templates.placeholders(self.template):
            key = name if kind == "body" else f"header.{name}"
            parameter = {"type": "text", "text": value(self.variables[key], contact)}
            if named:
                parameter["parameter_name"] = name
            by_kind.setdefault(kind, []).append(parameter)
        components += [{"type": kind, "parameters": parameters} for kind, parameters in by_kind.items()]
        for index, expression in sorted(self.buttons.items()):
            components.append({"type": "button", "sub_type": "url", "index": str(index),
                               "parameters": [{"type": "text", "text": value(expression, contact)}]})
        body = {"name": self.template.name, "language": {"code": self.template.language}}
        if components:
            body["components"] = components
        return {"type": "template", "template": body}

    def incomplete(self, contact):
        """Whether a parameter would be empty for `contact` (Meta refuses an empty one)."""
        return any(not value(expression, contact) for expression in (*self.variables.values(), *self.buttons.values()))

    @classmethod
    def of(cls, campaign):
        template = campaign.template or Template(name=campaign.template_name, language=campaign.template_language,
                                                 category=campaign.template_category)
        return cls(template, campaign.variables, campaign.header, campaign.buttons)


def approved_template(name, language):
    template = Template.objects.filter(name=name, language=language).first()
    if template is None or template.status.upper() != "APPROVED":
        raise CampaignRefused(_("No approved template %(name)s (%(language)s): sync the templates or choose "
                                "another.") % {"name": name, "language": language}, "template.name")
    return template


def check_content(template, variables, header, buttons):
    """The content for `template`, as Meta will take it; CampaignRefused says what does not fit."""
    variables, buttons = variables or {}, buttons or {}
    if not isinstance(variables, dict):
        raise CampaignRefused(_("variables must map each placeholder to a value."), "variables")
    if not isinstance(buttons, dict):
        raise CampaignRefused(_("buttons must map each link button's index to its suffix."), "buttons")
    buttons = {str(key): expression for key, expression in buttons.items()}
    expected = [name if kind == "body" else f"header.{name}"
                for kind, name in message_templates.placeholders(template)]
    missing, extra = [key for key in expected if key not in variables], sorted(set(variables) - set(expected))
    if missing or extra:
        raise CampaignRefused(_("The template %(name)s takes %(expected)s; got %(given)s.") % {
            "name": template.name, "expected": ", ".join(f"{{{{{key}}}}}" for key in expected) or _("no variables"),
            "given": ", ".join(f"{{{{{key}}}}}" for key in variables) or _("none")}, "variables")
    for key, expression in variables.items():
        check_expression(expression, f"variables.{key}")
    return Content(template, variables, check_header(template, header), check_buttons(template, buttons))


def media_format(template):
    for component in template.components if isinstance(template.components, list) else []:
        if isinstance(component, dict) and str(component.get("type", "")).upper() == "HEADER":
            kind = str(component.get("format", "TEXT")).lower()
            return kind if kind in ("image", "video", "document") else ""
    return ""


def check_header(template, header):
    kind = media_format(template)
    if not kind:
        if header:
            raise CampaignRefused(_("The template has no media header."), "header")
        return {}
    source = header.get(kind, header) if isinstance(header, dict) else None
    link, media_id = (source.get("link"), source.get("id")) if isinstance(source, dict) else (None, None)
    if isinstance(link, str) and re.match(r"https://\S+$", link):
        return {"type": kind, kind: {"link": link}}
    if isinstance(media_id, str) and media_id.strip():
        return {"type": kind, kind: {"id": media_id.strip()}}
    raise CampaignRefused(_("The template's header is a %(kind)s: give its https:// link or an uploaded media "
                            "id.") % {"kind": kind}, "header")


def url_buttons(template):
    """The indexes of the template's URL buttons whose address ends in a placeholder."""
    indexes = []
    for component in template.components if isinstance(template.components, list) else []:
        if isinstance(component, dict) and str(component.get("type", "")).upper() == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                if isinstance(button, dict) and button.get("type", "").upper() == "URL" and "{{" in str(
                        button.get("url", "")):
                    indexes.append(str(index))
    return indexes


def check_buttons(template, buttons):
    expected = url_buttons(template)
    if sorted(buttons) != expected:
        raise CampaignRefused(_("The template's link buttons need a suffix each: %(indexes)s.") % {
            "indexes": ", ".join(expected) or _("none")}, "buttons")
    for index, expression in buttons.items():
        check_expression(expression, f"buttons.{index}")
    return buttons
