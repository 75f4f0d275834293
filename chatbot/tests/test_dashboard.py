import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from chatbot.dashboard.selectors import THREAD_PAGE
from chatbot.management.commands.bootstrap import OPERATORS_GROUP
from chatbot.models import (
    CannedReply,
    Contact,
    ContactAttribute,
    DailyStats,
    Department,
    Label,
    Message,
    Note,
    OperatorProfile,
    RateLimit,
    Session,
    Template,
    WebhookEvent,
)

from .helpers import make_session, payload_bytes, post_signed

pytestmark = pytest.mark.django_db

XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"


def detail_url(session, name="dashboard-conversation"):
    return reverse(f"chatbot:{name}", args=[session.pk])


PAGES = ["dashboard", "dashboard-conversations", "dashboard-contacts", "dashboard-templates", "dashboard-webhooks"]


# --- Access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, name):
    response = client.get(reverse(f"chatbot:{name}"))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_a_logged_in_user_who_is_not_an_operator_is_refused(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("visitante", password="x"))
    assert client.get(reverse("chatbot:dashboard")).status_code == 403


@pytest.mark.parametrize("name", [name for name in PAGES if name != "dashboard-webhooks"])
def test_operators_see_every_page(as_operator, name):
    make_session()
    assert as_operator.get(reverse(f"chatbot:{name}")).status_code == 200


def test_the_webhook_log_holds_everyones_messages_so_only_admins_see_it(as_operator, client, owner):
    event = WebhookEvent.objects.create(body="{}")
    urls = [reverse("chatbot:dashboard-webhooks"), reverse("chatbot:dashboard-webhook", args=[event.pk])]
    for url in urls:
        assert as_operator.get(url).status_code == 403
    assert as_operator.post(reverse("chatbot:dashboard-webhook-reprocess", args=[event.pk])).status_code == 403
    assert reverse("chatbot:dashboard-webhooks") not in as_operator.get(reverse("chatbot:dashboard")).content.decode()
    client.force_login(owner)
    for url in urls:
        assert client.get(url).status_code == 200


def test_login_lands_on_the_overview(client, operator):
    response = client.post(reverse("login"), {"username": "ana", "password": "x"})
    assert response.status_code == 302
    assert response["Location"] == reverse("chatbot:dashboard")


