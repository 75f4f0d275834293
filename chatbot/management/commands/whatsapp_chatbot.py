"""`python manage.py whatsapp_chatbot SUBCOMMAND`: the owner's tools (design.md, "Management command").

Each subcommand is a small method; errors are one sentence on stderr and a non-zero exit.
"""

import sys
import time
import uuid

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils.translation import gettext as _

from chatbot import api, inbound, webhook
from chatbot.models import ApiToken, Message, PhoneNumber, Session, WebhookEvent


def describe(message):
    """One line for a message in a terminal: its text, and the options of buttons and lists."""
    payload = message.payload or {}
    action = payload.get("action") or {}
    titles = [button["reply"]["title"] for button in action.get("buttons", [])]
    titles += [row["title"] for section in action.get("sections", []) for row in section.get("rows", [])]
    options = "  " + " | ".join(f"[{title}]" for title in titles) if titles else ""
    return f"{message.text}{options}"


def progress(iterable, total, label, stream=sys.stderr):
    """Yield from `iterable`, drawing a one-line progress bar on `stream` when it is a terminal."""
    interactive = stream.isatty()
    for done, item in enumerate(iterable, start=1):
        yield item
        if interactive:
            filled = int(30 * done / max(total, 1))
            stream.write(f"\r{label} [{'#' * filled}{' ' * (30 - filled)}] {done}/{total}")
            stream.flush()
    if interactive and total:
        stream.write("\n")


class Command(BaseCommand):
    help = _("Operate the WhatsApp chatbot: see the subcommands below.")

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

        reprocess = commands.add_parser(
            "reprocess", help=_("Apply stored webhook events again (after a fix)."),
            description=_("Without arguments: every event that failed or had parts not understood."),
        )
        reprocess.add_argument("ids", nargs="*", type=int, metavar="ID", help=_("Webhook event IDs."))
        reprocess.add_argument("--failed", action="store_true", help=_("Only the events that failed to apply."))

        token = commands.add_parser(
            "create-api-token", help=_("Create a bearer token for the send and read APIs (shown once)."),
        )
        token.add_argument("name", help=_("Who uses the token, e.g. ERP."))

        simulate = commands.add_parser(
            "simulate", help=_("Play the customer: post a signed Meta-shaped message to the webhook."),
            description=_("Needs the product running (make run); prints the bot's answers."),
        )
        simulate.add_argument("text", help=_("What the customer writes."))
        simulate.add_argument("--from", dest="wa_id", default="5511999990000", help=_("The customer's number."))
        simulate.add_argument("--name", default="Cliente Teste", help=_("The customer's profile name."))
        simulate.add_argument("--url", default="http://127.0.0.1:8000/chatbot/webhook/", help=_("The webhook URL."))
        simulate.add_argument("--wait", type=float, default=5, help=_("Seconds to wait for the answers."))

        send = commands.add_parser("send", help=_("Send a text message (only inside the 24-hour window)."))
        send.add_argument("to", help=_("The customer's number with country code."))
        send.add_argument("text", help=_("The message."))

    def handle(self, *args, subcommand, **options):
        handler = getattr(self, "handle_" + subcommand.replace("-", "_"))
        return handler(**options)

    def handle_reprocess(self, *, ids, failed, **options):
        events = WebhookEvent.objects.order_by("pk")
        if ids:
            events = events.filter(pk__in=ids)
            missing = set(ids) - set(events.values_list("pk", flat=True))
            if missing:
                ids_text = ", ".join(map(str, sorted(missing)))
                raise CommandError(_("No webhook event with ID %(ids)s.") % {"ids": ids_text})
        elif failed:
            events = events.filter(result=WebhookEvent.Result.FAILED)
        else:
            events = events.filter(Q(result=WebhookEvent.Result.FAILED) | Q(summary__unsupported__gte=1))
        total = events.count()
        outcome = {"processed": 0, "failed": 0}
        for event in progress(events.iterator(), total, _("Reprocessing")):
            outcome[inbound.reprocess(event).result] += 1
        self.stdout.write(
            _("%(total)d events reprocessed: %(processed)d processed, %(failed)d failed.")
            % {"total": total, **outcome}
        )
        if outcome["failed"]:
            raise CommandError(_("Some events still fail; see their error in the admin (Webhook events)."))

    def handle_simulate(self, *, text, wa_id, name, url, wait, **options):
        if not settings.WHATSAPP_APP_SECRET:
            raise CommandError(_("WHATSAPP_APP_SECRET is not set, so the webhook refuses every message."))
        wamid = f"wamid.SIMULATED{uuid.uuid4().hex}"
        body = webhook.customer_message(phone_number_id=PhoneNumber.objects.default().phone_number_id,
                                        wa_id=wa_id, name=name, wamid=wamid, text=text)
        try:
            response = requests.post(url, data=body, timeout=10, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": webhook.sign(body)})
        except requests.RequestException:
            raise CommandError(_("Nothing answers at %(url)s: start the product first (make run).") % {"url": url}) \
                from None
        if response.status_code != 200:
            raise CommandError(_("The webhook answered %(status)s: %(reason)s") % {
                "status": response.status_code, "reason": response.text[:200]})
        self.stdout.write(f"{name}: {text}")
        for reply in self.bot_replies(wamid, wait):
            self.stdout.write(_("bot: %(text)s") % {"text": reply})

    def bot_replies(self, wamid, wait):
        """The bot's answers to the message `wamid`, as they are queued (up to `wait` seconds)."""
        deadline = time.monotonic() + wait
        seen, quiet_since, message = [], None, None
        # Until the deadline, or until a second passes with no new answer after the first.
        while time.monotonic() < deadline and (quiet_since is None or time.monotonic() - quiet_since < 1.0):
            message = Message.objects.filter(wamid=wamid).exclude(session=None).first()
            if message:
                replies = Message.objects.filter(session=message.session, direction=Message.Direction.OUT,
                                                 created_at__gte=message.created_at).order_by("pk")
                for reply in replies[len(seen):]:
                    seen.append(reply)
                    quiet_since = time.monotonic()
                    yield describe(reply)
            time.sleep(0.1)
        if seen:
            return
        if message and message.session.status != Session.Status.BOT:
            self.stdout.write(_("(The conversation is with a person: the bot does not answer.)"))
        else:
            self.stderr.write(_("No answer yet: is the worker running (python manage.py db_worker)?"))

    def handle_send(self, *, to, text, **options):
        try:
            answer = api.queue_message(None, {"to": to, "type": "text", "text": {"body": text}})
        except api.ApiError as error:
            raise CommandError(error.message) from None
        self.stdout.write(_("Message %(id)s queued to %(to)s.") % answer)

    def handle_create_api_token(self, *, name, **options):
        if not name.strip():
            raise CommandError(_("The token needs a name."))
        token, plaintext = ApiToken.objects.create_token(name.strip())
        self.stdout.write(_("Token %(prefix)s… created for %(name)s. Copy it now; it is not shown again:")
                          % {"prefix": token.prefix, "name": token.name})
        self.stdout.write(plaintext)
