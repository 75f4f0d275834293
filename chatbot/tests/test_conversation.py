"""From a signed webhook through the worker to the fake Graph API: the conversation layer
(chatbot/conversation.py) with the bot's default configuration."""

import json
import time as clock
from datetime import time, timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from chatbot import conversation, handling
from chatbot.models import BotSettings, BusinessHours, Contact, Department, Message, Session
from chatbot.tests.helpers import load_payload, post_signed
from chatbot.whatsapp.webhook import customer_message

pytestmark = pytest.mark.django_db

PNID = "106540352242922"
WA_ID = "5511987654321"


@pytest.fixture(autouse=True)
def departments():
    return [Department.objects.create(name=name, position=index)
            for index, name in enumerate(["Vendas", "Suporte", "Financeiro"])]


@pytest.fixture
def says(client, fake_graph, run_tasks):
    """The customer sends a message (text, or a tapped button/list row id); returns what Meta got back."""
    counter = iter(range(10**6))

    def send(text="", choice="", wa_id=WA_ID, run=True):
        body = customer_message(phone_number_id=PNID, wa_id=wa_id, name="Maria Souza",
                                wamid=f"wamid.IN{wa_id}{next(counter)}", text=text, choice=choice)
        before = len(fake_graph.sent())
        assert post_signed(client, body).status_code == 200
        if run:
            run_tasks()
        return [replied(sent) for sent in fake_graph.sent()[before:]]

    return send


def replied(sent):
    if sent["type"] == "text":
        return sent["text"]["body"]
    return sent["interactive"]["body"]["text"]


def session():
    return Session.objects.get(contact__wa_id=WA_ID, status__in=["bot", "waiting", "open"])


def test_the_first_message_gets_the_greeting_and_the_menu(says, fake_graph):
    assert says("oi") == [
        "Olá, Maria! 👋 Bem-vindo(a) ao nosso atendimento.", "Como podemos ajudar? Escolha uma opção:"]
    menu = fake_graph.sent()[-1]["interactive"]
    assert [button["reply"]["title"] for button in menu["action"]["buttons"]] == ["Vendas", "Suporte", "Financeiro"]
    assert fake_graph.sent()[-1]["to"] == f"+{WA_ID}"


def test_a_menu_choice_hands_off_with_the_place_in_the_queue(says, departments):
    says("oi")
    other = Session.objects.create(contact=Contact.objects.create(wa_id="5511900000002"), status="waiting",
                                   phone_number=session().phone_number, department=departments[1],
                                   waiting_since=timezone.now() - timedelta(minutes=3))
    assert other
    [notice] = says("Suporte", choice=f"d{departments[1].pk}")
    assert "fila de *Suporte* (posição 2)" in notice
    current = session()
    assert (current.status, current.department) == ("waiting", departments[1])


def test_no_bot_reply_while_waiting_or_with_an_operator(says, departments, django_user_model):
    says("oi")
    says("Vendas", choice=f"d{departments[0].pk}")
    assert says("alô? alguém aí?") == []
    handling.take(session(), django_user_model.objects.create_user("ana"))
    assert says("menu") == []
    assert session().status == "open"


def test_an_operator_can_hand_the_session_back_to_the_bot(says, departments, django_user_model):
    says("oi")
    says("Vendas", choice=f"d{departments[0].pk}")
    handling.return_to_bot(session())
    assert says("menu") == [BotSettings.load().return_to_bot_text, "Como podemos ajudar? Escolha uma opção:"]


def test_the_customer_is_told_of_a_transfer_and_nothing_when_the_text_is_blank(says, departments, fake_graph,
                                                                               run_tasks):
    says("oi")
    says("Vendas", choice=f"d{departments[0].pk}")
    handling.transfer(session(), department=departments[1])
    run_tasks()
    told = "Sua conversa foi transferida para *Suporte*. Um atendente de lá vai continuar com você."
    assert replied(fake_graph.sent()[-1]) == told
    BotSettings.objects.update(transfer_text="")
    conversation._config_cache["at"] = float("-inf")  # the settings are read again (CONFIG_TTL)
    before = len(fake_graph.sent())
    handling.transfer(session(), department=departments[2])
    run_tasks()
    assert len(fake_graph.sent()) == before and session().department == departments[2]