def test_login_is_throttled_after_a_burst_of_wrong_passwords(client, operator):
    for _attempt in range(5):
        assert client.post(reverse("login"), {"username": "ana", "password": "errada"}).status_code == 200
    response = client.post(reverse("login"), {"username": "ana", "password": "x"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another name from the same address is not locked out by this one.
    assert client.post(reverse("login"), {"username": "outra", "password": "errada"}).status_code == 200


def test_every_dashboard_post_needs_the_csrf_token(operator):
    session = make_session()
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post(detail_url(session, "dashboard-conversation-reply"), {"text": "oi"})
    assert response.status_code == 403
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()


def test_export_and_anonymize_are_for_admins_only(as_operator):
    contact = make_session().contact
    for name in ("dashboard-contact-export", "dashboard-contact-anonymize"):
        assert as_operator.get(reverse(f"chatbot:{name}", args=[contact.pk])).status_code == 403


# --- Overview --------------------------------------------------------------------------------


def test_overview_counts_today_queue_failures_and_mode(as_operator):
    waiting = make_session(status=Session.Status.WAITING, messages=2)
    Session.objects.filter(pk=waiting.pk).update(waiting_since=timezone.now() - timedelta(minutes=12))
    Message.objects.create(phone_number=waiting.phone_number, contact=waiting.contact, session=waiting,
                           direction=Message.Direction.OUT, source=Message.Source.BOT, type="text", text="x",
                           status=Message.Status.FAILED, failed_at=timezone.now(), error_code=131047,
                           pricing_category="service")
    stats = as_operator.get(reverse("chatbot:dashboard")).context["stats"]
    assert (stats["messages_in"], stats["messages_out"]) == (2, 1)
    assert stats["sessions"] == {"bot": 0, "waiting": 1, "open": 0}
    assert stats["oldest_wait"] >= timedelta(minutes=12)
    assert stats["failed_24h"] == 1
    assert stats["whatsapp"]["mode"] == "sandbox"
    assert stats["days"]["points"][-1]["in"] == 2
    assert dict(stats["pricing"]) == {"service": 1}


def test_finished_days_are_counted_once_and_outlive_the_purge(as_operator):
    session = make_session(messages=0)
    today = timezone.localtime().replace(hour=12, minute=0)
    for days_ago, count in ((3, 2), (1, 4)):
        for _index in range(count):
            Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                                   direction="out", source="bot", type="text", status="delivered",
                                   pricing_category="utility", timestamp=today - timedelta(days=days_ago))
    chart = lambda: {p["label"]: p["out"] for p in as_operator.get(reverse("chatbot:dashboard"))  # noqa: E731
                     .context["stats"]["days"]["points"]}
    days = chart()
    assert days[(today - timedelta(days=3)).date()] == 2 and days[(today - timedelta(days=1)).date()] == 4
    assert DailyStats.objects.get(day=(today - timedelta(days=3)).date()).sent == 2
    Message.objects.all().delete()  # the retention purge
    DailyStats.objects.update(counted_at=timezone.now() - timedelta(minutes=11))
    days = chart()
    assert days[(today - timedelta(days=3)).date()] == 2  # final: kept
    assert days[(today - timedelta(days=1)).date()] == 0  # yesterday: counted again


# --- Conversations ---------------------------------------------------------------------------


def test_the_list_filters_by_status_and_searches_by_name_or_number(as_operator):
    make_session("5511911111111", "Joana", status=Session.Status.WAITING)
    make_session("5521922222222", "Pedro")
    url = reverse("chatbot:dashboard-conversations")
    names = lambda response: [s.contact.name for s in response.context["page"]]  # noqa: E731
    assert names(as_operator.get(url, {"status": "waiting"})) == ["Joana"]
    assert names(as_operator.get(url, {"q": "pedro"})) == ["Pedro"]
    assert names(as_operator.get(url, {"q": "21 9222"})) == ["Pedro"]


def test_the_list_sorts_by_the_window_closing_soonest(as_operator):
    soon, later = make_session("5511911111111", "Soon"), make_session("5511922222222", "Later")
    Contact.objects.filter(pk=soon.contact_id).update(last_inbound_at=timezone.now() - timedelta(hours=23))
    Contact.objects.filter(pk=later.contact_id).update(last_inbound_at=timezone.now() - timedelta(hours=1))
    response = as_operator.get(reverse("chatbot:dashboard-conversations"), {"sort": "window"})
    assert [s.contact.name for s in response.context["page"]] == ["Soon", "Later"]
    assert "59 min" in response.content.decode()


def test_the_list_partial_is_only_the_rows(as_operator):
    make_session(name="Joana")
    response = as_operator.get(reverse("chatbot:dashboard-conversations"), {"partial": "1"})
    body = response.content.decode()
    assert "Joana" in body and "<li" in body and "<html" not in body


def test_customer_text_is_escaped_everywhere(as_operator):
    session = make_session(name=XSS)
    Message.objects.filter(session=session).update(text=XSS)
    for url in (detail_url(session), reverse("chatbot:dashboard-conversations"),
                reverse("chatbot:dashboard-contact", args=[session.contact_id])):
        body = as_operator.get(url).content.decode()
        assert "<script>alert(2)" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in body


def test_a_conversation_shows_media_location_contacts_reactions_and_quotes(as_operator):
    session = make_session(messages=0)
    common = {"phone_number": session.phone_number, "contact": session.contact, "session": session,
              "direction": Message.Direction.IN, "source": Message.Source.CUSTOMER, "status": "received"}
    image = Message.objects.create(**common, type="image", wamid="w.img", media_status="ready",
                                   media_mime_type="image/jpeg", media_file="media/x.jpg")
    Message.objects.create(**common, type="image", wamid="w.gone", media_status="failed", media_id="123")
    Message.objects.create(**common, type="location", wamid="w.loc",
                           payload={"latitude": -23.5, "longitude": -46.6, "name": "Loja"})
    Message.objects.create(**common, type="contacts", wamid="w.card",
                           payload=[{"name": {"formatted_name": "João"}, "phones": [{"phone": "+55 11 91234-5678"}]}])
    Message.objects.create(**common, type="reaction", wamid="w.react", target_wamid="w.img", text="❤️")
    Message.objects.create(**common, type="text", wamid="w.ask", text="Quanto custa?")
    Message.objects.create(**common, type="text", wamid="w.quote", text="e essa?", reply_to="w.ask")
    body = as_operator.get(detail_url(session)).content.decode()
    assert f'<img src="{reverse("chatbot:media-file", args=[image.pk])}"' in body
    assert "Mídia indisponível." in body or "Media unavailable." in body
    assert "mlat=-23.5&amp;mlon=-46.6" in body and "Loja" in body
    assert "João" in body and "+55 11 91234-5678" in body
    assert '<div class="reactions"><span' in body and "❤️" in body
    assert '<blockquote class="quoted">Quanto custa?</blockquote>' in body


def test_a_failed_send_shows_metas_code_and_the_explanation(as_operator):
    session = make_session()
    Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                           direction=Message.Direction.OUT, source=Message.Source.BOT, type="text", text="x",
                           status=Message.Status.FAILED, failed_at=timezone.now(), error_code=131047,
                           error_title="Re-engagement message")
    body = as_operator.get(detail_url(session), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Error 131047" in body
    assert "24 hours" in body


def test_long_threads_show_the_last_page_with_a_link_to_earlier_ones(as_operator):
    session = make_session(messages=THREAD_PAGE + 30)
    response = as_operator.get(detail_url(session))
    thread = response.context["thread"]
    assert len(thread) == THREAD_PAGE and thread[-1].text == f"mensagem {THREAD_PAGE + 29}"
    older = as_operator.get(detail_url(session), {"before": response.context["older"]}).context["thread"]
    assert [m.text for m in older][:1] == ["mensagem 0"] and len(older) == 30


def test_updates_report_nothing_until_something_changes(as_operator):
    session = make_session()
    page = as_operator.get(detail_url(session))
    last = page.context["thread"][-1].pk
    url = detail_url(session, "dashboard-conversation-updates")
    unchanged = as_operator.get(url, {"mark": page.context["mark"], "after": last}).json()
    assert unchanged["changed"] is False
    Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                           direction=Message.Direction.IN, source=Message.Source.CUSTOMER, type="text", text=XSS,
                           status="received", wamid="w.new")
    changed = as_operator.get(url, {"mark": unchanged["mark"], "after": last}).json()
    assert changed["changed"] is True
    (old_id, old_version, _old), (new_id, new_version, html) = changed["messages"]
    assert old_id == last and new_id > last
    assert "&lt;script&gt;" in html and "<script>" not in html
    # A reaction to the old message gives it a new version (its HTML shows the emoji).
    Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                           direction="in", source="customer", type="reaction", text="👍", status="received",
                           wamid="w.react", target_wamid="wamid.5511987654321.0")
    reacted = as_operator.get(url, {"mark": changed["mark"], "after": new_id}).json()
    assert reacted["messages"][0][1] != old_version and "👍" in reacted["messages"][0][2]
    assert reacted["messages"][1][1] == new_version


