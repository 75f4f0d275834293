"""The inbox in a real headless Chromium, as a team uses it: the split view, two operators at once,
the tab's title, sound and notifications, replying by keyboard alone, labels and bulk actions,
starting a conversation; every page at phone width and under axe-core."""

import time
from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chatbot.models import (
    CannedReply,
    Contact,
    ContactAttribute,
    Department,
    Label,
    Message,
    OperatorProfile,
    PhoneNumber,
    Session,
    Template,
    WebhookEvent,
)

from .conftest import assert_clean, new_page, screenshot
from .helpers import make_operator, make_session

WA_ID = "5511987654321"
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1440, "height": 900}
# Records what the page asks of the browser's Notification API and every alert (sound included);
# document.hasFocus() says "no", as for a tab in the background.
RECORD_ALERTS = """
window.__alerts = []; window.__notifications = []; window.__asked = 0;
document.addEventListener("hoz:alert", (event) => window.__alerts.push(event.detail));
class RecordedNotification {
  constructor(title, options) { window.__notifications.push({title, body: options.body}); }
  addEventListener() {}
}
RecordedNotification.permission = localStorage.getItem("test.permission") || "default";
RecordedNotification.requestPermission = async () => { window.__asked += 1; return "granted"; };
window.Notification = RecordedNotification;
document.hasFocus = () => false;
"""


def wait_until(page, expression, timeout=8):
    """Poll `expression` in the page until it is true (wait_for_function compiles its predicate
    with eval, which the page's CSP refuses)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        page.wait_for_timeout(100)


def open_as(browser, live_server, user, viewport=DESK, **options):
    """A page logged in as `user` (a session cookie made by Django's test client)."""
    client = Client()
    client.force_login(user)
    page = new_page(browser, **options)
    page.set_viewport_size(viewport)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])
    page.user = user
    return page


@pytest.fixture
def pages(browser, request):
    """Open pages as open_as(...) does, each closed (with a screenshot, and checked for CSP
    violations and console errors) at the end of the test."""
    opened = []

    def open_page(live_server, user, viewport=DESK, **options):
        page = open_as(browser, live_server, user, viewport, **options)
        opened.append(page)
        return page
    yield open_page
    for index, page in enumerate(opened):
        try:
            screenshot(page, f"{request.node.name}-{index}")
            assert_clean(page.found, page.allowed_console)
        finally:
            page.context.close()


def url(live_server, name, *args):
    return live_server.url + reverse(f"chatbot:{name}", args=args)


def waiting_customer(wa_id=WA_ID, name="Joana", minutes=3, text="Quero falar com alguém"):
    session = make_session(wa_id=wa_id, name=name, status=Session.Status.WAITING, messages=0)
    Session.objects.filter(pk=session.pk).update(waiting_since=timezone.now() - timedelta(minutes=minutes))
    Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                           direction="in", source="customer", type="text", text=text, status="received",
                           wamid=f"wamid.{wa_id}.waiting")
    return session


# --- The split view ------------------------------------------------------------------------


def test_list_conversation_and_customer_side_by_side_with_the_list_live(
        live_server, pages, ana, customer_says):
    ContactAttribute.objects.create(key="cpf", name="CPF")
    customer_says("Oi! Quero *dois* açaís _grandes_")
    session = Session.objects.get(contact__wa_id=WA_ID)
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard-conversation", session.pk))
    columns = (".inbox-list", ".inbox-conversation", ".inbox-side")
    boxes = [page.locator(selector).bounding_box() for selector in columns]
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"], "three columns, left to right"
    assert all(box["y"] < 100 for box in boxes), "all at the top of the page"
    assert page.evaluate("document.documentElement.scrollHeight") <= DESK["height"], "each column scrolls, not the page"
    # The customer's words, formatted as WhatsApp shows them, in the thread and (plain) in the list.
    assert page.locator(".msg.in strong", has_text="dois").count() == 1
    assert page.locator(".msg.in em", has_text="grandes").count() == 1
    assert "Oi! Quero dois açaís grandes" in page.locator(f"li[data-session='{session.pk}'] .row-preview").inner_text()
    assert page.locator(".inbox-side", has_text="+55 11 98765-4321").count() == 1
    page.evaluate("window.loadedOnce = true")

    customer_says("Bom dia", wa_id="5511900000077", name="Paulo")
    page.locator("li[data-session] .name", has_text="Paulo").wait_for()
    assert page.evaluate("window.loadedOnce") is True  # the list updated in place


