"""`whatsapp_chatbot campaign list|show|pause|resume|cancel ID` (chatbot/management/campaigns.py):
its output, what it changes, and its errors (one sentence, a non-zero exit, no traceback)."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone, translation

from chatbot import campaigns, outbox
from chatbot.management.campaigns import reais
from chatbot.management.commands.whatsapp_chatbot import Command
from chatbot.models import Campaign, Contact, Department, Message, Recipient, Template
from chatbot.tests.helpers import customers

pytestmark = pytest.mark.django_db

LATER = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)  # 09:00 in São Paulo


@pytest.fixture
def promo():
    return Template.objects.create(name="promo", language="pt_BR", category="MARKETING", status="APPROVED",
                                   components=[{"type": "BODY", "text": "Oi {{1}}, temos novidades."}])


def start(name="Promoção", wa_ids=(), **options):
    plan = campaigns.plan(template_name="promo", language="pt_BR", variables={"1": "{name|cliente}"},
                          audience={"labels": ["clientes"], "wa_ids": list(wa_ids)})
    return campaigns.create(name=name, plan=plan, **options)


def run(*args, language="en"):
    out = StringIO()
    with translation.override(language):
        call_command("whatsapp_chatbot", "campaign", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def failing(*args):
    with translation.override("en"), pytest.raises(CommandError) as caught:
        call_command("whatsapp_chatbot", "campaign", *args, stdout=StringIO(), stderr=StringIO())
    return caught.value


def send_all():
    while outbox.drain():
        pass


def test_the_subcommand_has_help_in_the_products_language():
    parser = Command().create_parser("manage.py", "whatsapp_chatbot")
    subparsers = next(action for action in parser._actions if action.dest == "subcommand")
    text = subparsers.choices["campaign"].format_help()
    assert text.startswith("uso:")
    assert "list, show, pause, resume, cancel" in text


# --- list ---


def test_list_is_a_table_newest_first(promo):
    customers(3)
    now_campaign = start(name="Agora")
    later_campaign = start(name="Depois", scheduled_at=LATER)
    lines = run("list").splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "RECIPIENTS", "SENT", "DELIVERED", "FAILED", "CREATED",
                                "SCHEDULED", "FOR"]
    assert lines[1].split()[:7] == [str(later_campaign.pk), "Depois", "scheduled", "3", "0", "0", "0"]
    assert lines[2].split()[:7] == [str(now_campaign.pk), "Agora", "sending", "3", "0", "0", "0"]
    assert lines[2].rstrip().endswith("—")  # sent at once: no schedule of its own
    # Times in TIME_ZONE, as the language writes them.
    portuguese = run("list", language="pt-br").splitlines()
    assert portuguese[1].rstrip().endswith("15/01/2030 09:00")
    created = timezone.localtime(now_campaign.created_at).strftime("%d/%m/%Y %H:%M")
    assert created in portuguese[2]


def test_list_counts_what_was_sent(promo, fake_graph):
    customers(2)
    campaign = start(name="Enviada")
    fake_graph.fail_next(131026)
    send_all()
    assert run("list").splitlines()[1].split()[:7] == [str(campaign.pk), "Enviada", "finished", "2", "1", "0", "1"]


def test_list_without_campaigns():
    assert run("list").strip() == "No campaigns yet."


# --- show ---


def test_show_is_the_campaigns_report(promo, fake_graph):
    ana, bia, caio, _dani = customers(4)
    Contact.objects.filter(pk=caio.pk).update(opted_out=True)
    vendas = Department.objects.create(name="Vendas")
    campaign = start(name="Black Friday", wa_ids=["123"], department=vendas, window=(time(8), time(20)))
    Campaign.objects.filter(pk=campaign.pk).update(window_start=None, window_end=None)  # send now, whatever the hour
    fake_graph.fail_next(131026)
    send_all()
    now = timezone.now()
    Message.objects.filter(contact__in=[bia, _dani]).update(status="delivered", delivered_at=now,
                                                           pricing_category="marketing")
    Recipient.objects.filter(contact=bia).update(replied_at=now)
    Contact.objects.filter(pk=bia.pk).update(opted_out=True, opted_out_at=now + timedelta(minutes=1))
    output = run("show", str(campaign.pk))
    lines = output.splitlines()
    assert lines[0] == f"Campaign #{campaign.pk} “Black Friday”: finished"
    assert lines[1] == "Template: promo (pt_BR, MARKETING), from number 106540352242922"
    assert "Replies go to: Vendas" in lines
    assert "3 recipients; skipped when created: 1 no valid WhatsApp number, 1 opted out of marketing" in lines
    assert "Progress: 100%" in lines
    assert "Queued 0 · sent 2 · delivered 2 · read 0 · failed 1 · skipped 1 · cancelled 0" in lines
    assert "Replies within 72 h: 1 · opted out since: 1" in lines
    failures = lines.index("Failures by Meta's error code:")
    assert lines[failures + 1].startswith("  131026 × 1: ")
    assert len(lines[failures + 1]) > len("  131026 × 1: ")  # with its explanation
    # Two delivered marketing messages at the default price, in reais as Brazilians write them.
    assert "Estimated cost: R$ 0,69" in lines
    assert "  marketing: 2 × R$ 0,3438 = R$ 0,69" in lines


def test_show_tells_why_a_campaign_is_paused(promo):
    customers(1)
    campaign = start(scheduled_at=LATER)
    campaigns.pause(campaign.pk, reason=Campaign.PauseReason.QUALITY, detail="Meta rated the number's quality RED.")
    output = run("show", str(campaign.pk))
    assert "Paused: the number's quality dropped (Meta rated the number's quality RED.)" in output.splitlines()
    assert "Progress: 0%" in output


def test_money_is_written_the_brazilian_way():
    assert reais(Decimal("1234567.891")) == "R$ 1.234.567,89"
    assert reais(Decimal("0.005")) == "R$ 0,01"
    assert reais(Decimal("0.3438"), places=4) == "R$ 0,3438"
    assert reais(0) == "R$ 0,00"


# --- pause, resume, cancel ---


def test_pause_resume_and_cancel_print_the_new_status(promo):
    customers(2)
    campaign = start(name="Natal", scheduled_at=LATER)
    assert run("pause", str(campaign.pk)).strip() == f"Campaign #{campaign.pk} “Natal” is now paused."
    assert Campaign.objects.get().status == "paused"
    assert run("resume", str(campaign.pk)).strip() == f"Campaign #{campaign.pk} “Natal” is now scheduled."
    assert run("cancel", str(campaign.pk)).strip() == f"Campaign #{campaign.pk} “Natal” is now cancelled."
    assert set(Recipient.objects.values_list("state", flat=True)) == {"cancelled"}


# --- errors ---


def test_an_impossible_move_is_one_sentence_and_changes_nothing(promo):
    customers(1)
    campaign = start()
    error = failing("resume", str(campaign.pk))
    assert error.returncode == 1
    assert str(error) == "Only a paused campaign can be resumed; this one is sending."
    assert Campaign.objects.get().status == "running"


@pytest.mark.parametrize("action", ["show", "pause", "resume", "cancel"])
def test_an_unknown_or_missing_id_is_one_sentence(action):
    assert str(failing(action, "999")) == "No campaign with ID 999."
    assert "campaign list" in str(failing(action))


def test_an_action_that_does_not_exist_is_refused():
    assert "restart" in str(failing("restart", "1"))
    assert "abc" in str(failing("show", "abc"))


def test_from_the_command_line_the_error_is_one_line_on_stderr_and_exit_1(capsys):
    # run_from_argv closes the connections when done: here that would be the test's own.
    with mock.patch("django.core.management.base.connections.close_all"), translation.override("en"), \
            pytest.raises(SystemExit) as exit_:
        Command().run_from_argv(["manage.py", "whatsapp_chatbot", "campaign", "cancel", "999"])
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert captured.err == "CommandError: No campaign with ID 999.\n"
    assert captured.out == ""
