"""`python manage.py whatsapp_chatbot SUBCOMMAND`: the owner's tools (design.md, "Management command").

Each subcommand is a small method; errors are one sentence on stderr and a non-zero exit.
"""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils.translation import gettext as _

from chatbot import inbound
from chatbot.models import ApiToken, WebhookEvent


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

    def handle_create_api_token(self, *, name, **options):
        if not name.strip():
            raise CommandError(_("The token needs a name."))
        token, plaintext = ApiToken.objects.create_token(name.strip())
        self.stdout.write(_("Token %(prefix)s… created for %(name)s. Copy it now; it is not shown again:")
                          % {"prefix": token.prefix, "name": token.name})
        self.stdout.write(plaintext)
