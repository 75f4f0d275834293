"""The `whatsapp_chatbot` management command: output and exit codes of each subcommand."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from chatbot.models import ApiToken, Message, WebhookEvent
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
    assert "1 events reprocessed: 1 processed, 0 failed." in output or "1 eventos" in output
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


def test_unknown_subcommand_is_refused():
    with pytest.raises(CommandError):
        run("fly-to-the-moon")


# --- simulate and send ---


@pytest.mark.django_db(transaction=True)
def test_simulate_plays_the_customer_and_prints_the_bots_answers(live_server, settings):
    from chatbot.management.commands.db_worker import Inbox
    from chatbot.models import Department

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


def test_simulate_needs_the_app_secret(settings):
    settings.WHATSAPP_APP_SECRET = ""
    with pytest.raises(CommandError, match="WHATSAPP_APP_SECRET"):
        run("simulate", "oi")


def test_send_queues_a_text_inside_the_window(settings):
    from django.utils import timezone

    from chatbot.models import Contact

    Contact.objects.create(wa_id="5511987654321", last_inbound_at=timezone.now())
    assert "queued" in run("send", "5511987654321", "Seu pedido chegou!") or "fila" in run("send", "5511987654321", "x")
    assert Message.objects.filter(direction="out", text="Seu pedido chegou!").exists()


def test_send_outside_the_window_is_refused_with_the_reason():
    with pytest.raises(CommandError, match="24 horas|24 hours"):
        run("send", "5511987654321", "Oi")
