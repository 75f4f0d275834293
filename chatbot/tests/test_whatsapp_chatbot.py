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