def test_more_than_a_page_of_new_messages_reloads_the_page(as_operator):
    session = make_session()
    page = as_operator.get(detail_url(session))
    for index in range(THREAD_PAGE + 1):
        Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                               direction="in", source="customer", type="text", text=f"x{index}", status="received")
    update = as_operator.get(detail_url(session, "dashboard-conversation-updates"),
                             {"mark": page.context["mark"], "after": page.context["thread"][-1].pk}).json()
    assert update["reload"] is True


@pytest.mark.parametrize("query", [{"department": "²"}, {"assignee": "²"}, {"page": "x"}, {"sort": "??"}])
def test_odd_list_parameters_are_ignored(as_operator, query):
    assert as_operator.get(reverse("chatbot:dashboard-conversations"), query).status_code == 200


def test_odd_ids_in_forms_are_404s_not_errors(as_operator):
    session = make_session(window=False)
    assert as_operator.get(detail_url(session), {"before": "²"}).status_code == 200
    assert as_operator.get(detail_url(session, "dashboard-conversation-updates"), {"after": "²"}).status_code == 200
    url = detail_url(session, "dashboard-conversation-action")
    assert as_operator.post(url, {"action": "assign", "user": "abc"}).status_code == 404
    assert as_operator.post(url, {"action": "transfer", "department": "²"}).status_code == 404
    assert as_operator.post(detail_url(session, "dashboard-conversation-template"),
                            {"template": "x"}).status_code == 404