def test_a_phone_shows_one_column_with_the_reply_box_in_reach(live_server, pages, ana):
    session = waiting_customer()
    for index in range(30):
        Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                               direction="in", source="customer", type="text", text=f"mensagem {index}",
                               status="received")
    page = pages(live_server, ana, PHONE, has_touch=True, is_mobile=True)
    page.goto(url(live_server, "dashboard-conversations"))
    assert page.locator(".inbox-list").is_visible()
    page.click(f"li[data-session='{session.pk}'] a")
    page.locator("#reply-text").wait_for()
    assert not page.locator(".inbox-list").is_visible()
    box = page.locator("#reply-form button[type=submit]").bounding_box()
    assert box["y"] + box["height"] <= PHONE["height"], "the send button is on the first screen"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.click(".inbox-conversation .back")
    page.locator(".inbox-list").wait_for()


# --- Two operators ------------------------------------------------------------------------


def test_a_colleagues_take_reaches_the_open_page_and_taking_it_back_asks_first(live_server, pages, ana, bia):
    session = waiting_customer()
    ana_page = pages(live_server, ana)
    ana_page.goto(url(live_server, "dashboard-conversation", session.pk))
    ana_page.evaluate("window.loadedOnce = true")
    bia_page = pages(live_server, bia)
    bia_page.goto(url(live_server, "dashboard-conversation", session.pk))

    # Each sees the other has it open.
    ana_page.locator("#viewers", has_text="bia também está com ela aberta").wait_for()
    bia_page.locator("#viewers", has_text="ana também está com ela aberta").wait_for()

    started = time.monotonic()
    bia_page.click("#conversation-actions button[value=take]")
    bia_page.locator(".flash", has_text="A conversa agora é sua.").wait_for()
    ana_page.locator("#answering", has_text="bia está atendendo").wait_for()
    ana_page.locator("#session-status", has_text="em atendimento").wait_for()
    assert time.monotonic() - started < 4  # a 2 s poll, and the page's own time
    assert ana_page.evaluate("window.loadedOnce") is True  # in place, no reload

    ana_page.click("#conversation-actions button[value=take]")  # the dialog is dismissed: nothing happens
    assert ana_page.dialogs == [("confirm", "bia está atendendo esta conversa. Assumir mesmo assim?")]
    assert Session.objects.get(pk=session.pk).assigned_to == bia

    ana_page.evaluate("window.confirm = () => true")
    ana_page.click("#conversation-actions button[value=take]")
    ana_page.locator(".flash", has_text="A conversa agora é sua.").wait_for()
    assert Session.objects.get(pk=session.pk).assigned_to == ana
    bia_page.locator("#answering", has_text="ana está atendendo").wait_for()


def test_answering_a_colleagues_customer_asks_first_and_keeps_the_text(live_server, pages, ana, bia, fake_graph):
    session = waiting_customer()
    Session.objects.filter(pk=session.pk).update(status="open", assigned_to=bia)
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard-conversation", session.pk))
    page.fill("#reply-text", "Posso ajudar?")
    page.press("#reply-text", "Enter")
    assert page.dialogs == [("confirm", "bia está atendendo esta conversa. Enviar sua resposta mesmo assim?")]
    assert page.input_value("#reply-text") == "Posso ajudar?"
    assert not Message.objects.filter(direction="out").exists()


def test_a_transfer_by_a_colleague_moves_the_open_page_on(live_server, pages, ana, bia):
    session = waiting_customer()
    support = Department.objects.create(name="Suporte")
    ana_page = pages(live_server, ana)
    ana_page.goto(url(live_server, "dashboard-conversation", session.pk))
    bia_page = pages(live_server, bia)
    bia_page.goto(url(live_server, "dashboard-conversation", session.pk))
    bia_page.select_option("#conversation-actions select[name=department]", str(support.pk))
    bia_page.click("#conversation-actions form:has(select[name=department]) button")
    bia_page.locator(".flash", has_text="Transferida para Suporte.").wait_for()
    ana_page.locator("#session-department", has_text="Suporte").wait_for()


