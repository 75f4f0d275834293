"""`whatsapp_chatbot webhook-endpoint add|list|remove|test` (design.md, "Event webhooks"): the
endpoints other systems receive our events at, from a terminal. The checks and the secret are
chatbot/webhook_endpoints.py's, as the settings page uses them; `test` posts as the workers do."""


from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from chatbot import event_delivery, events, webhook_endpoints
from chatbot.management.campaigns import moment, number
from chatbot.models import EventDelivery, WebhookEndpoint

OK, FAIL = "✓", "✗"


def add_parser(commands):
    """The `webhook-endpoint` subcommand's arguments, on whatsapp_chatbot's subparsers."""
    parser = commands.add_parser(
        "webhook-endpoint", help=_("Event webhooks: add, list, remove or test the endpoints other systems "
                                   "receive our events at."),
        description=_("Each event (a customer wrote, a message was read, a conversation closed…) is posted as "
                      "signed JSON to every active endpoint that wants its type."),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add", help=_("Add an endpoint; prints its signing secret on the last line."),
        description=_("Without --event the endpoint gets every type of event."),
    )
    add.add_argument("url", metavar="URL", help=_("Where the events are posted, e.g. https://example.com/webhooks."))
    add.add_argument("--event", dest="types", action="append", default=[], metavar="TYPE",
                     help=_("An event type to send (repeat for several): %(types)s.") % {
                         "types": ", ".join(events.TYPES)})
    add.add_argument("--description", default="", help=_("What the endpoint is for, e.g. the online shop."))
    actions.add_parser("list", help=_("Every endpoint: its state, event types, waiting and failed deliveries."))
    for action, text in (("remove", _("Remove an endpoint and its delivery log.")),
                         ("test", _("Post a test event to an endpoint now and show its answer."))):
        command = actions.add_parser(action, help=text)
        command.add_argument("endpoint_id", metavar="ID", help=_("The endpoint's ID (see list)."))


class WebhookEndpointCommand:
    """whatsapp_chatbot's `webhook-endpoint` subcommand (mixed into its Command)."""

    def handle_webhook_endpoint(self, *, action, **options):
        return getattr(self, f"webhook_endpoint_{action}")(**options)

    def webhook_endpoint_add(self, *, url, types, description, **options):
        # `--event a,b` as well as `--event a --event b`.
        types = [name.strip() for value in types for name in value.split(",") if name.strip()]
        try:
            webhook_endpoints.check_types(types)  # a mistyped type is told before the URL is looked up
            endpoint = webhook_endpoints.add(url, types=types, description=description)
        except webhook_endpoints.EndpointRefused as refused:
            raise CommandError(refused.message) from None
        self.stdout.write(_("Endpoint #%(id)d added: %(url)s, events: %(types)s.") % {
            "id": endpoint.pk, "url": endpoint.url, "types": described_types(endpoint)})
        self.stdout.write(_("Its signing secret (receivers check X-Hoztech-Signature with it; keep it private):"))
        self.stdout.write(endpoint.secret)

    def webhook_endpoint_list(self, **options):
        found = list(WebhookEndpoint.objects.listed().order_by("pk"))
        if not found:
            self.stdout.write(_("No event webhooks yet: add one with whatsapp_chatbot webhook-endpoint add URL."))
            return
        counts = webhook_endpoints.backlog(found)
        # Capitals, as terminal tables have them; the URL and the types last, as they may be long.
        header = [_("ID"), _("STATE"), _("PENDING"), _("FAILED"), _("LAST DELIVERY"), _("URL"), _("EVENTS")]
        rows = [[str(endpoint.pk), state(endpoint), number(counts[endpoint.pk]["pending"]),
                 number(counts[endpoint.pk]["failed"]), outcome(webhook_endpoints.last_attempt(endpoint)),
                 endpoint.url, described_types(endpoint)] for endpoint in found]
        widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
        numeric = {0, 2, 3}
        for row in [header, *rows]:
            cells = [cell.rjust(width) if column in numeric else cell.ljust(width)
                     for column, (cell, width) in enumerate(zip(row, widths, strict=True))]
            self.stdout.write("  ".join(cells).rstrip())

    def webhook_endpoint_remove(self, *, endpoint_id, **options):
        endpoint = find_endpoint(endpoint_id)
        waiting = endpoint.deliveries.filter(status=EventDelivery.Status.PENDING).count()
        webhook_endpoints.remove(endpoint)
        self.stdout.write(_("Endpoint #%(id)d removed (%(url)s).") % {"id": endpoint.pk, "url": endpoint.url}
                          + (" " + ngettext("%(n)s event waiting for it will not be sent.",
                                            "%(n)s events waiting for it will not be sent.", waiting) % {
                              "n": number(waiting)} if waiting else ""))

    def webhook_endpoint_test(self, *, endpoint_id, **options):
        endpoint = find_endpoint(endpoint_id)
        try:
            # The address as it resolves now, refused in the product's words before any connection.
            webhook_endpoints.check_url(endpoint.url)
        except webhook_endpoints.EndpointRefused as refused:
            raise CommandError(refused.message) from None
        attempt = event_delivery.test(endpoint)
        if attempt.status is not None:
            self.stdout.write(_("%(mark)s %(url)s answered %(status)d in %(ms)s ms.") % {
                "mark": OK if attempt.ok else FAIL, "url": endpoint.url, "status": attempt.status,
                "ms": number(attempt.duration_ms)})
            if attempt.answer.strip():
                self.stdout.write("  " + attempt.answer.strip().splitlines()[0][:200])
        if not endpoint.active:
            self.stdout.write(_("(The endpoint is disabled: the workers send it nothing until it is enabled.)"))
        if attempt.ok:
            return
        if attempt.status is None:
            raise CommandError(_("The test event did not reach %(url)s after %(ms)s ms: %(error)s.") % {
                "url": endpoint.url, "ms": number(attempt.duration_ms), "error": attempt.error})
        if 300 <= attempt.status < 400:
            raise CommandError(_("The test event was redirected (HTTP %(status)d); redirects are not followed: "
                                 "give the final URL.") % {"status": attempt.status})
        raise CommandError(_("The test event was refused: HTTP %(status)d (any 2xx answer accepts an event).") % {
            "status": attempt.status})


def find_endpoint(endpoint_id):
    endpoint_id = str(endpoint_id).strip()
    endpoint = WebhookEndpoint.objects.listed().filter(pk=int(endpoint_id)).first() if endpoint_id.isdigit() else None
    if endpoint is None:
        raise CommandError(_("No event webhook with ID %(id)s (the IDs are in whatsapp_chatbot webhook-endpoint "
                             "list).") % {"id": endpoint_id})
    return endpoint


def described_types(endpoint):
    return ", ".join(endpoint.events) if endpoint.events else pgettext("event types", "all")


def state(endpoint):
    if not endpoint.active:
        if endpoint.disabled_reason == WebhookEndpoint.DISABLED_FAILING:
            return _("disabled (24 h of failures)")
        return _("disabled")
    return _("failing") if endpoint.failing_since else _("active")


def outcome(row):
    """When the last attempt was and how it went: "30/11/2026 09:00 ✓ 200", "… ✗ 500", "… ✗ —"."""
    if row is None:
        return "—"
    ok = row.response_status is not None and 200 <= row.response_status < 300
    return f"{moment(row.last_attempt_at)} {OK if ok else FAIL} {row.response_status or '—'}"
