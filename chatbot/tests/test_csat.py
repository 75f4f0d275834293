"""The satisfaction survey (chatbot/csat.py), from signed webhooks and the dashboard's actions
through the worker to the fake Graph API: when it is asked, what Meta gets, how answers are kept."""

import json
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from chatbot import conversation, csat, documents, handling, lgpd
from chatbot.models import ApiToken, BotSettings, Contact, KeywordRule, Message, Session, Template
from chatbot.tests.helpers import concurrently, load_payload, post_signed
from chatbot.whatsapp import validation
from chatbot.whatsapp.webhook import customer_message

pytestmark = pytest.mark.django_db

PNID = "106540352242922"
WA_ID = "5511987654321"
CLOSING = "Encerramos este atendimento. Se precisar de algo, é só escrever! 😊"
QUESTION = "Como você avalia o nosso atendimento? Escolha uma nota de 1 a 5."
THANKS = "Obrigado pela avaliação! 💚"
COMMENT_QUESTION = "Poxa, sentimos muito. 😕 Conte pra gente o que podemos melhorar (ou digite *pular*)."
GREETING = "Olá, Maria! 👋 Bem-vindo(a) ao nosso atendimento."
SURVEY = {
    "type": "list",
    "body": {"text": QUESTION},
    "action": {"button": "Avaliar", "sections": [{"title": "Avaliar", "rows": [
        {"id": "csat:5", "title": "5 – Ótimo"}, {"id": "csat:4", "title": "4 – Bom"},
        {"id": "csat:3", "title": "3 – Regular"}, {"id": "csat:2", "title": "2 – Ruim"},
        {"id": "csat:1", "title": "1 – Péssimo"}]}]},
}


@pytest.fixture
def says(client, fake_graph, run_tasks):
    """The customer sends a message (text, or a tapped list row id); returns what Meta got back."""
    counter = iter(range(10**6))

    def send(text="", choice=""):
        body = customer_message(phone_number_id=PNID, wa_id=WA_ID, name="Maria Souza",
                                wamid=f"wamid.CSAT{next(counter)}", text=text, choice=choice)
        return deliver(client, body, fake_graph, run_tasks)

    return send


@pytest.fixture
def taps_button(client, fake_graph, run_tasks):
    """The customer taps a quick-reply button of a template (payloads/button.json, made current)."""

    def tap(text, payload=None):
        document = load_payload("button")
        message = document["entry"][0]["changes"][0]["value"]["messages"][0]
        message.update(id=f"wamid.BUTTON{time.monotonic_ns()}", timestamp=str(int(time.time())),
                       button={"payload": payload or text, "text": text})
        return deliver(client, json.dumps(document).encode(), fake_graph, run_tasks)

    return tap


def deliver(client, body, fake_graph, run_tasks):
    before = len(fake_graph.sent())
    assert post_signed(client, body).status_code == 200
    run_tasks()
    return [shown(sent) for sent in fake_graph.sent()[before:]]


def shown(sent):
    """What the customer reads of a message Meta got: a text, a list's question, a template's name."""
    if sent["type"] == "text":
        return sent["text"]["body"]
    if sent["type"] == "template":
        return f"template:{sent['template']['name']}"
    return sent["interactive"]["body"]["text"]


@pytest.fixture
def handled(says, ana):
    """Maria's conversation, which the operator Ana took (the survey's condition), still open."""
    says("oi")
    session = Session.objects.get(contact__wa_id=WA_ID)
    handling.take(session, ana)
    return Session.objects.get(pk=session.pk)


@pytest.fixture
def closed(handled, run_tasks, fake_graph):
    """Maria's handled conversation, closed by Ana: the survey was sent."""
    conversation.close(handled)
    run_tasks()
    assert shown(fake_graph.sent()[-1]) == QUESTION
    return handled


def survey_sent(session):
    return Message.objects.filter(session=session, direction="out", type__in=["interactive", "template"]).count()


def configure(**changes):
    BotSettings.objects.update(**changes)
    conversation._config_cache["at"] = float("-inf")  # read again now, not after CONFIG_TTL


# --- When it is asked ---------------------------------------------------------------------------