def test_a_new_webhook_message_appears_in_the_updates(as_operator, run_tasks, settings):
    session = make_session(wa_id="5511987654321")
    page = as_operator.get(detail_url(session))
    post_signed(Client(), payload_bytes("text"))
    run_tasks()
    update = as_operator.get(detail_url(session, "dashboard-conversation-updates"),
                             {"mark": page.context["mark"], "after": page.context["thread"][-1].pk}).json()
    assert update["changed"] is True
    assert any("msg in" in html for _id, _version, html in update["messages"])


# --- Replies and actions ---------------------------------------------------------------------


def test_an_operator_reply_reaches_meta_and_takes_the_conversation(as_operator, operator, fake_graph, run_tasks):
    session = make_session()
    response = as_operator.post(detail_url(session, "dashboard-conversation-reply"),
                                {"text": "Olá, como posso ajudar?"})
    assert response.status_code == 302
    run_tasks()
    assert fake_graph.sent()[-1]["text"] == {"body": "Olá, como posso ajudar?"}
    message = Message.objects.get(direction=Message.Direction.OUT)
    assert (message.source, message.sent_by, message.status) == ("operator", operator, "sent")
    session.refresh_from_db()
    assert (session.status, session.assigned_to, session.unread) == ("open", operator, 0)
    assert session.first_response_at is not None


def test_a_reply_with_buttons_is_an_interactive_message(as_operator, fake_graph, run_tasks):
    session = make_session()
    as_operator.post(detail_url(session, "dashboard-conversation-reply"),
                     {"text": "Confirma o pedido?", "button": ["Sim", "Não", ""]})
    run_tasks()
    sent = fake_graph.sent()[-1]["interactive"]
    assert sent["body"] == {"text": "Confirma o pedido?"}
    assert [b["reply"]["title"] for b in sent["action"]["buttons"]] == ["Sim", "Não"]


def test_an_attached_file_is_uploaded_and_shown_in_the_thread(as_operator, settings):
    session = make_session()
    upload = SimpleUploadedFile("nota.pdf", b"%PDF-1.4 fake", content_type="application/pdf")
    as_operator.post(detail_url(session, "dashboard-conversation-reply"), {"text": "Sua nota", "file": upload})
    message = Message.objects.get(direction=Message.Direction.OUT)
    assert message.type == "document"
    assert message.payload["caption"] == "Sua nota" and message.payload["id"].startswith("sandbox.")
    assert message.media_status == "ready" and message.media_file.read() == b"%PDF-1.4 fake"
    assert "nota.pdf" in as_operator.get(detail_url(session)).content.decode()


def test_a_refused_reply_keeps_the_text_and_queues_nothing(as_operator):
    session = make_session()
    response = as_operator.post(detail_url(session, "dashboard-conversation-reply"),
                                {"text": "Escolha", "button": ["Igual", "igual"]}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Escolha</textarea>" in body and "ignoring case" in body
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()


def test_a_closed_window_offers_templates_only_and_sends_one_with_parameters(as_operator, fake_graph, run_tasks):
    session = make_session(window=False)
    template = Template.objects.create(name="pedido_pronto", language="pt_BR", category="UTILITY", status="APPROVED",
                                       components=[{"type": "BODY", "text": "Olá {{1}}, pedido {{2}} pronto."}])
    Template.objects.create(name="rascunho", language="pt_BR", status="PENDING")
    page = as_operator.get(detail_url(session)).content.decode()
    assert 'id="reply-form"' not in page and 'id="template-form"' in page
    assert "pedido_pronto" in page and "rascunho" not in page
    # Free text is refused by the server too, not only hidden.
    as_operator.post(detail_url(session, "dashboard-conversation-reply"), {"text": "oi"})
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()
    as_operator.post(detail_url(session, "dashboard-conversation-template"),
                     {"template": template.pk, f"param-{template.pk}": ["Ana", "42"]})
    run_tasks()
    assert fake_graph.sent()[-1]["template"] == {
        "name": "pedido_pronto", "language": {"code": "pt_BR"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"},
                                                        {"type": "text", "text": "42"}]}]}


