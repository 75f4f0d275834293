"""The satisfaction survey in a real headless Chromium: an operator closes a conversation, the
survey appears in its thread, the customer answers, and the rating is in the customer panel."""

from django.utils import timezone

from chatbot.models import Session

from .test_inbox_browser import pages, url  # noqa: F401 (pages is a fixture)

WA_ID = "5511987654321"  # the customer_says fixture's Joana
QUESTION = "Como você avalia o nosso atendimento? Escolha uma nota de 1 a 5."


def test_the_survey_after_an_operator_closes_and_the_rating_in_the_customer_panel(
        live_server, pages, ana, customer_says, fake_graph, run_tasks):  # noqa: F811
    customer_says("Oi, meu pedido não chegou")
    session = Session.objects.get(contact__wa_id=WA_ID)
    Session.objects.filter(pk=session.pk).update(status="open", assigned_to=ana, first_response_at=timezone.now())
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard-conversation", session.pk))
    page.evaluate("window.confirm = () => true")
    page.click("#conversation-actions button[value=close]")
    page.locator(".flash", has_text="Conversa encerrada.").wait_for()

    # The survey in the thread like any bot message, with its five rows.
    survey = page.locator(".msg.out", has_text=QUESTION)
    survey.wait_for()
    assert survey.locator(".option").all_inner_texts() == ["5 – Ótimo", "4 – Bom", "3 – Regular", "2 – Ruim",
                                                            "1 – Péssimo"]
    run_tasks()
    assert fake_graph.sent()[-1]["interactive"]["action"]["sections"][0]["rows"][0] == {
        "id": "csat:5", "title": "5 – Ótimo"}

    customer_says("2")
    customer_says("A entrega atrasou uma semana")
    page.reload()
    panel = page.locator(".inbox-side .facts")
    assert "2/5" in panel.inner_text() and "A entrega atrasou uma semana" in panel.inner_text()
    page.locator(".msg.in", has_text="A entrega atrasou uma semana").wait_for()  # kept in the closed conversation
    page.locator(".msg.out", has_text="Obrigado pela avaliação!").wait_for()
    assert Session.objects.count() == 1  # the answers opened no new conversation