def test_a_conversation_moved_out_of_sight_leaves_the_open_page_for_the_list(live_server, pages, ana):
    session = waiting_customer()
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard-conversation", session.pk))
    page.locator("#reply-text").wait_for()
    Session.objects.filter(pk=session.pk).update(department=Department.objects.create(name="RH", restricted=True))
    page.wait_for_url(url(live_server, "dashboard-conversations"))
    assert page.locator(f"li[data-session='{session.pk}']").count() == 0
    page.allowed_console.append(r"status of 404")  # the update that found it gone


# --- Not missing anyone: the title, a sound, a notification ---------------------------------


def test_a_new_waiting_customer_is_counted_in_the_title_chimed_and_notified(live_server, pages, ana):
    waiting_customer(wa_id="5511900000001", name="Primeira")
    page = pages(live_server, ana)
    page.context.add_init_script(RECORD_ALERTS)
    page.goto(url(live_server, "dashboard-conversations"))
    page.evaluate("localStorage.setItem('test.permission', 'granted')")
    page.reload()
    wait_until(page, "document.title.startsWith('(1) ')")
    assert page.locator("#queue-count").inner_text() == "1"

    waiting_customer(wa_id="5511900000002", name="Segunda")
    wait_until(page, "document.title.startsWith('(2) ')")
    wait_until(page, "window.__notifications.length === 1")
    assert page.evaluate("window.__notifications") == [{"title": "Novo cliente na fila", "body": "Segunda"}]
    assert page.evaluate("window.__alerts")[0]["sound"] is True

    # Switched off in the operator's menu: no notification, no sound.
    OperatorProfile.objects.filter(user=ana).update(sound=False, notifications=False)
    waiting_customer(wa_id="5511900000003", name="Terceira")
    wait_until(page, "window.__alerts.length === 2")
    assert page.evaluate("window.__alerts[1]") | {"title": None} == {
        "kind": "waiting", "title": None, "body": "Terceira", "sound": False, "notified": False}
    assert len(page.evaluate("window.__notifications")) == 1


def test_a_new_message_in_my_conversation_is_notified(live_server, pages, ana, customer_says):
    customer_says("oi")
    session = Session.objects.get(contact__wa_id=WA_ID)
    Session.objects.filter(pk=session.pk).update(status="open", assigned_to=ana)
    page = pages(live_server, ana)
    page.context.add_init_script(RECORD_ALERTS)
    page.goto(url(live_server, "dashboard-contacts"))
    page.evaluate("localStorage.setItem('test.permission', 'granted')")
    page.reload()
    wait_until(page, "localStorage.getItem('hoz.seen') !== null")  # the tab has looked once
    customer_says("Ainda está aí?")
    wait_until(page, "window.__notifications.length === 1")
    assert page.evaluate("window.__notifications") == [{"title": "Nova mensagem: Joana", "body": "Ainda está aí?"}]
    wait_until(page, "document.title.startsWith('(2) ')")  # "oi" and this one, unread


def test_notifications_are_asked_for_once(live_server, pages, ana):
    page = pages(live_server, ana)
    page.context.add_init_script(RECORD_ALERTS)
    page.goto(url(live_server, "dashboard"))
    page.locator("#ask-notify").wait_for()
    page.click("#ask-notify [data-notify=allow]")
    wait_until(page, "window.__asked === 1")
    assert page.locator("#ask-notify").is_hidden()
    page.reload()
    page.wait_for_timeout(2500)  # a pulse went by
    assert page.locator("#ask-notify").is_hidden()


def test_the_overview_refreshes_itself(live_server, pages, ana):
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard"))
    figure = page.locator("a[href$='?status=waiting'] strong")
    assert figure.inner_text() == "0"
    waiting_customer()
    wait_until(page, "document.querySelector(\"a[href$='?status=waiting'] strong\").textContent === '1'", 15)


# --- Fast replies, by keyboard only --------------------------------------------------------


