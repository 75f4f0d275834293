"""The form of the event-webhooks settings pages (`integrations`): an endpoint's URL, description
and event types. The checks are the service's (`webhook_endpoints`: the URL's address, the types);
its refusals are put on the form here, so the views only read the request and answer."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .. import events, webhook_endpoints

# What each type means to the person choosing them (design.md, "Event webhooks").
TYPE_HELP = {
    "message.received": _("a customer's message arrived"),
    "message.sent": _("a message of ours was accepted by WhatsApp"),
    "message.delivered": _("a message of ours reached the customer's phone"),
    "message.read": _("the customer read a message of ours"),
    "message.failed": _("a message of ours could not be sent"),
    "conversation.created": _("a conversation started"),
    "conversation.waiting": _("a customer is waiting for a person"),
    "conversation.assigned": _("a conversation was given to an operator"),
    "conversation.closed": _("a conversation was closed (with its satisfaction answer)"),
    "contact.opted_out": _("a contact asked not to receive marketing messages"),
    "contact.opted_in": _("a contact agreed to receive marketing messages again"),
    "campaign.finished": _("a campaign finished sending"),
}


def type_choices():
    return [(name, f"{name} — {TYPE_HELP[name]}" if name in TYPE_HELP else name) for name in events.TYPES]


class EndpointForm(forms.Form):
    # A text field, not a URLField: the service says what is wrong with an address, in one place
    # for the dashboard and the command.
    url = forms.CharField(label=_("URL"), max_length=2000, widget=forms.URLInput(attrs={"autocomplete": "off"}),
                          help_text=_("Where events are POSTed, such as https://example.com/webhooks. It must be a "
                                      "public address."))
    description = forms.CharField(label=_("Description"), max_length=200, required=False,
                                  help_text=_("What receives them (your shop, CRM, n8n…), for your team."))
    types = forms.MultipleChoiceField(label=_("Event types"), required=False, widget=forms.CheckboxSelectMultiple,
                                      help_text=_("None checked: every type, including types added later."))

    def __init__(self, *args, endpoint=None, **kwargs):
        if endpoint is not None and "initial" not in kwargs:
            kwargs["initial"] = {"url": endpoint.url, "description": endpoint.description, "types": endpoint.events}
        super().__init__(*args, **kwargs)
        self.endpoint = endpoint
        self.fields["types"].choices = type_choices()

    def save(self):
        """The endpoint added or changed, or None with the service's refusal on the URL (the types
        are checked by their choices first, so what is left to refuse is the address)."""
        if not self.is_valid():
            return None
        data = self.cleaned_data
        try:
            if self.endpoint is None:
                return webhook_endpoints.add(data["url"], types=data["types"], description=data["description"])
            return webhook_endpoints.change(self.endpoint, url=data["url"], types=data["types"],
                                            description=data["description"])
        except webhook_endpoints.EndpointRefused as refusal:
            self.add_error("url", refusal.message)
            return None