def test_an_operator_closing_in_the_dashboard_sends_the_closing_text_then_the_list(handled, ana, client, fake_graph,
                                                                                    run_tasks):
    client.force_login(ana)
    url = reverse("chatbot:dashboard-conversation-action", args=[handled.pk])
    assert client.post(url, {"action": "close"}).status_code == 302
    run_tasks()
    closing, survey = fake_graph.sent()[-2:]
    assert closing["text"]["body"] == CLOSING
    assert survey["to"] == f"+{WA_ID}" and survey["type"] == "interactive"
    assert survey["interactive"] == SURVEY
    # Within Meta's limits for a list (button ≤ 20, row titles ≤ 24, ids ≤ 200).
    validation.clean_message({key: value for key, value in survey.items() if key != "biz_opaque_callback_data"})
    session = Session.objects.get(pk=handled.pk)
    assert session.status == "closed" and session.csat_asked_at is not None
    sent = Message.objects.get(session=session, type="interactive", direction="out")
    assert (sent.source, sent.status, sent.text) == ("bot", "sent", QUESTION)


def test_a_bulk_close_asks_too(handled, ana, client, run_tasks):
    client.force_login(ana)
    client.post(reverse("chatbot:dashboard-bulk"), {"action": "close", "sessions": [handled.pk]})
    assert survey_sent(handled) == 1


def test_an_inactivity_close_asks_when_an_operator_handled_it(handled, fake_graph, run_tasks):
    Session.objects.filter(pk=handled.pk).update(last_message_at=timezone.now() - timedelta(hours=25))
    assert conversation.sweep() == (1, 0)
    run_tasks()
    assert [shown(sent) for sent in fake_graph.sent()[-2:]] == [CLOSING, QUESTION]
    assert fake_graph.sent()[-1]["interactive"] == SURVEY


def test_a_conversation_only_the_bot_had_gets_no_survey(says, fake_graph, run_tasks):
    says("oi")
    session = Session.objects.get(contact__wa_id=WA_ID)
    conversation.close(session)
    Session.objects.filter(pk=session.pk).update(last_message_at=timezone.now() - timedelta(hours=25))
    conversation.sweep()
    run_tasks()
    assert shown(fake_graph.sent()[-1]) == CLOSING
    assert survey_sent(session) == 0 and Session.objects.get(pk=session.pk).csat_asked_at is None


def test_an_assigned_conversation_closed_by_inactivity_gets_it(says, ana, fake_graph, run_tasks):
    says("oi")
    Session.objects.update(assigned_to=ana, status="open", last_message_at=timezone.now() - timedelta(hours=25))
    conversation.sweep()
    assert survey_sent(Session.objects.get()) == 1


@pytest.mark.parametrize("change", [{"opted_out": True}, {"blocked": True}], ids=["opted-out", "blocked"])
def test_opted_out_and_blocked_customers_are_never_asked(handled, change):
    Contact.objects.filter(wa_id=WA_ID).update(**change)
    conversation.close(handled)
    assert survey_sent(handled) == 0 and Session.objects.get(pk=handled.pk).csat_asked_at is None


def test_no_survey_when_it_is_switched_off(handled):
    configure(csat_enabled=False)
    conversation.close(handled)
    assert survey_sent(handled) == 0


def test_the_bot_closing_a_conversation_an_operator_had_asks_too(handled, says, run_tasks):
    # Ana gave the customer back to the bot, whose keyword rule closes the conversation.
    KeywordRule.objects.create(match="exact", pattern="tchau", action="close", reply_text="Até logo!")
    configure()
    handling.return_to_bot(handled)
    run_tasks()
    assert says("tchau") == ["Até logo!", QUESTION]
    session = Session.objects.get(pk=handled.pk)
    assert session.status == "closed" and session.csat_asked_at is not None


# --- Outside the 24-hour window: the template, or nothing -----------------------------------------


def outside_the_window():
    Contact.objects.filter(wa_id=WA_ID).update(last_inbound_at=timezone.now() - timedelta(days=2))


def survey_template(status="APPROVED", body="Como foi o nosso atendimento?"):
    buttons = [{"type": "QUICK_REPLY", "text": word} for word in ["Ótimo", "Bom", "Regular", "Ruim", "Péssimo"]]
    return Template.objects.create(name="pesquisa_satisfacao", language="pt_BR", category="UTILITY", status=status,
                                   components=[{"type": "BODY", "text": body}, {"type": "BUTTONS", "buttons": buttons}])


def test_outside_the_window_the_approved_template_is_sent(handled, fake_graph, run_tasks):
    survey_template()
    configure(csat_template="pesquisa_satisfacao")
    outside_the_window()
    before = len(fake_graph.sent())
    conversation.close(handled)
    run_tasks()
    [sent] = fake_graph.sent()[before:]  # no closing text: only a template may go now
    assert sent["type"] == "template"
    assert sent["template"] == {"name": "pesquisa_satisfacao", "language": {"code": "pt_BR"}}
    assert Session.objects.get(pk=handled.pk).csat_asked_at is not None


