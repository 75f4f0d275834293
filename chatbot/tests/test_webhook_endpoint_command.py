"""`whatsapp_chatbot webhook-endpoint add|list|remove|test` (chatbot/management/webhook_endpoints.py):
its output, what it changes, `test` against a receiver on 127.0.0.1, and its errors (one sentence
on stderr, exit 1, no traceback), also from a real `manage.py` process."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone, translation

from chatbot import event_delivery, event_http, events, webhook_endpoints
from chatbot.management.campaigns import moment
from chatbot.management.commands.whatsapp_chatbot import Command
from chatbot.models import EventDelivery, WebhookEndpoint
from chatbot.tests.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
OPTED_OUT = {"wa_id": "5511987654321", "name": "Ana"}


@pytest.fixture
def private_targets(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def run(*args, language="en"):
    out = StringIO()
    with translation.override(language):
        call_command("whatsapp_chatbot", "webhook-endpoint", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def failing(*args):
    with translation.override("en"), pytest.raises(CommandError) as caught:
        call_command("whatsapp_chatbot", "webhook-endpoint", *args, stdout=StringIO(), stderr=StringIO())
    return caught.value


def test_the_subcommand_has_help_in_the_products_language():
    parser = Command().create_parser("manage.py", "whatsapp_chatbot")
    subparsers = next(action for action in parser._actions if action.dest == "subcommand")
    text = subparsers.choices["webhook-endpoint"].format_help()
    assert text.startswith("uso:")
    for action in ("add", "list", "remove", "test"):
        assert action in text


# --- add ---


@pytest.mark.django_db
def test_add_prints_a_summary_and_the_secret_alone_on_the_last_line(private_targets):
    output = run("add", " http://127.0.0.1:8080/hooks ", "--event", "message.read", "--event",
                 "message.received", "--description", "Loja virtual")
    endpoint = WebhookEndpoint.objects.get()
    lines = output.splitlines()
    assert lines[0] == f"Endpoint #{endpoint.pk} added: http://127.0.0.1:8080/hooks, events: message.received, " \
                       "message.read."
    assert lines[-1] == endpoint.secret
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 40
    assert (endpoint.url, endpoint.events, endpoint.description, endpoint.active) == (
        "http://127.0.0.1:8080/hooks", ["message.received", "message.read"], "Loja virtual", True)


@pytest.mark.django_db
def test_add_without_event_types_sends_every_type_and_takes_them_comma_separated_too(private_targets):
    assert "events: all." in run("add", "http://127.0.0.1:8080/all")
    run("add", "http://127.0.0.1:8080/some", "--event", "contact.opted_out, contact.opted_in")
    first, second = WebhookEndpoint.objects.order_by("pk")
    assert first.events == [] and first.wants("campaign.finished")
    assert second.events == ["contact.opted_out", "contact.opted_in"]
    assert "eventos: todos." in run("add", "http://127.0.0.1:8080/pt", language="pt-br")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["foo", "ftp://example.com/hooks", "http://", "https://user:pass@127.0.0.1/h",
                                 "http://127.0.0.1:99999/"])
def test_a_bad_url_is_one_sentence_and_nothing_is_added(private_targets, url):
    error = failing("add", url)
    assert error.returncode == 1
    assert "\n" not in str(error) and str(error).endswith(".")
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://127.0.0.1/hooks", "http://10.1.2.3/hooks", "http://[::1]:8080/",
                                 "http://169.254.169.254/latest/meta-data/", "http://localhost/"])
def test_a_private_address_is_refused_unless_allowed(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    error = str(failing("add", url))
    assert "is a private, loopback or link-local address" in error
    assert "WEBHOOK_ALLOW_PRIVATE_TARGETS" in error
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_an_unknown_event_type_is_refused_with_the_known_ones():
    # Told before the URL is looked up: no DNS needed to learn of a typo.
    error = str(failing("add", "https://shop.invalid/hooks", "--event", "message.recieved", "--event", "message.read"))
    assert error == f"Unknown event type: message.recieved. Known types: {', '.join(events.TYPES)}."
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_an_unknown_event_type_in_portuguese():
    with translation.override("pt-br"), pytest.raises(CommandError) as caught:
        call_command("whatsapp_chatbot", "webhook-endpoint", "add", "https://shop.invalid/", "--event", "x",
                     stdout=StringIO(), stderr=StringIO())
    assert str(caught.value).startswith("Tipo de evento desconhecido: x.")


# --- list ---


@pytest.mark.django_db
def test_list_without_endpoints():
    assert run("list").strip() == "No event webhooks yet: add one with whatsapp_chatbot webhook-endpoint add URL."


@pytest.mark.django_db
def test_list_shows_state_counts_last_delivery_url_and_types(receiver):
    shop = webhook_endpoints.add(receiver.url, types=["contact.opted_out"])
    crm = webhook_endpoints.add(receiver.url + "/crm")
    events.emit("contact.opted_out", OPTED_OUT)
    receiver.answer(200, 500)
    event_delivery.drain()
    delivered = EventDelivery.objects.get(endpoint=shop)
    retried = EventDelivery.objects.get(endpoint=crm)
    assert (delivered.status, retried.status) == ("delivered", "pending")
    old = webhook_endpoints.add(receiver.url + "/old", types=["campaign.finished", "message.read"])
    EventDelivery.objects.create(endpoint=old, event_id="evt_1", type="campaign.finished", body="{}",
                                 status="failed")
    old.active, old.disabled_reason = False, WebhookEndpoint.DISABLED_FAILING
    old.save()
    WebhookEndpoint.objects.filter(pk=crm.pk).update(failing_since=timezone.now() - timedelta(hours=1))
    lines = run("list").splitlines()
    with translation.override("en"):
        delivered_at, retried_at = moment(delivered.last_attempt_at).split(), moment(retried.last_attempt_at).split()
    assert lines[0].split() == ["ID", "STATE", "PENDING", "FAILED", "LAST", "DELIVERY", "URL", "EVENTS"]
    assert lines[1].split() == [str(shop.pk), "active", "0", "0", *delivered_at, "✓", "200", receiver.url,
                                "contact.opted_out"]
    assert lines[2].split() == [str(crm.pk), "failing", "1", "0", *retried_at, "✗", "500", receiver.url + "/crm",
                                "all"]
    assert lines[3].split()[:6] == [str(old.pk), "disabled", "(24", "h", "of", "failures)"]
    assert lines[3].split()[6:] == ["0", "1", "—", receiver.url + "/old", "message.read,", "campaign.finished"]
    # The columns line up: every row's URL starts where the header's does.
    assert {line.index("http") for line in lines[1:]} == {lines[0].index("URL")}


@pytest.mark.django_db
def test_list_says_when_an_endpoint_was_disabled_by_hand_and_an_unanswered_attempt(receiver):
    endpoint = webhook_endpoints.add("http://127.0.0.1:9/closed")
    events.emit("contact.opted_out", OPTED_OUT)
    event_delivery.drain()  # nothing listens on port 9
    webhook_endpoints.set_active(endpoint, False)
    cells = run("list").splitlines()[1].split()
    assert cells[1:4] == ["disabled", "1", "0"]
    assert cells[-3:] == ["—", "http://127.0.0.1:9/closed", "all"]
    assert cells[-4] == "✗"


@pytest.mark.django_db
def test_list_in_portuguese(receiver):
    webhook_endpoints.add(receiver.url)
    header, row = run("list", language="pt-br").splitlines()
    assert header.split()[:2] == ["ID", "ESTADO"]
    assert row.split()[1] == "ativo"
    assert row.split()[-1] == "todos"


# --- remove ---


@pytest.mark.django_db
def test_remove_deletes_the_endpoint_and_says_what_it_will_not_send(receiver):
    endpoint = webhook_endpoints.add(receiver.url)
    kept = webhook_endpoints.add(receiver.url + "/kept")
    events.emit("contact.opted_out", OPTED_OUT)
    events.emit("contact.opted_in", OPTED_OUT)
    assert run("remove", str(endpoint.pk)).strip() == (
        f"Endpoint #{endpoint.pk} removed ({receiver.url}). 2 events waiting for it will not be sent.")
    assert list(WebhookEndpoint.objects.listed()) == [kept]
    assert set(EventDelivery.objects.values_list("endpoint_id", flat=True)) == {kept.pk}
    assert event_delivery.drain() == 2
    assert {request["path"] for request in receiver.requests} == {"/hooks/kept"}


@pytest.mark.django_db
def test_a_removed_endpoint_is_gone_for_every_subcommand(private_targets):
    endpoint = webhook_endpoints.add("http://127.0.0.1:8080/hooks")
    run("remove", str(endpoint.pk))
    # The row stays (a process may still record an event for it this second), hidden and inactive.
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).active is False
    assert run("list").startswith("No event webhooks yet")
    for action in ("remove", "test"):
        assert str(failing(action, str(endpoint.pk))).startswith(f"No event webhook with ID {endpoint.pk} ")


@pytest.mark.django_db
def test_remove_an_endpoint_with_nothing_waiting(private_targets):
    endpoint = webhook_endpoints.add("http://127.0.0.1:8080/hooks")
    assert run("remove", str(endpoint.pk)).strip() == f"Endpoint #{endpoint.pk} removed (http://127.0.0.1:8080/hooks)."


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["remove", "test"])
@pytest.mark.parametrize("endpoint_id", ["999", "abc", "-1", "1.5"])
def test_an_unknown_id_is_one_sentence(action, endpoint_id):
    error = failing(action, endpoint_id)
    assert error.returncode == 1
    assert str(error) == (f"No event webhook with ID {endpoint_id} (the IDs are in whatsapp_chatbot "
                          "webhook-endpoint list).")


@pytest.mark.django_db
def test_an_action_that_does_not_exist_or_a_missing_argument_is_refused():
    assert "enable" in str(failing("enable", "1"))
    assert "ID" in str(failing("remove"))
    assert "URL" in str(failing("add"))


# --- test ---


@pytest.mark.django_db
def test_test_posts_a_signed_test_event_and_prints_the_status_and_duration(receiver):
    endpoint = webhook_endpoints.add(receiver.url, types=["message.read"])
    receiver.answer((200, 0.05, b"recebido"))
    lines = run("test", str(endpoint.pk)).splitlines()
    assert lines[0].startswith(f"✓ {receiver.url} answered 200 in ")
    assert int(lines[0].rsplit(" in ", 1)[1].removesuffix(" ms.")) >= 50
    assert lines[1] == "  recebido"
    (request,) = receiver.requests
    document = json.loads(request["body"])
    assert document["type"] == events.TEST_TYPE == request["headers"]["X-Hoztech-Event"]
    assert document["id"] == request["headers"]["X-Hoztech-Delivery"]
    assert document["data"] == {"endpoint": endpoint.pk, "url": receiver.url}
    stamp = request["headers"]["X-Hoztech-Signature"].split(",")[0].removeprefix("t=")
    assert request["headers"]["X-Hoztech-Signature"] == event_http.signature(endpoint.secret, int(stamp),
                                                                                 request["body"])
    assert not EventDelivery.objects.exists()  # recorded nowhere


@pytest.mark.django_db
def test_test_of_a_disabled_endpoint_posts_and_says_it_is_disabled(receiver):
    endpoint = webhook_endpoints.add(receiver.url)
    webhook_endpoints.set_active(endpoint, False)
    output = run("test", str(endpoint.pk))
    assert "answered 200" in output
    assert "The endpoint is disabled" in output
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_test_fails_with_exit_1_when_the_receiver_refuses(receiver):
    endpoint = webhook_endpoints.add(receiver.url)
    receiver.answer((500, 0, b"Internal Server Error"))
    out = StringIO()
    with translation.override("en"), pytest.raises(CommandError) as caught:
        call_command("whatsapp_chatbot", "webhook-endpoint", "test", str(endpoint.pk), stdout=out, stderr=StringIO())
    assert caught.value.returncode == 1
    assert str(caught.value) == "The test event was refused: HTTP 500 (any 2xx answer accepts an event)."
    assert out.getvalue().startswith(f"✗ {receiver.url} answered 500 in ")
    assert "  Internal Server Error" in out.getvalue().splitlines()


@pytest.mark.django_db
def test_test_says_a_redirect_is_not_followed(receiver):
    endpoint = webhook_endpoints.add(receiver.url)
    receiver.answer(302)
    assert "redirects are not followed" in str(failing("test", str(endpoint.pk)))
    assert len(receiver.requests) == 1  # not to the Location


@pytest.mark.django_db
def test_test_of_an_endpoint_nothing_answers_at(private_targets):
    endpoint = webhook_endpoints.add("http://127.0.0.1:9/hooks")
    error = str(failing("test", str(endpoint.pk)))
    assert error.startswith("The test event did not reach http://127.0.0.1:9/hooks after ")
    assert "Connection refused" in error


@pytest.mark.django_db
def test_test_refuses_a_private_address_before_connecting(receiver, settings):
    endpoint = webhook_endpoints.add(receiver.url)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # e.g. the setting was turned off since
    error = str(failing("test", str(endpoint.pk)))
    assert "127.0.0.1 is a private, loopback or link-local address" in error
    assert receiver.requests == []


# --- a real manage.py process: exit codes, stdout and stderr ---


@pytest.fixture(scope="module")
def manage(tmp_path_factory):
    """`manage.py whatsapp_chatbot webhook-endpoint …` in its own process, on a migrated SQLite file."""
    folder = tmp_path_factory.mktemp("webhook_endpoint_command")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "ENV_FILE": "",
           "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}", "SECRET_KEY": "x" * 50, "LOG_DIR": str(folder),
           "LANGUAGE_CODE": "en", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)

    def manage(*args, **variables):
        return subprocess.run([sys.executable, "manage.py", "whatsapp_chatbot", "webhook-endpoint", *args], cwd=ROOT,
                              env={**env, **variables}, capture_output=True, text=True, timeout=60)

    return manage


def one_line_error(result, text):
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"CommandError: {text}\n"


def test_from_the_command_line_every_subcommand_and_its_exit_code(manage):
    with Receiver() as receiver:
        added = manage("add", receiver.url, "--event", "message.read")
        assert added.returncode == 0, added.stderr
        secret = added.stdout.splitlines()[-1]
        assert secret.startswith("whsec_")
        endpoint_id = added.stdout.split("#", 1)[1].split(" ", 1)[0]

        listed = manage("list")
        assert listed.returncode == 0
        assert listed.stdout.splitlines()[1].split() == [endpoint_id, "active", "0", "0", "—", receiver.url,
                                                         "message.read"]

        tested = manage("test", endpoint_id)
        assert tested.returncode == 0, tested.stderr
        assert tested.stdout.startswith(f"✓ {receiver.url} answered 200 in ")
        (request,) = receiver.requests
        stamp = request["headers"]["X-Hoztech-Signature"].split(",")[0].removeprefix("t=")
        assert request["headers"]["X-Hoztech-Signature"] == event_http.signature(secret, int(stamp),
                                                                                     request["body"])

        receiver.answer(503)
        refused = manage("test", endpoint_id)
        assert refused.returncode == 1
        assert refused.stdout.startswith(f"✗ {receiver.url} answered 503 in ")
        assert refused.stderr == "CommandError: The test event was refused: HTTP 503 (any 2xx answer accepts an " \
                                 "event).\n"

        removed = manage("remove", endpoint_id)
        assert (removed.returncode, removed.stdout) == (0, f"Endpoint #{endpoint_id} removed ({receiver.url}).\n")
    one_line_error(manage("remove", endpoint_id), f"No event webhook with ID {endpoint_id} (the IDs are in "
                                                  "whatsapp_chatbot webhook-endpoint list).")
    one_line_error(manage("test", "abc"), "No event webhook with ID abc (the IDs are in whatsapp_chatbot "
                                          "webhook-endpoint list).")


def test_from_the_command_line_refusals_are_one_sentence_and_exit_1(manage):
    one_line_error(manage("add", "not a url"),
                   "Enter a valid http:// or https:// URL, such as https://example.com/webhooks.")
    one_line_error(manage("add", "http://10.0.0.7/hooks", WEBHOOK_ALLOW_PRIVATE_TARGETS="false"),
                   "10.0.0.7 is a private, loopback or link-local address; events go only to public addresses "
                   "unless WEBHOOK_ALLOW_PRIVATE_TARGETS is set.")
    one_line_error(manage("add", "http://127.0.0.1/hooks", "--event", "message.unknown"),
                   f"Unknown event type: message.unknown. Known types: {', '.join(events.TYPES)}.")
    # In the product's default language too.
    portuguese = manage("add", "http://127.0.0.1/hooks", "--event", "x", LANGUAGE_CODE="pt-br")
    assert portuguese.returncode == 1 and portuguese.stderr.startswith("CommandError: Tipo de evento desconhecido")
    assert "Traceback" not in portuguese.stderr
    assert manage("list").stdout.startswith("No event webhooks yet")
