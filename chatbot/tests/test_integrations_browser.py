"""The event-webhooks settings pages in a real headless Chromium: adding an endpoint against a
receiver on 127.0.0.1, its secret shown once and copied, then revealed and renewed; the test
button; the log's rows opened; the keyboard alone; and every page (the overview's notice too)
under axe-core at phone and desk widths (the fixtures also fail on any CSP violation or console
error)."""

import json
from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone

from chatbot.models import EventDelivery, WebhookEndpoint

from . import test_inbox_browser
from .conftest import screenshot
from .test_inbox_browser import DESK, PHONE, SEVERE, url
from .test_reports_browser import tab_to

pages = test_inbox_browser.pages  # the fixture: pages opened as a user, checked and closed after the test


@pytest.fixture
def owner(db, django_user_model):
    return django_user_model.objects.create_user("dono", password="x", is_staff=True)


def deliveries(endpoint):
    """A delivered, a failing and a failed delivery, the last with a hostile answer."""
    now = timezone.now()
    rows = []
    for index, (status, code, answer) in enumerate([
            ("delivered", 200, "ok"), ("pending", 503, "Service Unavailable"),
            ("failed", 500, "<script>alert(1)</script>" + "x" * 1000)]):
        event_id = f"evt_{index:024x}"
        body = json.dumps({"id": event_id, "type": "message.received", "created_at": now.isoformat(),
                           "data": {"id": 1, "text": "Olá, quero saber do meu pedido número 12345", "contact": {
                               "wa_id": "5511987654321", "name": "Maria Aparecida dos Santos Oliveira"}}})
        rows.append(EventDelivery.objects.create(
            endpoint=endpoint, event_id=event_id, type="message.received", body=body, status=status,
            created_at=now - timedelta(minutes=index), attempts=index + 1, response_status=code,
            response_body=answer, duration_ms=35 + index, last_attempt_at=now,
            next_attempt_at=now + timedelta(minutes=10) if status == "pending" else None,
            error="" if status == "delivered" else f"HTTP {code}"))
    return rows


def test_adding_testing_and_the_secret(live_server, pages, owner, receiver):
    page = pages(live_server, owner)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(url(live_server, "dashboard-settings"))
    page.click(f"a[href='{url(live_server, 'dashboard-settings-endpoints').removeprefix(live_server.url)}']")
    page.click("#new-endpoint")
    # Refused first (no such type of address), the form kept.
    page.fill("#id_url", "ftp://loja.example/eventos")
    page.fill("#id_description", "Loja virtual")
    page.check("input[name=types][value='message.received']")
    page.locator("main form button.primary").click()
    assert page.locator("#id_url_error, .errorlist").first.is_visible()
    assert page.locator("#id_description").input_value() == "Loja virtual"
    assert page.locator("input[name=types][value='message.received']").is_checked()
    assert not WebhookEndpoint.objects.exists()
    page.fill("#id_url", receiver.url)
    page.locator("main form button.primary").click()

    # The secret, once, with its copy button.
    page.locator("section.secret.fresh").wait_for()
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret not in page.url
    assert page.locator("#secret-value").input_value() == endpoint.secret
    screenshot(page, "endpoint-added")
    page.click("button[data-copy]")
    page.locator("#secret-said:not(:empty)").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == endpoint.secret

    # The test button: the receiver's answer in the message.
    page.click("#send-test")
    page.locator(".flash li", has_text="HTTP 200").wait_for()
    assert receiver.requests[-1]["headers"]["X-Hoztech-Event"] == "endpoint.test"
    # Back on the page, the secret is behind its disclosure until asked for.
    assert not page.locator("section.secret.fresh").count()
    assert not page.locator("#secret-value").is_visible()
    page.click("details#secret summary")
    assert page.locator("#secret-value").is_visible()
    assert page.locator("#secret-value").input_value() == endpoint.secret

    # A new secret asks first; saying no changes nothing.
    page.click("#new-secret")
    assert page.dialogs[-1][0] == "confirm"
    assert WebhookEndpoint.objects.get().secret == endpoint.secret
    page.evaluate("window.confirm = () => true")
    page.click("#new-secret")
    page.locator("section.secret.fresh").wait_for()
    renewed = WebhookEndpoint.objects.get().secret
    assert renewed != endpoint.secret and page.locator("#secret-value").input_value() == renewed