def test_out_of_hours_the_customer_is_told_once(says):
    today = timezone.localtime().weekday()
    BusinessHours.objects.create(weekday=(today + 1) % 7, opens=time(8), closes=time(18))
    first = says("oi")
    assert first[0].startswith("Estamos fora do horário de atendimento")
    assert says("menu") == ["Como podemos ajudar? Escolha uma opção:"]


def test_a_burst_engages_the_spam_guard(says, settings, fake_graph):
    settings.MESSAGES_PER_MINUTE = 30
    for index in range(40):
        says(f"spam {index}", run=False)
    says("spam final")
    current = session()
    assert current.muted_until > timezone.now()
    replies_after_limit = Message.objects.filter(direction="out", session=current).count()
    assert replies_after_limit <= 2 * 31
    assert says("menu") == []


def test_blocked_contacts_get_nothing(says):
    says("oi")
    Contact.objects.filter(wa_id=WA_ID).update(blocked=True)
    assert says("menu") == []


def test_opting_out_of_marketing_by_message(says):
    says("oi")
    assert says("parar") == [BotSettings.load().opt_out_confirm_text]
    says("sim")
    assert Contact.objects.get(wa_id=WA_ID).opted_out


def test_idle_sessions_close_with_a_message_and_the_next_message_starts_anew(says, fake_graph, run_tasks):
    says("oi")
    Session.objects.update(last_message_at=timezone.now() - timedelta(hours=25))
    assert conversation.sweep() == (1, 0)
    run_tasks()
    assert replied(fake_graph.sent()[-1]) == "Encerramos este atendimento. Se precisar de algo, é só escrever! 😊"
    assert says("oi de novo")[0].startswith("Olá, Maria!")
    assert Session.objects.filter(contact__wa_id=WA_ID).count() == 2


def test_customers_waiting_too_long_are_told_once(says, departments, run_tasks, fake_graph):
    says("oi")
    says("Vendas", choice=f"d{departments[0].pk}")
    Session.objects.update(waiting_since=timezone.now() - timedelta(minutes=20))
    assert conversation.sweep() == (0, 1)
    run_tasks()
    assert replied(fake_graph.sent()[-1]).startswith("Nossa equipe está ocupada")
    assert conversation.sweep() == (0, 0)


def test_messages_handled_out_of_order_are_answered_in_order(client, says, fake_graph, run_tasks):
    says("oi", run=False)
    says("menu", run=False)
    from chatbot import inbound

    with mock.patch("chatbot.conversation.follow_up"):  # stored, not yet answered
        inbound.drain()
    second, first = Message.objects.filter(direction="in").order_by("-timestamp", "-pk")
    conversation.handle_inbound_message.call(second.pk)  # the later message's task ran first
    conversation.handle_inbound_message.call(first.pk)  # a no-op: answered in that turn, in order
    run_tasks()
    assert [replied(sent) for sent in fake_graph.sent()] == [
        "Olá, Maria! 👋 Bem-vindo(a) ao nosso atendimento.", "Como podemos ajudar? Escolha uma opção:",
        "Como podemos ajudar? Escolha uma opção:"]


# --- Cost: a regression guard for the work per message (docs/benchmarks.md, reply latency) ---

# Statements, savepoints included, to apply a new customer's first message with its bot turn (and
# the mark-read task), and to send the two replies
# (PostgreSQL books the number's slot in one statement, SQLite in a locked read and a write).
# Before the turn ran in the applying transaction and the sends were recorded in one UPDATE, the
# same first turn took 48 statements, not about 30, and left a safety-net task to run 10 s later.
# Recording the sends' outcomes is one transaction with the events telling other systems of them
# (its savepoint here: two statements).
APPLY_QUERIES = 21
SEND_QUERIES = {"postgresql": 11, "sqlite": 14}


