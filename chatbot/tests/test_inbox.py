"""The operators' inbox over HTTP (chatbot/dashboard/inbox.py): the queue, team safety, labels,
bulk actions, search, reopening, starting a conversation, the pulse and the live updates."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from chatbot.models import (
    BotSettings,
    ContactAttribute,
    Department,
    Label,
    Message,
    OperatorProfile,
    Session,
    Template,
)

from .helpers import make_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_ana(client, ana):
    client.force_login(ana)
    return client


def url(name, *args):
    return reverse(f"chatbot:{name}", args=args)


def act(client, session, action, **data):
    return client.post(url("dashboard-conversation-action", session.pk), {"action": action, **data}, follow=True)


def flash(response):
    return [str(message) for message in response.context["messages"]]


# --- The queue ---------------------------------------------------------------------------------


def test_waiting_customers_are_listed_oldest_first_with_their_wait(as_ana):
    now = timezone.now()
    for name, minutes in (("Recente", 2), ("Antiga", 40), ("Meio", 10)):
        session = make_session(wa_id=f"55119{minutes:08d}", name=name, status=Session.Status.WAITING)
        Session.objects.filter(pk=session.pk).update(waiting_since=now - timedelta(minutes=minutes))
    response = as_ana.get(url("dashboard-conversations"), {"status": "waiting"})
    assert [s.contact.name for s in response.context["page"]] == ["Antiga", "Meio", "Recente"]
    assert "aguardando 40 min" in response.content.decode()


def test_the_preview_is_the_customers_last_words_without_formatting_marks(as_ana):
    session = make_session(name="Joana", messages=0)
    Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                           direction="in", source="customer", type="text", text="Quero o *plano* _anual_",
                           status="received")
    Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                           direction="out", source="bot", type="text", text="Certo! Você está na fila de *Vendas*",
                           status="sent")
    body = as_ana.get(url("dashboard-conversations")).content.decode()
    assert "Quero o plano anual" in body and "fila de" not in body


def test_numbers_are_written_as_people_write_them(as_ana):
    make_session(wa_id="5511970000032", name="")
    assert "+55 11 97000-0032" in as_ana.get(url("dashboard-conversations")).content.decode()


def test_take_next_gives_the_oldest_waiting_in_my_departments(as_ana, ana):
    mine, other = Department.objects.create(name="Vendas"), Department.objects.create(name="Financeiro")
    mine.operators.add(ana)
    now = timezone.now()
    sessions = {}
    for name, department, minutes in (("Outra fila", other, 60), ("Nova", mine, 5), ("Velha", mine, 30)):
        session = make_session(wa_id=f"55119{minutes:08d}", name=name, status=Session.Status.WAITING)
        Session.objects.filter(pk=session.pk).update(department=department,
                                                     waiting_since=now - timedelta(minutes=minutes))
        sessions[name] = session
    response = as_ana.post(url("dashboard-take-next"), follow=True)
    taken = Session.objects.get(pk=sessions["Velha"].pk)
    assert (taken.status, taken.assigned_to) == ("open", ana)
    assert response.request["PATH_INFO"] == url("dashboard-conversation", taken.pk)
    assert "Velha" in flash(response)[0]
    as_ana.post(url("dashboard-take-next"), follow=True)
    as_ana.post(url("dashboard-take-next"), follow=True)
    assert Session.objects.get(pk=sessions["Outra fila"].pk).assigned_to is None  # not her department
    assert flash(as_ana.post(url("dashboard-take-next"), follow=True)) == [
        "Ninguém está esperando nos seus departamentos."]


# --- Team safety ----------------------------------------------------------------------------


def test_taking_a_colleagues_conversation_must_be_confirmed(as_ana, bia):
    session = make_session(status=Session.Status.OPEN)
    Session.objects.filter(pk=session.pk).update(assigned_to=bia)
    page = as_ana.get(url("dashboard-conversation", session.pk)).content.decode()
    assert "bia está atendendo" in page
    assert 'data-confirm="bia está atendendo esta conversa. Assumir mesmo assim?"' in page

    response = act(as_ana, session, "take")
    assert Session.objects.get(pk=session.pk).assigned_to == bia
    assert flash(response) == ["bia está atendendo esta conversa: confirme para assumir."]

    response = act(as_ana, session, "take", override="1")
    assert Session.objects.get(pk=session.pk).assigned_to.username == "ana"
    assert flash(response) == ["A conversa agora é sua."]


def test_answering_in_a_colleagues_conversation_must_be_confirmed_and_loses_no_text(as_ana, bia, fake_graph):
    session = make_session(status=Session.Status.OPEN)
    Session.objects.filter(pk=session.pk).update(assigned_to=bia)
    response = as_ana.post(url("dashboard-conversation-reply", session.pk), {"text": "Posso ajudar?"})
    assert response.status_code == 400
    assert "Posso ajudar?</textarea>" in response.content.decode()
    assert not Message.objects.filter(direction="out").exists()

    as_ana.post(url("dashboard-conversation-reply", session.pk), {"text": "Posso ajudar?", "override": "1"})
    sent = Message.objects.get(direction="out")
    assert (sent.text, sent.sent_by.username) == ("Posso ajudar?", "ana")
    assert Session.objects.get(pk=session.pk).assigned_to == bia  # answering is not taking it from her


def test_the_live_update_carries_a_status_operator_and_department_change(as_ana, bia, client):
    session = make_session(status=Session.Status.WAITING)
    page = as_ana.get(url("dashboard-conversation", session.pk))
    mark = page.context["mark"]
    updates = url("dashboard-conversation-updates", session.pk)
    assert as_ana.get(updates, {"mark": mark}).json() == {"mark": mark, "changed": False}

    sales = Department.objects.create(name="Vendas")
    Session.objects.filter(pk=session.pk).update(status="open", assigned_to=bia, department=sales)
    update = as_ana.get(updates, {"mark": mark}).json()
    assert update["changed"] and update["state"] == f"open|open|{bia.pk}"
    assert "bia está atendendo" in update["head"] and "Vendas" in update["head"]
    assert "Assumir mesmo assim?" in update["actions"]


def test_an_operator_sees_who_else_has_the_conversation_open(as_ana, bia, client):
    session = make_session()
    mark = as_ana.get(url("dashboard-conversation", session.pk)).context["mark"]
    other = type(client)()
    other.force_login(bia)
    other.get(url("dashboard-conversation", session.pk))
    update = as_ana.get(url("dashboard-conversation-updates", session.pk), {"mark": mark}).json()
    assert "bia também está com ela aberta" in update["head"]
    OperatorProfile.objects.filter(user=bia).update(viewing_at=timezone.now() - timedelta(seconds=30))
    assert "também" not in as_ana.get(url("dashboard-conversation-updates", session.pk)).json()["head"]


# --- Actions and their feedback ----------------------------------------------------------------


def test_each_action_says_what_it_did(as_ana, bia):
    session = make_session(status=Session.Status.WAITING)
    support = Department.objects.create(name="Suporte")
    assert flash(act(as_ana, session, "take")) == ["A conversa agora é sua."]
    assert flash(act(as_ana, session, "transfer", department=support.pk)) == ["Transferida para Suporte."]
    assert flash(act(as_ana, session, "assign", user=bia.pk)) == ["Atribuída a bia."]
    assert flash(act(as_ana, session, "return")) == ["O robô volta a atender este cliente."]
    assert flash(act(as_ana, session, "close")) == ["Conversa encerrada."]
    assert flash(act(as_ana, session, "take")) == ["Esta conversa está encerrada."]


def test_the_assign_menu_preselects_nobody(as_ana):
    session = make_session()
    page = as_ana.get(url("dashboard-conversation", session.pk)).content.decode()
    assert "selected" not in page[page.index('name="user"'):page.index("</select>", page.index('name="user"'))]


def test_a_closed_conversation_is_reopened_with_the_operator(as_ana, ana):
    session = make_session(status=Session.Status.CLOSED)
    page = as_ana.get(url("dashboard-conversation", session.pk)).content.decode()
    assert 'value="reopen"' in page and 'id="reply-form"' not in page
    response = act(as_ana, session, "reopen")
    session.refresh_from_db()
    assert (session.status, session.assigned_to, session.closed_at) == ("open", ana, None)
    assert flash(response) == ["Conversa reaberta."]


def test_reopening_leads_to_the_customers_current_conversation_when_there_is_one(as_ana):
    old = make_session(status=Session.Status.CLOSED)
    current = Session.objects.create(contact=old.contact, phone_number=old.phone_number, status="bot")
    response = act(as_ana, old, "reopen")
    assert response.request["PATH_INFO"] == url("dashboard-conversation", current.pk)
    assert Session.objects.get(pk=old.pk).status == "closed"


def test_the_customer_is_told_of_a_transfer_and_of_the_return_to_the_bot(as_ana, run_tasks, fake_graph):
    session = make_session(status=Session.Status.WAITING)
    act(as_ana, session, "transfer", department=Department.objects.create(name="Suporte").pk)
    act(as_ana, session, "return")
    run_tasks()
    texts = [sent["text"]["body"] for sent in fake_graph.sent()]
    assert texts == [BotSettings.load().transfer_text.replace("{department}", "Suporte"),
                     BotSettings.load().return_to_bot_text]


def test_variables_in_a_reply_are_filled_when_sent(as_ana, ana):
    session = make_session(name="Maria Souza", status=Session.Status.OPEN)
    as_ana.post(url("dashboard-conversation-reply", session.pk),
                {"text": "Oi {first_name}! Sou {operator}. Confirmo o cadastro de {name}."})
    assert Message.objects.get(direction="out").text == "Oi Maria! Sou Ana. Confirmo o cadastro de Maria Souza."


# --- Labels, bulk actions, search --------------------------------------------------------------


def test_labels_on_a_conversation_and_the_list_filtered_by_one(as_ana):
    vip, late = Label.objects.create(name="VIP", color=Label.Color.PURPLE), Label.objects.create(name="Atraso")
    labelled, other = make_session(name="Com etiqueta"), make_session(wa_id="5511900000001", name="Sem")
    response = as_ana.post(url("dashboard-conversation-labels", labelled.pk), {"labels": [vip.pk, late.pk]},
                           follow=True)
    assert flash(response) == ["Etiquetas salvas."]
    assert set(labelled.labels.all()) == {vip, late}
    page = as_ana.get(url("dashboard-conversations"), {"label": vip.pk})
    assert [s.pk for s in page.context["page"]] == [labelled.pk]
    assert 'class="label label-purple">VIP</span>' in page.content.decode()
    assert other.labels.count() == 0


def test_a_label_that_does_not_exist_is_refused(as_ana):
    session = make_session()
    assert as_ana.post(url("dashboard-conversation-labels", session.pk), {"labels": [999]}).status_code == 404


def test_bulk_actions_assign_label_and_close_the_ticked_conversations(as_ana, bia):
    sessions = [make_session(wa_id=f"551190000000{index}", name=f"C{index}") for index in range(3)]
    ticked = [sessions[0].pk, sessions[1].pk]
    vip = Label.objects.create(name="VIP")
    response = as_ana.post(url("dashboard-bulk"), {"action": "label", "label": vip.pk, "sessions": ticked},
                           follow=True)
    assert flash(response) == ["2 conversas atualizadas."]
    assert sorted(vip.sessions.values_list("pk", flat=True)) == ticked
    as_ana.post(url("dashboard-bulk"), {"action": "assign", "user": bia.pk, "sessions": ticked}, follow=True)
    assert {s.assigned_to for s in Session.objects.filter(pk__in=ticked)} == {bia}
    response = as_ana.post(url("dashboard-bulk"), {"action": "close", "sessions": [sessions[2].pk]}, follow=True)
    assert flash(response) == ["1 conversa atualizada."]
    assert Session.objects.get(pk=sessions[2].pk).status == "closed"


def test_bulk_actions_refuse_a_conversation_out_of_sight_and_an_incomplete_choice(as_ana, bia):
    hidden = make_session()
    Session.objects.filter(pk=hidden.pk).update(department=Department.objects.create(name="RH", restricted=True))
    response = as_ana.post(url("dashboard-bulk"), {"action": "close", "sessions": [hidden.pk]}, follow=True)
    assert flash(response) == ["Escolha as conversas e o que fazer com elas."]
    assert Session.objects.get(pk=hidden.pk).status != "closed"
    visible = make_session(wa_id="5511900000009")
    response = as_ana.post(url("dashboard-bulk"), {"action": "assign", "sessions": [visible.pk]}, follow=True)
    assert flash(response) == ["Escolha as conversas e o que fazer com elas."]


@pytest.mark.parametrize("query", ["entrega", "ENTREGA", "açai", "acai", "Açaí amanhã"])
def test_search_finds_message_text_ignoring_case_and_accents(as_ana, query):
    session = make_session(name="Beatriz", messages=0)
    Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                           direction="in", source="customer", type="text", status="received",
                           text="Vocês fazem entrega de açaí amanhã?")
    make_session(wa_id="5511900000001", name="Outro")
    response = as_ana.get(url("dashboard-conversations"), {"q": query})
    assert [s.contact.name for s in response.context["page"]] == ["Beatriz"]
    assert "Vocês fazem entrega de açaí amanhã?" in response.content.decode()  # the matching message


def test_search_finds_names_without_accents(as_ana):
    make_session(name="João Conceição")
    response = as_ana.get(url("dashboard-conversations"), {"q": "joao conceicao"})
    assert [s.contact.name for s in response.context["page"]] == ["João Conceição"]


# --- The contact: attributes, labels, starting a conversation -------------------------------


def test_attributes_are_kept_on_the_contact(as_ana):
    ContactAttribute.objects.create(key="cpf", name="CPF")
    ContactAttribute.objects.create(key="plano", name="Plano")
    session = make_session()
    page = url("dashboard-conversation", session.pk)
    response = as_ana.post(url("dashboard-contact-attributes", session.contact.pk),
                           {"cpf": " 123.456.789-09 ", "plano": "", "next": page, "stray": "x"}, follow=True)
    assert response.request["PATH_INFO"] == page
    session.contact.refresh_from_db()
    assert session.contact.attributes == {"cpf": "123.456.789-09"}
    assert 'value="123.456.789-09"' in response.content.decode()


def test_next_never_leads_off_the_site(as_ana):
    session = make_session()
    response = as_ana.post(url("dashboard-contact-labels", session.contact.pk), {"next": "https://evil.example/"})
    assert response["Location"] == url("dashboard-contact", session.contact.pk)


def test_a_conversation_is_started_with_free_text_inside_the_window(as_ana, ana):
    session = make_session(status=Session.Status.CLOSED)
    response = as_ana.post(url("dashboard-contact-start", session.contact.pk), {"text": "Oi {first_name}!"},
                           follow=True)
    started = Session.objects.exclude(status="closed").get(contact=session.contact)
    assert (started.status, started.assigned_to) == ("open", ana)
    assert response.request["PATH_INFO"] == url("dashboard-conversation", started.pk)
    assert Message.objects.get(direction="out", session=started).text == "Oi Cliente!"


def test_outside_the_window_only_a_template_starts_a_conversation(as_ana):
    session = make_session(window=False, status=Session.Status.CLOSED)
    template = Template.objects.create(name="retorno", language="pt_BR", category="UTILITY", status="APPROVED",
                                       components=[{"type": "BODY", "text": "Olá {{1}}, podemos falar?"}])
    contact_url = url("dashboard-contact", session.contact.pk)
    page = as_ana.get(contact_url).content.decode()
    assert 'data-text="Olá {{1}}, podemos falar?"' in page and 'name="param-' in page
    response = as_ana.post(url("dashboard-contact-start", session.contact.pk), {"text": "Oi"}, follow=True)
    assert flash(response) == ["Mais de 24 horas desde a última mensagem do cliente: só um modelo aprovado pode "
                               "ser enviado."]
    assert not Session.objects.exclude(status="closed").filter(contact=session.contact).exists()
    as_ana.post(url("dashboard-contact-start", session.contact.pk),
                {"template": template.pk, f"param-{template.pk}": "Cliente"})
    sent = Message.objects.get(direction="out", type="template")
    assert sent.payload["components"][0]["parameters"] == [{"type": "text", "text": "Cliente"}]


# --- Notifications --------------------------------------------------------------------------


def test_the_pulse_counts_my_queue_and_my_unread_messages(as_ana, ana):
    waiting = make_session(status=Session.Status.WAITING)
    mine = make_session(wa_id="5511900000001", name="Minha", status=Session.Status.OPEN)
    Session.objects.filter(pk=mine.pk).update(assigned_to=ana, unread=3)
    pulse = as_ana.get(url("dashboard-pulse")).json()
    assert (pulse["waiting"], pulse["unread"]) == (1, 3)
    assert pulse["newest_waiting"]["id"] == waiting.pk
    assert pulse["newest_message"]["session"] == mine.pk and pulse["newest_message"]["name"] == "Minha"
    assert (pulse["sound"], pulse["notifications"]) == (True, True)


def test_an_operator_switches_sound_and_notifications_off(as_ana, ana):
    response = as_ana.post(url("dashboard-preferences"), {"notifications": "on", "next": url("dashboard-contacts")})
    assert response["Location"] == url("dashboard-contacts")
    profile = OperatorProfile.objects.get(user=ana)
    assert (profile.sound, profile.notifications) == (False, True)
    assert as_ana.get(url("dashboard-pulse")).json()["sound"] is False


def test_the_overview_figures_come_alone_for_the_page_to_refresh_them(as_ana):
    make_session(status=Session.Status.WAITING)
    body = as_ana.get(url("dashboard"), {"partial": "1"}).content.decode()
    assert "<html" not in body and "Maior espera" in body


def test_a_search_under_three_letters_looks_at_names_and_numbers_only(as_ana):
    session = make_session(name="Beatriz", messages=0)
    Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                           direction="in", source="customer", type="text", status="received", text="oi")
    make_session(wa_id="5511900000001", name="Zoião")
    response = as_ana.get(url("dashboard-conversations"), {"q": "oi"})
    assert [s.contact.name for s in response.context["page"]] == ["Zoião"]


@pytest.mark.parametrize("few_matches", [2, 500], ids=["many: found by recency", "few: found by the indexes"])
def test_both_ways_of_searching_find_the_same_conversations(as_ana, monkeypatch, few_matches):
    monkeypatch.setattr("chatbot.dashboard.selectors.FEW_MATCHES", few_matches)
    expected = []
    for index in range(4):
        session = make_session(wa_id=f"551190000000{index}", name=f"Cliente {index}", messages=0)
        text = "quero rastrear o pedido" if index % 2 else "bom dia"
        Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                               direction="in", source="customer", type="text", status="received", text=text)
        if index % 2:
            expected.append(session.pk)
    named = make_session(wa_id="5511900000009", name="Rastreador da Silva")
    response = as_ana.get(url("dashboard-conversations"), {"q": "rastre"})
    assert sorted(s.pk for s in response.context["page"]) == sorted([*expected, named.pk])
    previews = {s.pk: s.preview for s in response.context["page"]}
    assert previews[expected[0]] == "quero rastrear o pedido" and previews[named.pk] == "mensagem 0"


def test_the_active_list_puts_the_queue_first_then_the_latest_activity(as_ana):
    now = timezone.now()
    for name, status, minutes in (("Ativa recente", "bot", 1), ("Espera curta", "waiting", 5),
                                  ("Ativa antiga", "open", 50), ("Espera longa", "waiting", 30)):
        session = make_session(wa_id=f"55119{minutes:08d}", name=name, status=status)
        Session.objects.filter(pk=session.pk).update(last_message_at=now - timedelta(minutes=minutes),
                                                     waiting_since=now - timedelta(minutes=minutes))
    names = [s.contact.name for s in as_ana.get(url("dashboard-conversations")).context["page"]]
    assert names == ["Espera longa", "Espera curta", "Ativa recente", "Ativa antiga"]
    names = [s.contact.name for s in as_ana.get(url("dashboard-conversations"), {"sort": "activity"}).context["page"]]
    assert names == ["Ativa recente", "Espera curta", "Espera longa", "Ativa antiga"]
