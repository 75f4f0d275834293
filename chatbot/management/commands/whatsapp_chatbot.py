"""`python manage.py whatsapp_chatbot SUBCOMMAND`: the owner's tools (design.md, "Management command").

Each subcommand is a small method (`campaign`'s are in chatbot/management/campaigns.py,
`webhook-endpoint`'s in chatbot/management/webhook_endpoints.py); errors are one sentence on stderr
and a non-zero exit.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import gettext, gettext_noop, ngettext
from django.utils.translation import gettext as _

from chatbot import contacts, diagnostics, imports, inbound, lgpd, message_templates, sending
from chatbot.management import campaigns, webhook_endpoints
from chatbot.models import ApiToken, Message, PhoneNumber, Scope, Session, Template, WebhookEvent
from chatbot.whatsapp import validation, webhook

OK, FAIL = "✓", "✗"
DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8000/chatbot/webhook/"
# `make run` writes where it serves (its PORT), so that `simulate` finds it.
RUN_URL_FILE = settings.BASE_DIR / ".run-url"


def running_url():
    """The webhook of the product `make run` started, or the default address."""
    try:
        base = RUN_URL_FILE.read_text().strip()
    except OSError:
        return DEFAULT_WEBHOOK_URL
    return base.rstrip("/") + "/chatbot/webhook/" if base.startswith(("http://", "https://")) else DEFAULT_WEBHOOK_URL


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


# argparse's own messages, for makemessages: the command has argparse write them through Django's
# gettext (`create_parser`), so that a mistyped argument is told in the product's language.
ARGPARSE_MESSAGES = [
    gettext_noop("usage: "), gettext_noop("%(prog)s: error: %(message)s\n"),
    gettext_noop("the following arguments are required: %s"), gettext_noop("unrecognized arguments: %s"),
    gettext_noop("argument %(argument_name)s: %(message)s"),
    gettext_noop("invalid choice: %(value)r (choose from %(choices)s)"),
    gettext_noop("invalid %(type)s value: %(value)r"),
    gettext_noop("expected one argument"), gettext_noop("ambiguous option: %(option)s could match %(matches)s"),
    gettext_noop("show this help message and exit"), gettext_noop("positional arguments"), gettext_noop("options"),
    gettext_noop("unknown parser %(parser_name)r (choices: %(choices)s)"),
    gettext_noop("expected at least one argument"),
]


class Command(campaigns.CampaignCommand, webhook_endpoints.WebhookEndpointCommand, BaseCommand):
    help = _("Operate the WhatsApp chatbot: see the subcommands below.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        argparse._, argparse.ngettext = gettext, ngettext
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

        reprocess = commands.add_parser(
            "reprocess", help=_("Apply stored webhook events again (after a fix)."),
            description=_("Without arguments: every event that failed or had parts not understood."),
        )
        reprocess.add_argument("ids", nargs="*", type=int, metavar="ID", help=_("Webhook event IDs."))
        reprocess.add_argument("--failed", action="store_true", help=_("Only the events that failed to apply."))

        token = commands.add_parser(
            "create-api-token", help=_("Create a bearer token for the HTTP API (shown once)."),
            description=_("Without --scope the token may send and read messages."),
        )
        token.add_argument("name", help=_("Who uses the token, e.g. ERP."))
        token.add_argument("--scope", dest="scopes", action="append", choices=Scope.values, metavar="SCOPE",
                           help=_("What the token may do: %(scopes)s (repeat for several).") % {
                               "scopes": ", ".join(Scope.values)})

        simulate = commands.add_parser(
            "simulate", help=_("Play the customer: post a signed Meta-shaped message to the webhook."),
            description=_("Needs the product running (make run); prints the bot's answers."),
        )
        simulate.add_argument("text", help=_("What the customer writes."))
        simulate.add_argument("--from", dest="wa_id", default="5511999990000", help=_("The customer's number."))
        simulate.add_argument("--name", default="Cliente Teste", help=_("The customer's profile name."))
        simulate.add_argument("--url", default=None,
                              help=_("The webhook URL (default: where make run serves, else %(url)s).") % {
                                  "url": DEFAULT_WEBHOOK_URL})
        simulate.add_argument("--wait", type=float, default=5, help=_("Seconds to wait for the answers."))

        send = commands.add_parser("send", help=_("Send a text message (only inside the 24-hour window)."))
        send.add_argument("to", help=_("The customer's number with country code."))
        send.add_argument("text", help=_("The message."))

        status = commands.add_parser(
            "status", help=_("Configuration, database, counts, queue and last webhook at a glance."),
            description=_("Secrets are shown only as set or missing. Exits 1 when the database is down."),
        )
        status.add_argument("--json", dest="as_json", action="store_true",
                            help=_("Print one JSON document instead of text."))

        commands.add_parser(
            "check", help=_("Self-test against Meta: token, number, subscribed app, templates, webhook secret."),
            description=_("One line per check with what to do when it fails; exits 1 if any check fails."),
        )

        commands.add_parser(
            "sync-templates", help=_("Copy every message template of the WhatsApp account from Meta."),
            description=_("Templates no longer at Meta are kept, marked DELETED."),
        )

        purge = commands.add_parser(
            "purge", help=_("Delete messages, media files, raw webhooks and finished tasks past the retention."),
            description=_("Safe to run daily from cron: works in small batches next to live traffic."),
        )
        purge.add_argument("--days", type=positive_int, default=None, metavar="N",
                           help=_("Keep the last N days (default: STORE_MESSAGE_UP_TO)."))
        purge.add_argument("--batch", type=positive_int, default=lgpd.BATCH, metavar="ROWS",
                           help=_("Rows deleted per transaction."))

        export = commands.add_parser(
            "export-contact", help=_("Print everything kept about a contact as JSON (LGPD data portability)."),
        )
        export.add_argument("wa_id", metavar="WA_ID", help=_("The contact's number (or business-scoped user ID)."))

        anonymize = commands.add_parser(
            "anonymize-contact", help=_("Erase a contact's personal data for good (LGPD)."),
            description=_("Name, number, message texts and media files are erased; counts are kept. "
                          "Irreversible: asks for confirmation unless --yes."),
        )
        anonymize.add_argument("wa_id", metavar="WA_ID", help=_("The contact's number (or business-scoped user ID)."))
        anonymize.add_argument("--yes", "--no-input", "--noinput", dest="yes", action="store_true",
                               help=_("Do not ask for confirmation."))

        contacts_import = commands.add_parser(
            "import-contacts", help=_("Import contacts from a CSV file (the audiences of campaigns)."),
            description=_("A header row with a phone column (telefone, phone, wa_id or celular); nome, etiquetas, "
                          "opt_in and opt_in_em if you have them, and any other column as an attribute. Comma or "
                          "semicolon, UTF-8 or Latin-1 as Excel saves it. Importing the same file again changes "
                          "nothing."),
        )
        contacts_import.add_argument("file", metavar="FILE.csv", help=_("The CSV file."))
        contacts_import.add_argument("--label", default="", help=_("A label put on every contact of the file."))

        campaigns.add_parser(commands)
        webhook_endpoints.add_parser(commands)

    def handle(self, *args, subcommand, **options):
        handler = getattr(self, "handle_" + subcommand.replace("-", "_"))
        try:
            return handler(**options)
        except DatabaseError as error:
            raise CommandError(_("The database does not answer: %(error)s") % {"error": first_line(error)}) \
                from None

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
        self.stdout.write(_("%(total)s: %(processed)s, %(failed)s.") % {
            "total": ngettext("%(n)d event reprocessed", "%(n)d events reprocessed", total) % {"n": total},
            "processed": ngettext("%(n)d applied", "%(n)d applied", outcome["processed"]) % {
                "n": outcome["processed"]},
            "failed": ngettext("%(n)d failed", "%(n)d failed", outcome["failed"]) % {"n": outcome["failed"]}})
        if outcome["failed"]:
            raise CommandError(_("Some events still fail; see their error in the admin (Webhook events)."))

    def handle_simulate(self, *, text, wa_id, name, url, wait, **options):
        if not settings.WHATSAPP_APP_SECRET:
            raise CommandError(_("WHATSAPP_APP_SECRET is not set, so the webhook refuses every message."))
        try:
            wa_id = validation.recipient(wa_id, field="--from")
        except validation.InvalidMessage as error:
            raise CommandError(error.message) from None
        if not wa_id.isdigit():
            raise CommandError(_("--from must be the customer's phone number with country code, e.g. 5511987654321."))
        url = url or running_url()
        wamid = f"wamid.SIMULATED{uuid.uuid4().hex}"
        body = webhook.customer_message(phone_number_id=PhoneNumber.objects.default().phone_number_id,
                                        wa_id=wa_id, name=name, wamid=wamid, text=text)
        if not url.startswith(("http://", "https://")):
            raise CommandError(_("--url must be an http:// or https:// address."))
        request = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310 (checked above)
            "Content-Type": "application/json", "X-Hub-Signature-256": webhook.sign(body)})
        try:
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                pass
        except urllib.error.HTTPError as error:
            raise CommandError(_("The webhook answered %(status)s: %(reason)s") % {
                "status": error.code, "reason": error.read()[:200].decode(errors="replace")}) from None
        except (OSError, ValueError):
            raise CommandError(_("Nothing answers at %(url)s: start the product first (make run), or say where it "
                                 "runs with --url.") % {"url": url}) from None
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
            message = sending.check({"to": to, "type": "text", "text": {"body": text}})
            row = sending.submit(message, source=Message.Source.API)
        except sending.SendRefused as refused:
            raise CommandError(refused.message) from None
        self.stdout.write(_("Message %(id)s queued to %(to)s.") % {"id": row.pk, "to": message["to"]})

    def handle_create_api_token(self, *, name, scopes, **options):
        if not name.strip():
            raise CommandError(_("The token needs a name."))
        token, plaintext = ApiToken.objects.create_token(name.strip(), scopes=scopes)
        self.stdout.write(_("Token %(prefix)s… created for %(name)s, scopes: %(scopes)s. Copy it now; it is not "
                            "shown again:") % {"prefix": token.prefix, "name": token.name,
                                               "scopes": ", ".join(token.scopes)})
        self.stdout.write(plaintext)

    # --- status ----------------------------------------------------------------------------------

    def handle_status(self, *, as_json, **options):
        document = diagnostics.status_document()
        if as_json:
            self.stdout.write(dumps(document))
        else:
            self.write_status(document)
        if document["status"] == "down":
            raise CommandError(_("The database does not answer."), returncode=1)

    def write_status(self, document):
        write = self.stdout.write
        write(_("HOZ TECH WhatsApp chatbot %(version)s: %(status)s") % {
            "version": document["version"], "status": document["status"]})
        if document["mode"] == "sandbox":
            write(_("Mode: sandbox (no WHATSAPP_ACCESS_TOKEN): messages go through the pipeline, nothing "
                    "leaves this machine."))
        else:
            write(_("Mode: live"))
        write(_("Configuration:"))
        shown = {"set": _("set"), "missing": _("missing")}
        for name, value in document["configuration"].items():
            write(f"  {name:<30} {shown.get(value, value)}")
        database = document["database"]
        if database["ok"]:
            write(_("Database: ok, %(engine)s %(name)s (%(latency)s ms)") % {
                "engine": database["engine"], "name": database["name"], "latency": database["latency_ms"]})
        else:
            write(_("Database: DOWN (%(engine)s %(name)s)") % database)
            return
        counts = document["counts"]
        parts = [
            ngettext("%(n)d contact", "%(n)d contacts", counts["contacts"]) % {"n": counts["contacts"]},
            ngettext("%(n)d open conversation (%(waiting)d waiting)", "%(n)d open conversations (%(waiting)d waiting)",
                     counts["sessions_open"]) % {"n": counts["sessions_open"], "waiting": counts["sessions_waiting"]},
            ngettext("%(n)d message (%(recent)d in 24 h, %(failed)d failed)",
                     "%(n)d messages (%(recent)d in 24 h, %(failed)d failed)", counts["messages"]) % {
                "n": counts["messages"], "recent": counts["messages_24h"], "failed": counts["failed_24h"]},
            ngettext("%(n)d template", "%(n)d templates", counts["templates"]) % {"n": counts["templates"]},
            ngettext("%(n)d API token", "%(n)d API tokens", counts["api_tokens"]) % {"n": counts["api_tokens"]},
        ]
        write(_("Counts: %(counts)s") % {"counts": ", ".join(parts)})
        if counts["event_endpoints"] or counts["event_endpoints_disabled"]:
            write(_("Event webhooks: %(active)s; %(disabled)s; %(failed)s") % {
                "active": ngettext("%(n)d endpoint active", "%(n)d endpoints active", counts["event_endpoints"]) % {
                    "n": counts["event_endpoints"]},
                "disabled": ngettext("%(n)d disabled after 24 h of failures", "%(n)d disabled after 24 h of failures",
                                     counts["event_endpoints_disabled"]) % {"n": counts["event_endpoints_disabled"]},
                "failed": ngettext("%(n)d event given up in 24 h", "%(n)d events given up in 24 h",
                                   counts["event_deliveries_failed_24h"]) % {
                    "n": counts["event_deliveries_failed_24h"]}})
        queue, worker, hook = document["queue"], document["worker"], document["webhook"]
        write(_("Queue: %(pending)d pending, oldest %(oldest_pending_s)s s") % queue
              + ("" if queue["ok"] else "  " + _("(workers are not keeping up: is db_worker running?)")))
        write(_("Worker: last seen %(when)s") % {"when": local(worker["last_seen"])}
              + ("" if worker["ok"] else "  " + _("(start one: python manage.py db_worker)")))
        write(_("Last webhook: %(when)s; %(failed)s") % {
            "when": local(hook["last_received_at"]),
            "failed": ngettext("%(n)d failed in 24 h", "%(n)d failed in 24 h", hook["failed_last_24h"]) % {
                "n": hook["failed_last_24h"]}})
        whatsapp = document["whatsapp"]
        tokens = {"ok": _("accepted by Meta"), "invalid": _("refused by Meta"), "unknown": _("not checked yet")}
        write(_("WhatsApp: token %(token)s") % {"token": tokens.get(whatsapp["token"], whatsapp["token"])})
        for number in whatsapp["numbers"]:
            write("  " + _("number %(phone_number_id)s: quality %(quality)s, messaging limit %(limit)s, "
                           "checked %(when)s") % {
                "phone_number_id": number["phone_number_id"], "quality": number["quality_rating"] or "?",
                "limit": number["messaging_limit"] or "?", "when": local(number["checked_at"])})

    # --- check -----------------------------------------------------------------------------------

    def handle_check(self, **options):
        results = list(diagnostics.self_test())
        for ok, text in results:
            self.stdout.write(f"{OK if ok else FAIL} {text}")
        failed = sum(1 for ok, _text in results if not ok)
        if failed:
            raise CommandError(ngettext("%(failed)d of %(total)d checks failed.",
                                        "%(failed)d of %(total)d checks failed.", failed) % {
                "failed": failed, "total": len(results)})

    # --- templates, retention, LGPD --------------------------------------------------------------

    def handle_sync_templates(self, **options):
        try:
            count = message_templates.sync(progress=progress)
        except message_templates.SyncError as error:
            raise CommandError(str(error)) from None
        gone = Template.objects.filter(status=message_templates.GONE).count()
        self.stdout.write(ngettext("%(count)d template synced from Meta (%(gone)d marked DELETED).",
                                   "%(count)d templates synced from Meta (%(gone)d marked DELETED).", count) % {
            "count": count, "gone": gone})

    def handle_purge(self, *, days, batch, **options):
        labels = {"messages": _("Messages"), "webhook_events": _("Webhook events"), "tasks": _("Finished tasks"),
                  "pending_statuses": _("Pending statuses"), "idempotency_keys": _("Idempotency keys"),
                  "event_deliveries": _("Event deliveries")}
        counts = lgpd.purge(days, batch=batch,
                            progress=lambda items, total, label: progress(items, total, labels.get(label, label)))
        days = settings.STORE_MESSAGE_UP_TO if days is None else days
        parts = [
            ngettext("%(n)d message", "%(n)d messages", counts["messages"]) % {"n": counts["messages"]},
            ngettext("%(n)d media file", "%(n)d media files", counts["media_files"]) % {"n": counts["media_files"]},
            ngettext("%(n)d webhook event", "%(n)d webhook events", counts["webhook_events"]) % {
                "n": counts["webhook_events"]},
            ngettext("%(n)d finished task", "%(n)d finished tasks", counts["tasks"]) % {"n": counts["tasks"]},
            ngettext("%(n)d pending status", "%(n)d pending statuses", counts["pending_statuses"]) % {
                "n": counts["pending_statuses"]},
            ngettext("%(n)d idempotency key", "%(n)d idempotency keys", counts["idempotency_keys"]) % {
                "n": counts["idempotency_keys"]},
            ngettext("%(n)d event delivery", "%(n)d event deliveries", counts["event_deliveries"]) % {
                "n": counts["event_deliveries"]},
        ]
        self.stdout.write(ngettext("Purged what is older than %(days)d day: %(what)s; %(sessions)s.",
                                   "Purged what is older than %(days)d days: %(what)s; %(sessions)s.", days) % {
            "days": days, "what": ", ".join(parts),
            "sessions": ngettext("%(n)d closed conversation emptied", "%(n)d closed conversations emptied",
                                 counts["sessions"]) % {"n": counts["sessions"]}})

    def handle_import_contacts(self, *, file, label, **options):
        try:
            data = Path(file).read_bytes()
        except OSError as error:
            raise CommandError(_("Cannot read %(file)s: %(error)s.") % {"file": file, "error": error.strerror}) \
                from None
        try:
            report = imports.import_contacts(data, label=label.strip()[:40], progress=progress)
        except imports.ImportRefused as refused:
            raise CommandError(str(refused)) from None
        self.stdout.write(_("New: %(new)d · updated: %(updated)d · unchanged: %(unchanged)d · lines refused: "
                            "%(refused)d") % {"new": report.imported, "updated": report.updated,
                                                   "unchanged": report.unchanged, "refused": len(report.refused)})
        if report.still_opted_out:
            self.stdout.write(ngettext("%(n)d contact had opted out of marketing and stays opted out.",
                                       "%(n)d contacts had opted out of marketing and stay opted out.",
                                       report.still_opted_out) % {"n": report.still_opted_out})
        for line, reason in report.refused[:imports.REFUSED_SHOWN]:
            self.stdout.write(_("  line %(line)d: %(reason)s") % {"line": line, "reason": reason})
        if len(report.refused) > imports.REFUSED_SHOWN:
            self.stdout.write(_("  … and %(n)d more.") % {"n": len(report.refused) - imports.REFUSED_SHOWN})
        if report.refused and not (report.imported or report.updated or report.unchanged):
            raise CommandError(_("No line could be imported."))

    def handle_export_contact(self, *, wa_id, **options):
        self.stdout.write(dumps(lgpd.export(find_contact(wa_id))))

    def handle_anonymize_contact(self, *, wa_id, yes, **options):
        contact = find_contact(wa_id)
        if not yes:
            if not sys.stdin.isatty():
                raise CommandError(_("Nothing was erased: confirm with --yes (there is no terminal to ask on)."))
            answer = input(_("Erase the name, number, messages and media of contact #%(id)s for good? "
                             "This cannot be undone. Type yes to go on: ") % {"id": contact.pk})
            if answer.strip().lower() not in {"yes", _("yes")}:
                raise CommandError(_("Nothing was erased."))
        counts = lgpd.anonymize(contact)
        self.stdout.write(_("Contact #%(id)d anonymized: %(messages)s, %(files)s, %(events)s.") % {
            "id": contact.pk,
            "messages": ngettext("%(n)d message emptied", "%(n)d messages emptied", counts["messages"]) % {
                "n": counts["messages"]},
            "files": ngettext("%(n)d media file deleted", "%(n)d media files deleted", counts["media_files"]) % {
                "n": counts["media_files"]},
            "events": ngettext("%(n)d webhook event redacted", "%(n)d webhook events redacted",
                               counts["webhook_events"]) % {"n": counts["webhook_events"]}})


def local(iso):
    """An ISO time of the report as people read it here: TIME_ZONE, the language's date format."""
    if not iso:
        return _("never")
    return formats.date_format(timezone.localtime(datetime.fromisoformat(iso)), "SHORT_DATETIME_FORMAT")


def positive_int(value):
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(_("%(value)r is not a whole number") % {"value": value}) from None
    if number < 1:
        raise argparse.ArgumentTypeError(_("must be at least 1"))
    return number


def first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def dumps(document):
    return json.dumps(document, ensure_ascii=False, indent=2)


def find_contact(wa_id):
    contact = contacts.find(wa_id.strip())
    if contact is None:
        raise CommandError(_("No contact with WhatsApp ID %(wa_id)s.") % {"wa_id": wa_id})
    return contact


# --- status ------------------------------------------------------------------------------------


# --- check -------------------------------------------------------------------------------------


