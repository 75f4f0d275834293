"""The campaign pages in a real headless Chromium: the wizard from the empty list to the report
(count and preview on the way), the report following the sending without a reload while the test
drains the outbox, pause and resume there and from another tab, cancelling after a confirmation,
the keyboard alone, and every page under axe-core at phone and desk widths (the fixtures also fail
on any CSP violation or console error)."""

import time
from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone

from chatbot import campaign_sending, campaigns, outbox
from chatbot.models import Campaign, Contact, ContactAttribute, Department, Label, Message, Template

from . import test_inbox_browser
from .conftest import screenshot
from .test_inbox_browser import DESK, PHONE, SEVERE, url, wait_until
from .test_reports_browser import tab_to

pages = test_inbox_browser.pages  # the fixture: pages opened as a user, checked and closed after the test

PROMO = [
    {"type": "HEADER", "format": "IMAGE"},
    {"type": "BODY", "text": "Oi {{1}}! Seu cupom *{{2}}* vale até domingo."},
    {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Ver oferta", "url": "https://loja.example/o/{{1}}"}]},
]


@pytest.fixture
def data(db, django_user_model):
    """An administrator, two approved templates, a label on three customers (one opted out)."""
    campaign_sending.wake()
    owner = django_user_model.objects.create_user("dono", password="x", is_staff=True)
    promo = Template.objects.create(name="promo_semana", language="pt_BR", category="MARKETING", status="APPROVED",
                                    components=PROMO)
    aviso = Template.objects.create(name="aviso", language="pt_BR", category="UTILITY", status="APPROVED",
                                    components=[{"type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} chegou."}])
    ContactAttribute.objects.create(key="cupom", name="Cupom")
    Department.objects.create(name="Vendas")
    clientes = Label.objects.create(name="clientes")
    made = [Contact.objects.create(wa_id=f"55119{index:08d}", name=name, attributes=attributes)
            for index, (name, attributes) in enumerate([("Ana Souza", {"cupom": "ANA10"}), ("Bia", {}), ("Caio", {})])]
    Contact.objects.filter(pk=made[2].pk).update(opted_out=True)
    clientes.contacts.add(*made)
    return {"owner": owner, "promo": promo, "aviso": aviso, "contacts": made}


def start(template, name="Aviso de entrega", **options):
    plan = campaigns.plan(template_name=template.name, language=template.language, audience={"labels": ["clientes"]},
                          variables={"1": "{first_name|cliente}", "2": "{attr:cupom|123}"})
    return campaigns.create(name=name, plan=plan, **options)


def figure(page, name):
    return page.locator(f"[data-figure={name}] strong").inner_text()


def send_all():
    campaign_sending.wake()
    while outbox.drain():
        campaign_sending.wake()


def test_the_wizard_from_the_empty_list_to_the_report(live_server, pages, data):
    page = pages(live_server, data["owner"])
    page.goto(url(live_server, "dashboard-campaigns"))
    assert page.locator("#campaigns-empty", has_text="modelo aprovado pela Meta").is_visible()
    screenshot(page, "campaigns-empty-desk")
    page.click("text=Criar a primeira campanha")
    page.fill("#id_name", "Cupons de domingo")
    promo = data["promo"].pk
    # Only the chosen template's fields are on screen (campaigns.js).
    assert page.locator("fieldset[data-template]:visible").count() == 0
    page.select_option("#id_template", str(promo))
    assert page.locator(f"fieldset[data-template='{promo}']").is_visible()
    assert not page.locator(f"fieldset[data-template='{data['aviso'].pk}']").is_visible()
    page.fill(f"#id_var-{promo}-1", "{first_name|cliente}")
    page.fill(f"#id_var-{promo}-2", "{attr:cupom|BEMVINDO}")
    page.fill(f"#id_header-{promo}", "https://loja.example/promo.jpg")
    # A suffix left empty: refused beside its field, the rest kept.
    page.check("input[name=labels][value=clientes]")
    assert not page.locator("#id_scheduled_at").is_visible()
    page.click("#review-button")
    error = page.locator(f"#id_button-{promo}-0_error")
    assert "Final do link do botão 1 precisa de um valor" in error.inner_text()
    assert page.locator(f"#id_var-{promo}-2").input_value() == "{attr:cupom|BEMVINDO}"
    assert page.locator("#id_name").input_value() == "Cupons de domingo"
    page.fill(f"#id_button-{promo}-0", "{wa_id}")
    page.click("#review-button")

    # Step 2: the count, who is left out and why, the first customer's message.
    assert page.locator("#review-count").inner_text() == "2 contatos vão recebê-la"
    skipped = page.locator("#review-skipped").inner_text()
    assert skipped.endswith("1 contato pediu para não receber mensagens de marketing")
    preview = page.locator("#preview")
    assert "O que Ana Souza, o primeiro contato, vai receber" in page.locator("#preview-title").inner_text()
    assert preview.locator(".wa-body").inner_text() == "Oi Ana! Seu cupom ANA10 vale até domingo."
    assert preview.locator(".wa-body strong").inner_text() == "ANA10"
    assert "https://loja.example/o/5511900000000" in preview.locator(".wa-buttons").inner_text()
    screenshot(page, "campaign-review-desk")
    page.click("#create-campaign")

    page.locator("#campaign-status-label").wait_for()
    campaign = Campaign.objects.get()
    assert page.url == url(live_server, "dashboard-campaign", campaign.pk)
    assert page.locator(".flash", has_text="Campanha criada.").is_visible()
    assert page.locator("#campaign-status-label").inner_text() == "Enviando"
    assert figure(page, "queued") == "2" and figure(page, "skipped") == "1"
    assert (campaign.name, campaign.recipients, campaign.created_by) == ("Cupons de domingo", 2, data["owner"])


def run_worker_tasks():
    """The worker's background tasks (the report's counts among them), as `db_worker` runs them."""
    from unittest import mock

    from django_tasks_db.management.commands.db_worker import Worker

    with mock.patch("django_tasks_db.management.commands.db_worker.close_old_connections"):
        Worker(queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False,
               max_tasks=None, worker_id="test-worker", excluded_queue_names=[]).run()


def shown(page, selector, text, timeout=10):
    """Wait for `text` in `selector` while the worker runs the counts the page's polls ask for."""
    deadline = time.monotonic() + timeout
    while not page.locator(selector, has_text=text).count():
        assert time.monotonic() < deadline, f"{selector} never showed {text!r}"
        run_worker_tasks()
        page.wait_for_timeout(250)


def test_the_report_follows_the_sending_without_a_reload(live_server, pages, data):
    campaign = start(data["aviso"])
    page = pages(live_server, data["owner"])
    polls = []
    page.on("request", lambda request: "/live/" in request.url and polls.append(request.url))
    page.goto(url(live_server, "dashboard-campaign", campaign.pk))
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    assert figure(page, "queued") == "3" and figure(page, "sent") == "0"
    assert page.locator("#no-deliveries").is_visible()

    campaign_sending.wake()
    outbox.drain()  # the worker's outbox sends them (sandbox: no network)
    shown(page, "[data-figure=sent] strong", "3")
    assert figure(page, "queued") == "0" and page.locator("#campaign-status-label").inner_text() == "Enviando"

    Message.objects.filter(recipient__campaign=campaign).update(status="delivered", delivered_at=timezone.now())
    shown(page, "[data-figure=delivered] strong", "3")
    assert page.locator("figure.deliveries rect").count() == 1
    assert page.locator("#progress-text").inner_text() == "100% concluído: 3 de 3 contatos"
    assert page.locator("#cost-total").inner_text() == "R$ 0,11"  # 3 × R$ 0,0374 (utility)

    send_all()  # the sender finds no one left: finished
    page.locator("#campaign-status-label", has_text="Concluída").wait_for(timeout=8000)
    assert page.locator("#campaign-announce").inner_text() == "Concluída"
    assert page.locator("#campaign-actions form:not([hidden])").count() == 0
    assert page.evaluate("window.loadedOnce") is True
    # Finished, but Meta's statuses still come in: the page goes on following them for an hour.
    Message.objects.filter(recipient__campaign=campaign).update(status="read", read_at=timezone.now())
    shown(page, "[data-figure=read] strong", "3")
    assert page.evaluate("window.loadedOnce") is True and polls


def test_pause_and_resume_here_and_from_another_tab(live_server, pages, data):
    campaign = start(data["aviso"], scheduled_at=timezone.now() + timedelta(hours=2))
    page = pages(live_server, data["owner"])
    page.goto(url(live_server, "dashboard-campaign", campaign.pk))
    assert page.locator(".notice.waiting", has_text="Agendada para").is_visible()
    assert not page.locator("#action-resume").is_visible()
    page.click("#action-pause")
    page.locator("#paused-reason", has_text="Pausada por alguém da equipe").wait_for()
    assert page.locator("#campaign-status-label").inner_text() == "Pausada"
    assert not page.locator("#action-pause").is_visible()
    page.click("#action-resume")
    page.locator(".flash", has_text="Campanha retomada.").wait_for()
    assert page.locator("#campaign-status-label").inner_text() == "Agendada"

    # Another administrator pauses it: this page changes its buttons by itself.
    page.evaluate("window.loadedOnce = true")
    campaigns.pause(campaign.pk)
    page.locator("#action-resume").wait_for(state="visible", timeout=8000)
    assert not page.locator("#action-pause").is_visible()
    assert page.locator("#campaign-announce").inner_text() == "Pausada"
    assert page.evaluate("window.loadedOnce") is True

    # Cancelling asks first; saying no changes nothing.
    page.click("#action-cancel")
    assert page.dialogs[-1][0] == "confirm" and "Cancelar esta campanha?" in page.dialogs[-1][1]
    assert Campaign.objects.get().status == "paused"
    page.evaluate("window.confirm = () => true")
    page.click("#action-cancel")
    page.locator("#campaign-status-label", has_text="Cancelada").wait_for()
    assert Campaign.objects.get().status == "cancelled"


def test_by_keyboard_alone(live_server, pages, data):
    page = pages(live_server, data["owner"])
    page.goto(url(live_server, "dashboard-campaigns"))
    tab_to(page, "#new-campaign")
    page.keyboard.press("Enter")
    page.wait_for_url("**/campaigns/new/")
    tab_to(page, "#id_name")
    page.keyboard.type("Aviso pelo teclado")
    tab_to(page, "#id_template")
    page.keyboard.type("aviso")  # type-ahead picks it
    aviso = data["aviso"].pk
    assert page.locator("#id_template").input_value() == str(aviso)
    tab_to(page, f"#id_var-{aviso}-1")
    page.keyboard.type("{name|cliente}")
    tab_to(page, f"#id_var-{aviso}-2")
    page.keyboard.type("{attr:cupom|123}")
    tab_to(page, "input[name=labels][value=clientes]")
    page.keyboard.press("Space")
    tab_to(page, "#review-button")
    page.keyboard.press("Enter")
    page.locator("#review-count").wait_for()
    assert page.locator("#review-count").inner_text() == "3 contatos vão recebê-la"  # a utility template
    tab_to(page, "#create-campaign")
    page.keyboard.press("Enter")
    page.locator("#campaign-status-label", has_text="Enviando").wait_for()
    tab_to(page, "#action-pause")
    page.keyboard.press("Enter")
    page.locator("#campaign-status-label", has_text="Pausada").wait_for()
    tab_to(page, "#action-resume")
    page.keyboard.press("Enter")
    page.locator("#campaign-status-label", has_text="Enviando").wait_for()


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
def test_every_campaign_page_fits_the_screen_and_passes_axe(live_server, pages, data, viewport):
    finished = start(data["aviso"], name="Terminada")
    send_all()
    Message.objects.filter(recipient__campaign=finished).update(status="delivered", delivered_at=timezone.now())
    first = Message.objects.filter(recipient__campaign=finished).order_by("pk").first()
    Message.objects.filter(pk=first.pk).update(status="failed", error_code=131026, delivered_at=None)
    running = start(data["aviso"], name="Em andamento")
    campaigns.pause(running.pk)
    page = pages(live_server, data["owner"], viewport)
    promo = data["promo"].pk
    problems = []

    def check(name):
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > viewport["width"]:
            problems.append(f"{name}: {width} px wide")
        results = Axe().run(page, options={"runOnly": {"type": "tag", "values": [
            "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
        for violation in results.response["violations"]:
            if violation["impact"] in SEVERE:
                targets = [node["target"] for node in violation["nodes"]][:3]
                problems.append(f"{name}: {violation['id']} ({violation['impact']}) {targets}")
        screenshot(page, f"campaigns-{viewport['width']}-{name}")

    page.goto(url(live_server, "dashboard-campaigns"))
    check("list")
    page.goto(url(live_server, "dashboard-campaign-new"))
    page.select_option("#id_template", str(promo))
    page.click("#review-button")  # every refusal on screen
    check("wizard-errors")
    page.fill("#id_name", "Cupons")
    page.fill(f"#id_var-{promo}-1", "{first_name|cliente}")
    page.fill(f"#id_var-{promo}-2", "{attr:cupom|BEMVINDO}")
    page.fill(f"#id_header-{promo}", "https://loja.example/promo.jpg")
    page.fill(f"#id_button-{promo}-0", "{wa_id}")
    page.check("input[name=labels][value=clientes]")
    page.click("#review-button")
    page.locator("#review-count").wait_for()
    check("review")
    page.goto(url(live_server, "dashboard-campaign", finished.pk))
    page.locator("#timeline-details summary").click()
    check("report-finished")
    page.goto(url(live_server, "dashboard-campaign", running.pk))
    check("report-paused")
    assert problems == []
    wait_until(page, f"document.documentElement.scrollWidth <= {viewport['width']}")