def test_the_log_disabling_and_replaying(live_server, pages, owner, receiver):
    endpoint = WebhookEndpoint.objects.create(url=receiver.url, secret="whsec_x", description="CRM")
    rows = deliveries(endpoint)
    page = pages(live_server, owner)
    page.goto(url(live_server, "dashboard-settings-endpoint", endpoint.pk))
    failed = page.locator(f"tbody[data-delivery='{rows[2].pk}']")
    failed.locator("summary").click()
    answer = failed.locator("pre.answer")
    assert answer.is_visible() and answer.inner_text().startswith("<script>alert(1)</script>")
    page.click("#disable-endpoint")
    page.locator("#enable-endpoint").wait_for()
    assert not WebhookEndpoint.objects.get().active
    page.click("#replay-failed")
    page.locator(".flash li").wait_for()
    assert EventDelivery.objects.get(pk=rows[2].pk).status == "pending"
    # The status filter: links, the current one marked.
    page.click(".status-filter a[href^='?status=pending']")
    assert page.locator(".status-filter a[aria-current=page]").get_attribute("href").startswith("?status=pending")
    assert page.locator("tbody[data-delivery]").count() == 2


def test_by_keyboard_alone(live_server, pages, owner, receiver):
    page = pages(live_server, owner)
    page.goto(url(live_server, "dashboard-settings-endpoints"))
    tab_to(page, "#new-endpoint")
    page.keyboard.press("Enter")
    page.wait_for_url("**/event-webhooks/new/")
    tab_to(page, "#id_url")
    page.keyboard.type(receiver.url)
    tab_to(page, "input[name=types][value='conversation.closed']")
    page.keyboard.press("Space")
    tab_to(page, "main form button.primary")
    page.keyboard.press("Enter")
    page.locator("section.secret.fresh").wait_for()
    assert WebhookEndpoint.objects.get().events == ["conversation.closed"]
    tab_to(page, "#send-test")
    page.keyboard.press("Enter")
    page.locator(".flash li", has_text="HTTP 200").wait_for()
    tab_to(page, "details#secret summary")
    page.keyboard.press("Enter")
    assert page.locator("#secret-value").is_visible()
    deliveries(WebhookEndpoint.objects.get())
    page.reload()
    tab_to(page, "tbody[data-delivery] summary", limit=60)
    page.keyboard.press("Enter")
    assert page.locator("tbody[data-delivery] pre.raw").first.is_visible()


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
def test_every_page_fits_the_screen_and_passes_axe(live_server, pages, owner, receiver, viewport):
    endpoint = WebhookEndpoint.objects.create(url=receiver.url + "/um/caminho/bem/comprido/para/ver/se/cabe",
                                              secret="whsec_x", description="Loja <b>virtual</b>",
                                              events=["message.received", "conversation.closed"])
    deliveries(endpoint)
    broken = WebhookEndpoint.objects.create(url="https://crm.example.com.br/webhooks/hoztech", secret="whsec_y",
                                            active=False, disabled_at=timezone.now(),
                                            disabled_reason=WebhookEndpoint.DISABLED_FAILING)
    page = pages(live_server, owner, viewport)
    axe = Axe()
    problems = []

    def check(name):
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > viewport["width"]:
            problems.append(f"{name}: {width} px wide")
        results = axe.run(page, options={"runOnly": {"type": "tag", "values": [
            "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
        for violation in results.response["violations"]:
            if violation["impact"] in SEVERE:
                targets = [node["target"] for node in violation["nodes"]][:3]
                problems.append(f"{name}: {violation['id']} ({violation['impact']}) {targets}")
        screenshot(page, f"event-webhooks-{viewport['width']}-{name}")

    page.goto(url(live_server, "dashboard"))
    assert page.locator("#disabled-endpoints").is_visible()
    check("overview-notice")
    page.goto(url(live_server, "dashboard-settings"))
    check("settings")
    page.goto(url(live_server, "dashboard-settings-endpoints"))
    check("list")
    page.goto(url(live_server, "dashboard-settings-endpoint-new"))
    page.locator("main form button.primary").click()  # the required URL: the browser says so
    page.fill("#id_url", "ftp://x.example/")
    page.locator("main form button.primary").click()
    page.locator(".errorlist").first.wait_for()
    check("new-with-errors")
    page.goto(url(live_server, "dashboard-settings-endpoint", endpoint.pk))
    page.click("details#secret summary")
    for summary in page.locator("tbody[data-delivery] summary").all():
        summary.click()
    check("endpoint")
    page.goto(url(live_server, "dashboard-settings-endpoint", broken.pk))
    check("endpoint-disabled")
    page.goto(url(live_server, "dashboard-settings-endpoint-edit", endpoint.pk))
    check("edit")
    page.goto(url(live_server, "dashboard-settings-endpoint-delete", endpoint.pk))
    check("delete")
    assert problems == [], "\n".join(problems)