def test_a_first_turn_costs_a_bounded_number_of_queries(client, says, fake_graph, monkeypatch,
                                                        django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chatbot import events, inbound, outbox

    # The endpoints for events (none) are read once a second per process: not per turn.
    monkeypatch.setattr(events, "ENDPOINTS_SECONDS", 3600)
    with django_capture_on_commit_callbacks(execute=True):  # the number is kept once it commits
        says("oi", wa_id="5511900000001")  # configuration and business number read once per process
    body = customer_message(phone_number_id=PNID, wa_id="5511900000002", name="Ana", wamid="wamid.COST", text="oi")
    assert post_signed(client, body).status_code == 200

    with CaptureQueriesContext(connection) as applying:
        assert inbound.drain(limit=1) == 1
    with CaptureQueriesContext(connection) as sending:
        assert outbox.drain() == 2

    assert [replied(sent) for sent in fake_graph.sent()[-2:]] == [
        "Olá, Ana! 👋 Bem-vindo(a) ao nosso atendimento.", "Como podemos ajudar? Escolha uma opção:"]
    assert len(applying) <= APPLY_QUERIES, [query["sql"][:80] for query in applying]
    assert len(sending) <= SEND_QUERIES[connection.vendor], [query["sql"][:80] for query in sending]


@pytest.mark.parametrize("message", [
    pytest.param({"type": "interactive", "interactive": [{"button_reply": {"id": "d1"}}]}, id="interactive-list"),
    pytest.param({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": "d1"}},
                 id="reply-as-string"),
    pytest.param({"type": "interactive", "interactive": {"button_reply": {"id": ["d1"]}}}, id="id-as-list"),
    pytest.param({"type": "button", "button": ["payload"]}, id="button-list"),
    pytest.param({"type": "button", "button": {"payload": {"id": 1}, "text": "Vendas"}}, id="payload-object"),
    pytest.param({"type": "text", "text": ["oi"]}, id="text-list"),
])
def test_the_bot_answers_whatever_shape_a_message_comes_in(client, run_tasks, message):
    import json
    import time

    from django_tasks_db.models import DBTaskResult

    body = json.loads(customer_message(phone_number_id=PNID, wa_id=WA_ID, name="Ana", wamid="wamid.F1", text="x"))
    body["entry"][0]["changes"][0]["value"]["messages"][0] = {
        "from": WA_ID, "id": "wamid.F1", "timestamp": str(int(time.time())), **message}
    assert post_signed(client, json.dumps(body).encode()).status_code == 200
    run_tasks()
    # The turn ran where the message was applied: no safety-net task was left for a failed one.
    assert not DBTaskResult.objects.filter(task_path="chatbot.conversation.handle_inbound_message").exists()
    stored = Message.objects.get(wamid="wamid.F1")
    assert Message.objects.filter(session=stored.session, direction="out", source="bot").exists()


def test_the_answers_a_flow_collects_are_shown_to_operators(says, client, django_user_model):
    from django.contrib.auth.models import Group

    from chatbot.dashboard.permissions import OPERATORS_GROUP
    from chatbot.models import Flow, FlowOption, FlowStep

    flow = Flow.objects.create(name="Pedidos", menu_title="Rastrear pedido")
    ask = FlowStep.objects.create(flow=flow, name="Número", text="Qual o número do pedido?", save_as="pedido")
    FlowOption.objects.create(step=ask, title="Falar com atendente", action="handoff")
    Flow.objects.filter(pk=flow.pk).update(first_step=ask)
    says("oi")
    says("Rastrear pedido")
    says("#4521")
    assert session().data == {"pedido": "#4521"}
    operator = django_user_model.objects.create_user("ana")
    operator.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    client.force_login(operator)
    page = client.get(f"/chatbot/dashboard/conversations/{session().pk}/").content.decode()
    assert "<dt>pedido</dt><dd>#4521</dd>" in page


@pytest.mark.django_db(transaction=True)
def test_a_business_number_seen_first_is_shared_with_other_threads_only_once_it_commits():
    # The worker's threads share the snapshot: a row another thread's transaction cannot see yet
    # would fail its commit (foreign key).
    conversation.load_config()
    numbers = conversation._config_cache["numbers"]
    with transaction.atomic():
        number = conversation.business_number("106540352242999", "+55 11 3456-0000")
        assert "106540352242999" not in numbers
    assert numbers["106540352242999"] == number
    assert conversation.business_number("106540352242999") is numbers["106540352242999"]


def test_a_marketing_templates_parar_promocoes_button_opts_out_at_once(client, fake_graph, run_tasks):
    document = load_payload("button")
    message = document["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update(id="wamid.STOPBUTTON", timestamp=str(int(clock.time())),
                   button={"payload": "STOP_PROMOTIONS", "text": "Parar promoções"})
    assert post_signed(client, json.dumps(document).encode()).status_code == 200
    run_tasks()
    contact = Contact.objects.get(wa_id=message["from"])
    assert contact.opted_out and contact.opted_out_at is not None
    assert fake_graph.sent()[-1]["text"]["body"] == BotSettings.load().opt_out_done_text