def test_take_transfer_assign_return_and_close(as_operator, operator, django_user_model):
    session = make_session(status=Session.Status.WAITING)
    vendas = Department.objects.create(name="Vendas")
    other = django_user_model.objects.create_user("bia")
    other.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    visitor = django_user_model.objects.create_user("visitante")
    url = detail_url(session, "dashboard-conversation-action")

    def state():
        session.refresh_from_db()
        return session.status, session.assigned_to, session.department

    as_operator.post(url, {"action": "take"})
    assert state() == ("open", operator, None)
    as_operator.post(url, {"action": "transfer", "department": vendas.pk})
    assert state() == ("waiting", None, vendas)
    as_operator.post(url, {"action": "assign", "user": other.pk})
    assert state() == ("open", other, vendas)
    as_operator.post(url, {"action": "return"})
    assert state()[:2] == ("bot", None)
    assert as_operator.post(url, {"action": "assign", "user": visitor.pk}).status_code == 404  # not an operator
    as_operator.post(url, {"action": "close"})
    assert state()[0] == "closed"
    assert as_operator.post(url, {"action": "explode"}).status_code == 400


def test_a_closed_conversation_stays_closed_and_says_goodbye_once(as_operator, settings):
    from chatbot.models import BotSettings

    BotSettings.objects.update_or_create(pk=1, defaults={"closing_text": "Até logo!"})
    session = make_session(status=Session.Status.OPEN)
    url = detail_url(session, "dashboard-conversation-action")
    as_operator.post(url, {"action": "close"})
    as_operator.post(url, {"action": "close"})  # a double click
    for action in ("return", "take"):
        as_operator.post(url, {"action": action})
    as_operator.post(url, {"action": "transfer", "department": Department.objects.create(name="Vendas").pk})
    session.refresh_from_db()
    assert session.status == "closed"
    assert Message.objects.filter(direction="out", text="Até logo!").count() == 1


def test_notes_are_kept_and_never_sent(as_operator, operator):
    session = make_session()
    as_operator.post(detail_url(session, "dashboard-conversation-note"), {"text": "Cliente VIP"})
    assert Note.objects.get().author == operator
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()
    assert "Cliente VIP" in as_operator.get(detail_url(session)).content.decode()


def test_canned_replies_are_offered(as_operator):
    CannedReply.objects.create(title="Horário", text="Atendemos das 8h às 18h, {name}.")
    body = as_operator.get(detail_url(make_session())).content.decode()
    assert 'data-text="Atendemos das 8h às 18h, {name}."' in body and "<strong>Horário</strong>" in body


# --- Contacts, templates, webhook log ----------------------------------------------------------


def test_an_admin_exports_a_contact_as_json(client, owner):
    client.force_login(owner)
    contact = make_session().contact
    response = client.get(reverse("chatbot:dashboard-contact-export", args=[contact.pk]))
    assert response["Content-Disposition"].startswith("attachment")
    data = json.loads(response.content)
    assert data["contact"]["wa_id"] == contact.wa_id and len(data["messages"]) == 1


def test_an_admin_anonymizes_a_contact_after_confirming(client, owner):
    client.force_login(owner)
    contact = make_session(name="Joana").contact
    url = reverse("chatbot:dashboard-contact-anonymize", args=[contact.pk])
    assert client.get(url).status_code == 200
    client.post(url, {"confirm": "errado"})
    assert Contact.objects.get(pk=contact.pk).name == "Joana"
    client.post(url, {"confirm": contact.wa_id})
    contact.refresh_from_db()
    assert contact.anonymized_at is not None and contact.name == "" and contact.wa_id != "5511987654321"
    assert not Message.objects.filter(text__contains="mensagem").exists()