def test_an_operator_takes_and_answers_a_customer_with_the_keyboard_only(live_server, pages, ana, fake_graph,
                                                                        run_tasks):
    CannedReply.objects.create(title="Horário", text="Olá {first_name}, atendemos das 8h às 18h.")
    CannedReply.objects.create(title="Pix", text="Nossa chave Pix é o CNPJ.")
    session = waiting_customer(name="Joana Lima")
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard-conversations"))
    keyboard = page.keyboard

    keyboard.press("j")  # the first conversation
    page.wait_for_url(f"**/conversations/{session.pk}/**")
    page.locator("#reply-text").wait_for()
    keyboard.press("t")  # take it
    page.locator(".flash", has_text="A conversa agora é sua.").wait_for()
    keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "reply-text"
    keyboard.type("/hora")
    page.locator("#canned [role=option][aria-selected=true]", has_text="Horário").wait_for()
    keyboard.press("Enter")  # picks the canned reply
    assert page.input_value("#reply-text") == "Olá {first_name}, atendemos das 8h às 18h."
    keyboard.press("Enter")  # sends it
    page.locator(".msg.out", has_text="Olá Joana, atendemos das 8h às 18h.").wait_for()

    page.locator("#reply-text").focus()
    keyboard.type("Primeira linha")
    keyboard.press("Shift+Enter")
    keyboard.type("Segunda linha")
    keyboard.press("Enter")
    page.locator(".msg.out", has_text="Segunda linha").wait_for()
    run_tasks()
    assert [sent["text"]["body"] for sent in fake_graph.sent()] == [
        "Olá Joana, atendemos das 8h às 18h.", "Primeira linha\nSegunda linha"]

    # Every control is reached by Tab, the thread too (it scrolls); the ? key shows the shortcuts.
    page.locator("#reply-text").focus()
    keyboard.press("Escape")
    keyboard.press("?")
    page.locator("#shortcuts[open]").wait_for()
    keyboard.press("Escape")
    assert page.locator("#shortcuts[open]").count() == 0
    focused = set()
    for _ in range(60):
        keyboard.press("Tab")
        focused.add(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
    assert {"thread", "reply-text", "take-next", "list-q"} <= focused


# --- Labels, bulk actions, search ---------------------------------------------------------


def test_ticked_conversations_get_a_label_and_the_list_filters_by_it(live_server, pages, ana):
    sessions = [waiting_customer(wa_id=f"551190000000{index}", name=f"Cliente {index}") for index in range(3)]
    vip = Label.objects.create(name="VIP", color=Label.Color.PURPLE)
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard-conversations"))
    assert page.locator("#bulk-form").is_hidden()
    for session in sessions[:2]:
        page.check(f"li[data-session='{session.pk}'] input[name=sessions]")
    page.locator("#bulk-count", has_text="Marcadas: 2").wait_for()
    page.select_option("#bulk-form select[name=action]", "label")
    page.select_option("#bulk-form select[name=label]", str(vip.pk))
    page.click("#bulk-form button[type=submit]")
    page.locator(".flash", has_text="2 conversas atualizadas.").wait_for()
    assert page.locator(".conversation-row .label-purple", has_text="VIP").count() == 2

    page.click("details.filters summary")
    page.select_option("#f-label", str(vip.pk))
    page.click("details.filters button[type=submit]")
    page.wait_for_url("**label=*")
    assert page.locator("li[data-session]").count() == 2


def test_search_finds_what_the_customer_wrote(live_server, pages, ana):
    waiting_customer(text="Vocês entregam açaí em Niterói?")
    waiting_customer(wa_id="5511900000001", name="Outro", text="Oi")
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard-conversations"))
    page.keyboard.press("/")
    page.keyboard.type("acai niteroi")
    page.keyboard.press("Enter")  # the words in any order would need two searches: this is a phrase
    page.wait_for_url("**q=acai*")
    assert page.locator("li[data-session]").count() == 0
    page.fill("#list-q", "açai em niteroi")
    page.press("#list-q", "Enter")
    page.locator("li[data-session] .row-preview", has_text="Vocês entregam açaí em Niterói?").wait_for()
    assert page.locator("li[data-session]").count() == 1


# --- Reopen and start ---------------------------------------------------------------------


def test_a_closed_conversation_is_reopened(live_server, pages, ana):
    session = make_session(status=Session.Status.CLOSED)
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard-conversation", session.pk))
    assert page.locator("#reply-form").count() == 0
    page.click("button[value=reopen]")
    page.locator(".flash", has_text="Conversa reaberta.").wait_for()
    page.locator("#reply-form").wait_for()
    assert Session.objects.get(pk=session.pk).status == "open"


def test_a_conversation_is_started_from_the_contact_with_a_template_previewed(live_server, pages, ana, fake_graph,
                                                                              run_tasks):
    contact = Contact.objects.create(wa_id=WA_ID, name="Joana", last_inbound_at=timezone.now() - timedelta(days=3))
    template = Template.objects.create(name="retorno", language="pt_BR", category="UTILITY", status="APPROVED",
                                       components=[{"type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} chegou."}])
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard-contact", contact.pk))
    preview = page.locator(f"fieldset[data-template='{template.pk}'] .template-preview")
    assert preview.inner_text() == "Olá {{1}}, seu pedido {{2}} chegou."
    fields = page.locator(f"fieldset[data-template='{template.pk}'] input")
    fields.nth(0).fill("Joana")
    fields.nth(1).fill("4321")
    assert preview.inner_text() == "Olá Joana, seu pedido 4321 chegou."
    page.click("#start-form button[type=submit]")
    page.locator(".flash", has_text="Conversa iniciada.").wait_for()
    page.locator(".msg.out", has_text="retorno").wait_for()
    run_tasks()
    assert [p["text"] for p in fake_graph.sent()[-1]["template"]["components"][0]["parameters"]] == ["Joana", "4321"]


# --- Every page: phone width, axe-core --------------------------------------------------------


@pytest.fixture
def every_page(live_server, django_user_model):
    """A staff operator, data on every page, and the URLs of all of them."""
    admin = make_operator(django_user_model, "dona", is_staff=True, first_name="Dona")
    support = Department.objects.create(name="Suporte")
    support.operators.add(admin)
    vip = Label.objects.create(name="VIP")
    ContactAttribute.objects.create(key="cpf", name="CPF")
    CannedReply.objects.create(title="Horário", text="Atendemos das 8h às 18h.")
    session = waiting_customer(name="Maria Aparecida dos Santos Oliveira")
    session.labels.add(vip)
    for index in range(12):
        Message.objects.create(phone_number=session.phone_number, contact=session.contact, session=session,
                               direction="out" if index % 2 else "in", source="operator" if index % 2 else "customer",
                               type="text", status="read" if index % 2 else "received",
                               text=f"Uma mensagem *longa* número {index} com um link https://exemplo.com.br/"
                                    f"pedidos/acompanhar?codigo=ABCDEFGHIJKLMNOPQRSTUVWXYZ{index}")
    closed = Contact.objects.create(wa_id="5511900000009", name="Janela fechada",
                                    last_inbound_at=timezone.now() - timedelta(days=2))
    old = Session.objects.create(contact=closed, phone_number=PhoneNumber.objects.default(), status="closed")
    Template.objects.create(name="pedido_pronto_para_retirada", language="pt_BR", category="UTILITY",
                            status="APPROVED", components=[{"type": "BODY", "text": "Olá {{1}}, pedido pronto."}])
    event = WebhookEvent.objects.create(body='{"object": "whatsapp_business_account", "entry": []}',
                                        result="failed", error="KeyError: 'changes'" * 5)
    names = [("dashboard",), ("dashboard-conversations",), ("dashboard-conversation", session.pk),
             ("dashboard-conversation", old.pk), ("dashboard-contacts",), ("dashboard-contact", session.contact.pk),
             ("dashboard-contact", closed.pk), ("dashboard-templates",), ("dashboard-webhooks",),
             ("dashboard-webhook", event.pk), ("dashboard-settings",), ("dashboard-settings-bot",),
             ("dashboard-settings-list", "labels"), ("dashboard-settings-edit", "departments", support.pk),
             ("dashboard-settings-operators",), ("dashboard-settings-operator-new",)]
    return admin, [url(live_server, name, *args) for name, *args in names] + [live_server.url + "/accounts/login/"]


SEVERE = ("serious", "critical")


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
def test_every_page_fits_the_screen_and_passes_axe(live_server, pages, every_page, viewport):
    admin, urls = every_page
    page = pages(live_server, admin, viewport)
    axe = Axe()
    problems = []
    for address in urls:
        page.goto(address)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > viewport["width"]:
            problems.append(f"{address}: {width} px wide")
        results = axe.run(page, options={"runOnly": {"type": "tag", "values": [
            "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
        for violation in results.response["violations"]:
            if violation["impact"] in SEVERE:
                targets = [node["target"] for node in violation["nodes"]][:3]
                problems.append(f"{address}: {violation['id']} ({violation['impact']}) {targets}")
        screenshot(page, f"page-{viewport['width']}-{address.split('/chatbot/')[-1].strip('/').replace('/', '-')}")
    assert problems == []
