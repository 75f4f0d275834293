"""The dashboard in a real headless Chromium: what an operator sees and does (fixtures in conftest)."""

from datetime import timedelta

from django.utils import timezone

from chatbot.models import Contact, Message, PhoneNumber, Session, Template

WA_ID = "5511987654321"
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"


def open_conversation(page, live_server):
    session = Session.objects.get(contact__wa_id=WA_ID, status__in=["bot", "waiting", "open"])
    page.goto(f"{live_server.url}/chatbot/dashboard/conversations/{session.pk}/")
    return session


def test_a_new_message_appears_without_reload_and_the_reply_reaches_meta(
        logged_in_page, live_server, customer_says, fake_graph, run_tasks):
    page = logged_in_page
    customer_says("oi")
    open_conversation(page, live_server)
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    customer_says("Vocês entregam no domingo?")
    page.locator(".msg.in", has_text="Vocês entregam no domingo?").wait_for()
    assert page.evaluate("window.loadedOnce") is True

    page.fill("#reply-form textarea[name=text]", "Entregamos sim, das 9h às 13h.")
    page.click("#reply-form button[type=submit]")
    page.locator(".msg.out", has_text="Entregamos sim").wait_for()
    run_tasks()
    assert fake_graph.sent()[-1]["text"] == {"body": "Entregamos sim, das 9h às 13h."}
    # The tick turns from the clock to "sent" by itself.
    page.locator(".msg.out:has-text('Entregamos sim') .ticks-sent").wait_for()
    assert page.dialogs == [] and page.errors == []


def test_handoff_take_and_close(logged_in_page, live_server, customer_says):
    page = logged_in_page
    customer_says("oi")
    session = Session.objects.get(contact__wa_id=WA_ID)
    Session.objects.filter(pk=session.pk).update(status="waiting", waiting_since=timezone.now())
    page.goto(f"{live_server.url}/chatbot/dashboard/conversations/?status=waiting")
    page.click(f"li[data-session='{session.pk}'] a")

    page.click("button[value=take]")
    page.locator("#session-status", has_text="em atendimento").wait_for()
    session.refresh_from_db()
    assert (session.status, session.assigned_to) == ("open", page.user)

    page.evaluate("window.confirm = () => true")
    page.click("button[value=close]")
    page.locator("#session-status", has_text="encerrad").wait_for()
    assert Session.objects.get(pk=session.pk).status == "closed"


def test_script_in_a_customer_message_is_shown_as_text(logged_in_page, live_server, customer_says):
    page = logged_in_page
    customer_says("oi")
    open_conversation(page, live_server)
    customer_says(XSS)  # arrives live, through the JSON updates
    page.locator(".msg.in", has_text="<script>alert(2)</script>").wait_for()
    page.reload()  # and rendered by the server
    page.locator(".msg.in", has_text="<script>alert(2)</script>").wait_for()
    Contact.objects.filter(wa_id=WA_ID).update(name=XSS)  # names come from the customer too
    page.goto(f"{live_server.url}/chatbot/dashboard/conversations/")
    page.locator("li[data-session] a", has_text="<script>alert(2)</script>").wait_for()
    assert page.locator("img[src=x]").count() == 0
    assert page.dialogs == [] and page.errors == []


def test_a_closed_window_offers_templates_only(logged_in_page, live_server, fake_graph, run_tasks):
    page = logged_in_page
    contact = Contact.objects.create(wa_id=WA_ID, name="Joana", last_inbound_at=timezone.now() - timedelta(days=3))
    session = Session.objects.create(contact=contact, phone_number=PhoneNumber.objects.default(), status="open")
    Template.objects.create(name="boas_vindas", language="pt_BR", category="MARKETING", status="APPROVED",
                            components=[{"type": "BODY", "text": "Oi!"}])
    Template.objects.create(name="pedido_pronto", language="pt_BR", category="UTILITY", status="APPROVED",
                            components=[{"type": "BODY", "text": "Olá {{1}}, o pedido {{2}} está pronto."}])
    page.goto(f"{live_server.url}/chatbot/dashboard/conversations/{session.pk}/")

    assert page.locator("#reply-form").count() == 0
    assert page.locator("textarea[name=text]").count() == 1  # the notes box only
    page.select_option("select[name=template]", label="pedido_pronto (pt_BR) · utility")
    fields = page.locator("fieldset:visible input")
    assert fields.count() == 2
    fields.nth(0).fill("Joana")
    fields.nth(1).fill("1234")
    page.click("#template-form button[type=submit]")
    page.locator(".msg.out", has_text="pedido_pronto").wait_for()
    run_tasks()
    sent = fake_graph.sent()[-1]["template"]
    assert sent["name"] == "pedido_pronto"
    assert [p["text"] for p in sent["components"][0]["parameters"]] == ["Joana", "1234"]
    assert Message.objects.filter(type="template", sent_by=page.user).exists()


def test_the_conversation_list_updates_itself(logged_in_page, live_server, customer_says):
    page = logged_in_page
    page.goto(f"{live_server.url}/chatbot/dashboard/conversations/")
    page.locator("#conversation-rows li", has_text="Nenhuma conversa").wait_for()
    customer_says("Bom dia")
    page.locator("li[data-session] a", has_text="Joana").wait_for()
    page.goto(f"{live_server.url}/chatbot/dashboard/")
    assert page.locator("[data-testid=mode]").inner_text().count("Sandbox") == 1