def test_operators_block_and_opt_out_contacts(as_operator):
    contact = make_session().contact
    url = reverse("chatbot:dashboard-contact-update", args=[contact.pk])
    as_operator.post(url, {"field": "blocked", "value": "1"})
    as_operator.post(url, {"field": "opted_out", "value": "1"})
    contact.refresh_from_db()
    assert contact.blocked and contact.opted_out and contact.opted_out_at
    assert as_operator.post(url, {"field": "name", "value": "x"}).status_code == 400


def test_sync_now_reports_metas_refusal(as_operator, monkeypatch):
    from chatbot import message_templates

    def refuse(**kwargs):
        raise message_templates.SyncError("token inválido")

    monkeypatch.setattr(message_templates, "sync", refuse)
    response = as_operator.post(reverse("chatbot:dashboard-templates-sync"), follow=True)
    assert "token inválido" in response.content.decode()


def test_a_failed_webhook_event_is_reprocessed_from_the_page(as_owner):
    event = WebhookEvent.objects.create(body=payload_bytes("text").decode(), result=WebhookEvent.Result.FAILED,
                                        error="boom")
    listing = as_owner.get(reverse("chatbot:dashboard-webhooks"), {"result": "failed"}).content.decode()
    assert reverse("chatbot:dashboard-webhook-reprocess", args=[event.pk]) in listing
    as_owner.post(reverse("chatbot:dashboard-webhook-reprocess", args=[event.pk]))
    event.refresh_from_db()
    assert event.result == WebhookEvent.Result.PROCESSED
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1


# --- A constant number of queries, whatever the data -------------------------------------------


def queries(client, url, **params):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params).status_code == 200
    return len(captured)


@pytest.mark.parametrize(("who", "url_for"), [
    ("operator", lambda session: reverse("chatbot:dashboard")),
    ("operator", lambda session: reverse("chatbot:dashboard-conversations")),
    ("operator", lambda session: detail_url(session)),
    ("operator", lambda session: detail_url(session, "dashboard-conversation-updates")),
    ("operator", lambda session: reverse("chatbot:dashboard-conversations") + "?q=mensagem"),
    ("operator", lambda session: reverse("chatbot:dashboard-conversations") + f"?label={session.labels.first().pk}"),
    ("operator", lambda session: reverse("chatbot:dashboard-pulse")),
    ("operator", lambda session: reverse("chatbot:dashboard-contacts")),
    ("operator", lambda session: reverse("chatbot:dashboard-contact", args=[session.contact_id])),
    ("admin", lambda session: reverse("chatbot:dashboard-webhooks")),
])
def test_pages_make_the_same_number_of_queries_for_more_data(client, operator, owner, who, url_for):
    as_operator = client
    client.force_login(operator if who == "operator" else owner)
    session = make_session(messages=3)
    Message.objects.filter(session=session).update(reply_to="wamid.5511987654321.0")
    WebhookEvent.objects.create(body="{}")
    # (No explicit pk: PostgreSQL's sequence would not move past it, and the next label would clash.)
    vip = Label.objects.create(name="VIP")
    session.labels.add(vip)
    ContactAttribute.objects.create(key="cpf", name="CPF")
    make_session("5511900000099", "Na fila", status=Session.Status.WAITING)  # every page has something to show
    RateLimit.objects.all().delete()
    as_operator.get(url_for(session))  # the day's first visit counts the finished days once
    before = queries(as_operator, url_for(session))
    for index in range(6):
        other = make_session(f"55119000000{index:02d}", f"C{index}", status=Session.Status.WAITING, messages=3)
        Message.objects.create(phone_number=other.phone_number, contact=other.contact, session=session,
                               direction=Message.Direction.OUT, source=Message.Source.BOT, type="text",
                               status="sent", reply_to=f"wamid.55119000000{index:02d}.0")
        WebhookEvent.objects.create(body="{}")
        other.labels.add(vip)
        session.labels.add(Label.objects.create(name=f"L{index}"))
        session.contact.labels.add(Label.objects.get(name=f"L{index}"))
        Note.objects.create(session=session, text=f"nota {index}")
        Session.objects.create(contact=session.contact, phone_number=session.phone_number, status="closed")
        viewer = type(operator).objects.create_user(f"colega{index}")
        OperatorProfile.objects.create(user=viewer, viewing=session, viewing_at=timezone.now())
    assert queries(as_operator, url_for(session)) == before
