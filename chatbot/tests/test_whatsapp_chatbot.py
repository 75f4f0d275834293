"""The `whatsapp_chatbot` management command: output and exit codes of each subcommand."""

import json
import sys
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError
from django.utils import timezone, translation

from chatbot import health, outbox
from chatbot.management.commands.whatsapp_chatbot import Command
from chatbot.models import ApiToken, Contact, Message, PhoneNumber, Template, WebhookEndpoint, WebhookEvent, WorkerBeat
from chatbot.tests.helpers import failing_apply, payload_bytes, post_signed

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("whatsapp_chatbot", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_reprocess_failed_applies_events_once_fixed(client, run_tasks):
    with failing_apply(RuntimeError("bug")):
        post_signed(client, payload_bytes("text"))
        run_tasks()
    assert WebhookEvent.objects.get().result == "failed"
    assert Message.objects.count() == 0

    output = run("reprocess", "--failed")
    assert output.strip() == "1 evento reprocessado: 1 aplicado, 0 com falha."  # one event, in the singular
    assert WebhookEvent.objects.get().result == "processed"
    assert Message.objects.count() == 1
    # A second run finds nothing left to do and duplicates stay out.
    run("reprocess", "--failed")
    run("reprocess", str(WebhookEvent.objects.get().pk))
    assert Message.objects.count() == 1


def test_reprocess_still_failing_exits_non_zero(client, run_tasks):
    with failing_apply(RuntimeError("bug")):
        post_signed(client, payload_bytes("text"))
        run_tasks()
        with pytest.raises(CommandError):
            run("reprocess", "--failed")


def test_reprocess_unknown_id_is_one_clear_error():
    with pytest.raises(CommandError, match="999"):
        run("reprocess", "999")


def test_create_api_token_prints_the_token_alone_on_the_last_line():
    output = run("create-api-token", "ERP")
    plaintext = output.strip().splitlines()[-1]
    assert plaintext.startswith("hzt_") and " " not in plaintext
    assert ApiToken.objects.authenticate(plaintext).name == "ERP"
    assert not ApiToken.objects.filter(token_hash=plaintext).exists()


def test_create_api_token_takes_its_scopes():
    assert ApiToken.objects.authenticate(run("create-api-token", "ERP").splitlines()[-1]).scopes == ["read", "send"]
    output = run("create-api-token", "CRM", "--scope", "export", "--scope", "read")
    assert ApiToken.objects.authenticate(output.splitlines()[-1]).scopes == ["export", "read"]
    assert "export, read" in output
    with pytest.raises(CommandError, match="delete"):
        run("create-api-token", "X", "--scope", "delete")


def test_argument_errors_are_told_in_portuguese():
    with pytest.raises(CommandError, match="opção inválida: 'delete' \\(escolha entre"):
        run("create-api-token", "X", "--scope", "delete")
    with pytest.raises(CommandError, match="opção inválida: 'voar'"):
        run("voar")


def test_unknown_subcommand_is_refused():
    with pytest.raises(CommandError):
        run("fly-to-the-moon")


# --- simulate and send ---


@pytest.mark.django_db(transaction=True)
def test_simulate_plays_the_customer_and_prints_the_bots_answers(live_server, settings):
    from chatbot.models import Department
    from chatbot.worker import Inbox

    settings.WHATSAPP_ACCESS_TOKEN = ""
    Department.objects.create(name="Vendas", position=1)
    Department.objects.create(name="Suporte", position=2)
    url = f"{live_server.url}/chatbot/webhook/"
    customer = ["simulate", "--from", "5511977776666", "--name", "Joana", "--url", url]
    inbox = Inbox("test")
    inbox.start()
    try:
        output = run(*customer, "oi")
        waiting = run(*customer, "Vendas")
        silent = run(*customer, "--wait", "1", "oi?")
    finally:
        inbox.stopping.set()
        inbox.join(timeout=10)
    lines = output.splitlines()
    assert lines[0] == "Joana: oi"
    assert lines[1].endswith("Olá, Joana! 👋 Bem-vindo(a) ao nosso atendimento.")
    assert lines[2].endswith("Como podemos ajudar? Escolha uma opção:  [Vendas] | [Suporte]")
    assert "fila de *Vendas* (posição 1)" in waiting
    assert silent.splitlines()[-1] == "(A conversa está com um atendente: o robô não responde.)"


def test_simulate_says_when_nothing_listens():
    with pytest.raises(CommandError, match=r"inicie o produto antes \(make run\)"):
        run("simulate", "--url", "http://127.0.0.1:9/chatbot/webhook/", "oi")


@pytest.mark.parametrize("number", ["abc", "12", "US.13491208655302741918"])
def test_simulate_plays_only_a_customer_with_a_phone_number(number):
    with pytest.raises(CommandError, match="--from"):
        run("simulate", "--from", number, "oi")
    assert not Contact.objects.exists()


def test_simulate_posts_where_make_run_serves(monkeypatch, tmp_path):
    from chatbot.management.commands import whatsapp_chatbot

    monkeypatch.setattr(whatsapp_chatbot, "RUN_URL_FILE", tmp_path / ".run-url")
    assert whatsapp_chatbot.running_url() == "http://127.0.0.1:8000/chatbot/webhook/"
    (tmp_path / ".run-url").write_text("http://127.0.0.1:8010/\n")
    assert whatsapp_chatbot.running_url() == "http://127.0.0.1:8010/chatbot/webhook/"
    with pytest.raises(CommandError, match="8010"):
        run("simulate", "oi")  # nothing listens there in the tests: the error names the address tried


def test_simulate_needs_the_app_secret(settings):
    settings.WHATSAPP_APP_SECRET = ""
    with pytest.raises(CommandError, match="WHATSAPP_APP_SECRET"):
        run("simulate", "oi")


def test_send_queues_a_text_inside_the_window(settings):
    Contact.objects.create(wa_id="5511987654321", last_inbound_at=timezone.now())
    assert "queued" in run("send", "5511987654321", "Seu pedido chegou!") or "fila" in run("send", "5511987654321", "x")
    assert Message.objects.filter(direction="out", text="Seu pedido chegou!").exists()


def test_send_outside_the_window_is_refused_with_the_reason():
    with pytest.raises(CommandError, match="24 horas|24 hours"):
        run("send", "5511987654321", "Oi")


# --- status, check, sync-templates, purge, export-contact, anonymize-contact ---

WABA = "102290129340398"
PNID = "106540352242922"
CONTRACT = ["status", "check", "send", "simulate", "sync-templates", "reprocess", "purge", "export-contact",
            "anonymize-contact", "create-api-token"]


def run_en(*args):
    with translation.override("en"):
        return run(*args)


def failing(*args):
    """Run a subcommand that must fail: (its stdout, the CommandError)."""
    out = StringIO()
    with translation.override("en"), pytest.raises(CommandError) as caught:
        call_command("whatsapp_chatbot", *args, stdout=out, stderr=StringIO())
    return out.getvalue(), caught.value


def meta_templates(count):
    return [{"id": str(100 + i), "name": f"aviso_{i}", "language": "pt_BR", "status": "APPROVED",
             "category": "UTILITY", "components": [{"type": "BODY", "text": "Olá {{1}}"}]} for i in range(count)]


def test_every_subcommand_of_the_contract_has_help():
    parser = Command().create_parser("manage.py", "whatsapp_chatbot")
    subparsers = next(action for action in parser._actions if action.dest == "subcommand")
    assert set(CONTRACT) <= set(subparsers.choices)
    for name in CONTRACT:
        assert subparsers.choices[name].format_help().startswith("uso:")  # argparse too speaks Portuguese
    assert "--json" in subparsers.choices["status"].format_help()
    assert "--days" in subparsers.choices["purge"].format_help()
    assert "--yes" in subparsers.choices["anonymize-contact"].format_help()


def test_status_shows_secrets_only_as_set_or_missing(settings):
    settings.WHATSAPP_ACCESS_TOKEN = "EAAGsecretTOKEN123"
    WorkerBeat.objects.create(worker_id="w1", hostname="app1", pid=1)
    Contact.objects.create(wa_id="5511987654321", name="Maria")
    output = run_en("status")
    assert output.splitlines()[0] == "HOZ TECH WhatsApp chatbot 0.1.0: ok"
    assert "Mode: live" in output
    assert "WHATSAPP_ACCESS_TOKEN" in output and "EAAGsecretTOKEN123" not in output
    assert settings.WHATSAPP_APP_SECRET not in output and settings.SECRET_KEY not in output
    assert "Counts: 1 contact, 0 open conversations" in output
    assert "Database: ok" in output
    assert "Event webhooks" not in output  # none configured: nothing to say


def test_status_tells_of_event_webhooks_and_those_disabled():
    WebhookEndpoint.objects.create(url="https://crm.example/hooks", secret="s")
    WebhookEndpoint.objects.create(url="https://old.example/hooks", secret="s", active=False,
                                   disabled_reason=WebhookEndpoint.DISABLED_FAILING)
    assert "Event webhooks: 1 endpoint active; 1 disabled after 24 h of failures; 0 events given up in 24 h" in (
        run_en("status"))


def test_status_json_is_one_document():
    document = json.loads(run("status", "--json"))
    assert document["status"] == "degraded"  # no worker has been seen
    assert document["mode"] == "sandbox"
    assert document["configuration"]["WHATSAPP_ACCESS_TOKEN"] == "missing"
    assert document["configuration"]["WHATSAPP_APP_SECRET"] == "set"
    assert document["configuration"]["WHATSAPP_PHONE_NUMBER_ID"] == PNID
    assert document["database"]["ok"] is True
    assert document["counts"]["contacts"] == 0
    assert set(document) >= {"queue", "worker", "webhook", "whatsapp", "counts", "database"}
    assert document["worker"]["ok"] is False


def test_status_exits_1_when_the_database_is_down():
    with mock.patch("chatbot.health.connection.cursor", side_effect=OperationalError("connection refused")):
        output, error = failing("status", "--json")
    assert error.returncode == 1
    assert json.loads(output)["status"] == "down"
    assert json.loads(output)["counts"] is None
    assert "database" in str(error)


def test_check_passes_against_meta_and_records_the_number(fake_graph, client):
    fake_graph.templates = meta_templates(3)
    run("sync-templates")
    output = run_en("check")
    lines = output.splitlines()
    assert all(line.startswith("✓") for line in lines), output
    assert any("Access token" in line for line in lines)
    assert any("quality GREEN" in line and "TIER_250" in line and "STANDARD" in line for line in lines)
    assert any("Subscribed apps: HOZ TECH" in line for line in lines)
    assert any("Templates: 3 in step" in line for line in lines)
    assert any("Webhook secret" in line for line in lines)
    number = PhoneNumber.objects.get(phone_number_id=PNID)
    assert (number.verified_name, number.quality_rating, number.messaging_limit) == ("HOZ TECH", "GREEN", "TIER_250")
    health.forget()
    whatsapp = client.get("/chatbot/health/").json()["checks"]["whatsapp"]
    assert whatsapp["token"] == "ok"
    assert whatsapp["numbers"][0]["quality_rating"] == "GREEN"


def test_check_says_what_to_do_for_each_failure(fake_graph, settings):
    fake_graph.templates = meta_templates(2)  # never synced
    fake_graph.subscribed = []
    fake_graph.phone = {**fake_graph.phone, "quality_rating": "RED"}
    settings.WHATSAPP_APP_SECRET = ""
    output, error = failing("check")
    failed = [line for line in output.splitlines() if line.startswith("✗")]
    assert len(failed) == 4
    assert "sync-templates" in output
    assert "subscribed_apps" in output
    assert "Quality is low" in output
    assert "WHATSAPP_APP_SECRET is missing" in output
    assert str(error) == "4 of 5 checks failed."


def test_check_with_a_refused_token_stops_there(fake_graph):
    PhoneNumber.objects.default()
    fake_graph.fail_next(code=190, http_status=401, path_contains=PNID)
    output, error = failing("check")
    assert output.splitlines()[0].startswith("✗ Access token: Meta refused it (190)")
    assert "Subscribed apps" not in output
    assert error.returncode == 1
    assert outbox.token_refused()  # health says "invalid" until the token works again


def test_check_against_something_that_is_not_meta(fake_graph, settings):
    settings.WHATSAPP_GRAPH_URL = fake_graph.url + "/media-download"  # answers 404 in plain text
    output, _error = failing("check")
    assert "not like Meta's Graph API" in output.splitlines()[0]
    assert "Subscribed apps" not in output


def test_check_when_meta_cannot_be_reached(settings):
    settings.WHATSAPP_ACCESS_TOKEN = "EAAGsecretTOKEN123"  # and WHATSAPP_GRAPH_URL is port 9: nothing listens
    output, _error = failing("check")
    assert output.startswith("✗ Meta could not be reached")


def test_check_in_live_mode_refuses_the_public_verify_token(fake_graph, settings):
    fake_graph.templates = meta_templates(1)
    run("sync-templates")
    settings.WEBHOOK_VERIFY_TOKEN = "hoz_tech_secure_token_2024"
    output, error = failing("check")
    assert [line for line in output.splitlines() if line.startswith("✗")] == [
        "✗ Verify token: WEBHOOK_VERIFY_TOKEN is the public default. Set a long random value in .env and the same "
        "in Meta's App Dashboard > WhatsApp > Configuration."]
    assert error.returncode == 1


def test_check_in_sandbox_mode_says_so():
    output, error = failing("check")
    assert output.startswith("✗ Sandbox mode: WHATSAPP_ACCESS_TOKEN is empty")
    assert "✓ Webhook secret" in output
    assert str(error) == "1 of 2 checks failed."


def test_sync_templates_prints_the_count(fake_graph):
    fake_graph.templates = meta_templates(120)
    Template.objects.create(name="antigo", language="pt_BR", waba_id=WABA, status="APPROVED")
    assert run_en("sync-templates").strip() == "120 templates synced from Meta (1 marked DELETED)."
    assert Template.objects.exclude(status="DELETED").count() == 120


def test_sync_templates_failure_is_one_line():
    _output, error = failing("sync-templates")
    assert "Sandbox mode" in str(error)


def test_purge_prints_the_counts_and_validates_days(settings):
    contact = Contact.objects.create(wa_id="5511987654321")
    old = timezone.now() - timedelta(days=settings.STORE_MESSAGE_UP_TO + 1)
    Message.objects.create(phone_number=PhoneNumber.objects.default(), contact=contact, direction="in",
                           source="customer", type="text", text="velho", status="received", timestamp=old)
    WebhookEvent.objects.create(body="{}", result="processed", received_at=old)
    output = run_en("purge")
    assert output.startswith("Purged what is older than 90 days: 1 message, 0 media files, 1 webhook event,")
    assert not Message.objects.exists()
    assert "older than 7 days: 0 messages" in run_en("purge", "--days", "7")
    _output, error = failing("purge", "--days", "0")
    assert "at least 1" in str(error)
    _output, error = failing("purge", "--days", "abc")
    assert "abc" in str(error)


@pytest.fixture
def maria(client, run_tasks):
    post_signed(client, payload_bytes("text"))
    run_tasks()
    return Contact.objects.get(wa_id="5511987654321")


def test_export_contact_prints_the_contract_json(maria):
    document = json.loads(run("export-contact", "5511987654321"))
    assert set(document) == {"contact", "sessions", "messages", "media"}
    assert document["contact"]["name"] == "Maria Conceição"
    assert document["messages"][0]["text"].startswith("Olá! Quero saber o preço")
    # The other Brazilian form of the number finds the same contact.
    assert json.loads(run("export-contact", "551187654321")) == document


def test_export_contact_unknown_is_one_clear_error():
    _output, error = failing("export-contact", "5511000000000")
    assert str(error) == "No contact with WhatsApp ID 5511000000000."


def test_anonymize_contact_with_yes(maria):
    output = run_en("anonymize-contact", "5511987654321", "--yes")
    assert output.startswith(f"Contact #{maria.pk} anonymized:")
    maria.refresh_from_db()
    assert maria.anonymized_at is not None and maria.wa_id == ""
    assert not Message.objects.exclude(text="").filter(contact=maria).exists()
    _output, error = failing("anonymize-contact", "5511987654321", "--yes")
    assert "No contact" in str(error)


def test_anonymize_contact_asks_first(maria):
    # No terminal to ask on: refused, nothing erased.
    with mock.patch.object(sys, "stdin", StringIO("yes\n")):
        _output, error = failing("anonymize-contact", "5511987654321")
    assert "--yes" in str(error)
    assert Contact.objects.get(pk=maria.pk).name == "Maria Conceição"
    with mock.patch.object(sys.stdin, "isatty", return_value=True, create=True), \
            mock.patch("builtins.input", return_value="no"):
        _output, error = failing("anonymize-contact", "5511987654321")
    assert str(error) == "Nothing was erased."
    assert Contact.objects.get(pk=maria.pk).name == "Maria Conceição"
    with mock.patch.object(sys.stdin, "isatty", return_value=True, create=True), \
            mock.patch("builtins.input", return_value="yes") as asked:
        run_en("anonymize-contact", "5511987654321")
    assert "cannot be undone" in asked.call_args.args[0]
    assert Contact.objects.get(pk=maria.pk).anonymized_at is not None


def test_a_database_failure_is_one_line_not_a_traceback():
    with mock.patch("chatbot.contacts.find", side_effect=OperationalError("server closed the connection\nx")):
        _output, error = failing("export-contact", "5511987654321")
    assert str(error) == "The database does not answer: server closed the connection"


def test_token_pause_ends_when_check_finds_the_token_working(fake_graph):
    number = PhoneNumber.objects.default()
    PhoneNumber.objects.filter(pk=number.pk).update(token_invalid_at=timezone.now(),
                                                    token_fingerprint=outbox.token_fingerprint())
    assert outbox.token_refused()
    fake_graph.templates = []
    run("check")
    assert not outbox.token_refused()