@pytest.mark.parametrize("template", [None, "PENDING", "parameters"])
def test_outside_the_window_no_usable_template_means_no_survey(handled, fake_graph, run_tasks, template):
    if template == "parameters":
        survey_template(body="Olá {{1}}, como foi o atendimento?")
    elif template:
        survey_template(status=template)
    configure(csat_template="pesquisa_satisfacao" if template else "")
    outside_the_window()
    before = len(fake_graph.sent())
    conversation.close(handled)
    run_tasks()
    assert fake_graph.sent()[before:] == []
    assert Session.objects.get(pk=handled.pk).csat_asked_at is None


# --- The answer -----------------------------------------------------------------------------------


def test_a_tapped_row_is_the_answer_and_opens_no_conversation(closed, says):
    assert says("4 – Bom", choice="csat:4") == [THANKS]  # no greeting: the bot did not take a turn
    session = Session.objects.get()
    assert (session.pk, session.status, session.csat_score) == (closed.pk, "closed", 4)
    assert session.csat_answered_at >= session.csat_asked_at
    answer = Message.objects.filter(direction="in").latest("pk")
    assert answer.session_id == closed.pk  # in the closed conversation's thread
    assert Session.objects.get().unread == 0


def test_a_template_quick_reply_is_the_answer(handled, taps_button, run_tasks):
    survey_template()
    configure(csat_template="pesquisa_satisfacao")
    outside_the_window()
    conversation.close(handled)
    run_tasks()
    assert taps_button("Bom") == [THANKS]
    assert Session.objects.get().csat_score == 4


@pytest.mark.parametrize("text", ["4", " 4 ", "nota 4", "4 estrelas", "4/5", "4 de 5", "Bom", "⭐⭐⭐⭐"])
def test_a_text_that_is_only_a_score_is_the_answer(closed, says, text):
    assert says(text) == [THANKS]
    assert Session.objects.get().csat_score == 4


def test_a_text_that_is_no_answer_opens_a_new_conversation_as_before(closed, says):
    assert says("oi, tenho outra dúvida")[0] == GREETING
    assert Session.objects.get(pk=closed.pk).csat_score is None
    assert Session.objects.count() == 2
    says("5")  # the survey is over: this goes to the new conversation
    assert Session.objects.get(pk=closed.pk).csat_score is None


def test_a_low_score_asks_for_a_comment_and_keeps_it(closed, says):
    assert says("2 – Ruim", choice="csat:2") == [COMMENT_QUESTION]
    assert says("Demoraram muito para responder.") == [THANKS]
    session = Session.objects.get()
    assert (session.csat_score, session.csat_comment) == (2, "Demoraram muito para responder.")
    assert session.csat_comment_asked_at is not None
    assert says("obrigada")[0] == GREETING  # done: the next message is a new conversation
    assert Session.objects.get(pk=closed.pk).csat_comment == "Demoraram muito para responder."


@pytest.mark.parametrize("skip", ["pular", "Não"])
def test_the_comment_can_be_skipped(closed, says, skip):
    assert says("1") == [COMMENT_QUESTION]
    assert says(skip) == [THANKS]
    assert (Session.objects.get().csat_score, Session.objects.get().csat_comment) == (1, "")


def test_without_a_comment_question_a_low_score_is_thanked(closed, says):
    configure(csat_comment_question="")
    assert says("1") == [THANKS]


def test_a_second_answer_changes_nothing(closed, says):
    says("5 – Ótimo", choice="csat:5")
    assert says("1 – Péssimo", choice="csat:1") == []  # tapped again: kept, unanswered, no conversation
    session = Session.objects.get()
    assert (session.csat_score, session.status) == (5, "closed")


def test_an_answer_a_day_late_is_a_new_conversation(closed, says):
    Session.objects.filter(pk=closed.pk).update(csat_asked_at=timezone.now() - timedelta(hours=25))
    assert says("5")[0] == GREETING
    assert Session.objects.get(pk=closed.pk).csat_score is None


def test_the_rating_is_shown_in_the_conversation(closed, says, client, ana):
    client.force_login(ana)
    waiting = client.get(reverse("chatbot:dashboard-conversation", args=[closed.pk])).content.decode()
    assert "pesquisa enviada, sem resposta" in waiting
    assert "Uma resposta à pesquisa de satisfação fica nesta conversa." in waiting  # not a new conversation
    says("2")
    says("O produto veio errado")
    page = client.get(reverse("chatbot:dashboard-conversation", args=[closed.pk])).content.decode()
    assert "<strong>2/5</strong>" in page and "<q>O produto veio errado</q>" in page
    assert "5 – Ótimo" in page  # the survey in the thread, like any bot message
    assert "Uma resposta à pesquisa" not in page


# --- Once per conversation ------------------------------------------------------------------------


def test_never_asked_twice(handled, ana, run_tasks):
    conversation.close(handled)
    assert conversation.close(handled) is False
    reopened = handling.reopen(Session.objects.get(pk=handled.pk), ana)
    conversation.close(reopened)
    assert survey_sent(handled) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrent transactions need PostgreSQL")
@pytest.mark.parametrize("run", range(3))
def test_two_operators_closing_at_once_send_one_survey(django_user_model, run):
    contact = Contact.objects.create(wa_id=WA_ID, name="Maria", last_inbound_at=timezone.now())
    operator = django_user_model.objects.create_user(f"ana{run}")
    session = Session.objects.create(contact=contact, phone_number=conversation.business_number(PNID),
                                     status="open", assigned_to=operator, first_response_at=timezone.now())

    results = concurrently(lambda _: conversation.close(Session.objects.get(pk=session.pk)), range(2))

    assert sorted(results) == [False, True]
    assert survey_sent(session) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrent transactions need PostgreSQL")
@pytest.mark.parametrize("run", range(3))
def test_two_answers_applied_at_once_by_two_workers_record_one(run):
    from django.test import Client

    from chatbot import inbound

    now = timezone.now()
    contact = Contact.objects.create(wa_id=WA_ID, name="Maria", last_inbound_at=now)
    session = Session.objects.create(contact=contact, phone_number=conversation.business_number(PNID),
                                     status="closed", closed_at=now, first_response_at=now, csat_asked_at=now)
    for score in (5, 1):
        body = customer_message(phone_number_id=PNID, wa_id=WA_ID, name="Maria", wamid=f"wamid.RACE{run}{score}",
                                text=f"{score} – ...", choice=f"csat:{score}")
        assert post_signed(Client(), body).status_code == 200

    assert sum(concurrently(lambda _: inbound.drain(limit=1), range(2))) == 2

    session.refresh_from_db()
    assert session.csat_score in (5, 1) and Session.objects.count() == 1  # one answer; the other changed nothing
    replies = list(Message.objects.filter(direction="out").values_list("text", flat=True))
    assert replies == ([THANKS] if session.csat_score == 5 else [COMMENT_QUESTION])
    assert Message.objects.filter(direction="in", session=session).count() == 2


# --- The answer kept: export, erasure, retention ----------------------------------------------------


def test_the_export_has_each_sessions_csat(closed, says, client):
    says("2")
    says("Faltou informação")
    says("oi de novo")  # a second conversation, not rated
    token = ApiToken.objects.create_token("crm", scopes=["export"])[1]
    document = client.get(f"/chatbot/api/contacts/{WA_ID}/", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    rated, new = document["sessions"]
    session = Session.objects.get(pk=closed.pk)
    assert rated["csat"] == {"score": 2, "comment": "Faltou informação",
                             "answered_at": session.csat_answered_at.isoformat()}
    assert new["csat"] is None
    assert document == json.loads(json.dumps(documents.contact_export(session.contact)))  # one builder


def test_anonymize_blanks_the_comment_and_keeps_the_score(closed, says):
    says("1")
    says("Atendente grosseiro, meu CPF é 123.456.789-00")
    lgpd.anonymize(Contact.objects.get(wa_id=WA_ID))
    session = Session.objects.get(pk=closed.pk)
    assert (session.csat_score, session.csat_comment) == (1, "")
    assert not Message.objects.filter(text__contains="123.456").exists()


def test_retention_blanks_old_comments(closed, says):
    says("1")
    says("Ninguém me respondeu")
    Session.objects.update(closed_at=timezone.now() - timedelta(days=120))
    lgpd.purge(days=90)
    assert Session.objects.values_list("csat_score", "csat_comment").get() == (1, "")


# --- The pure part ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "choice", "score"), [
    ("", "csat:3", 3), ("5 – Ótimo", "csat:5", 5), ("", "csat:9", None), ("", "csat:", None),
    ("5", "", 5), ("nota 1", "", 1), ("1 estrela", "", 1), ("5/5", "", 5), ("péssimo", "", 1), ("ÓTIMO!", "", 5),
    ("⭐️⭐️⭐️", "", 3), ("", "Regular", 3),
    ("6", "", None), ("0", "", None), ("15", "", None), ("5 reais", "", None), ("bom dia", "", None),
    ("ok", "", None), ("", "d1", None), ("⭐" * 6, "", None),
])
def test_what_counts_as_a_score(text, choice, score):
    assert csat.rating(text, choice) == score
