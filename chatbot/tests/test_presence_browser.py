"""Presence and automatic assignment in a real headless Chromium: the top bar's control, a
colleague's page, away after a while without input, and a new customer handed to the online
operator, whose list shows it by itself."""

from datetime import timedelta

from axe_playwright_python.sync_playwright import Axe

from chatbot.models import Department, OperatorProfile, Session

from . import test_inbox_browser
from .test_inbox_browser import PHONE, SEVERE, url, wait_until, waiting_customer

pages = test_inbox_browser.pages  # the fixture: pages opened as an operator, checked and closed after the test


def presence_of(page):
    return page.get_attribute("#my-presence", "data-presence")


def choose(page, presence):
    page.click("details.presence summary")
    page.click(f"details.presence button[value={presence}]")
    page.locator(f"#my-presence[data-presence={presence}]").wait_for()


def test_an_operator_switches_to_away_and_back_and_a_colleague_sees_it(live_server, pages, ana, bia):
    session = waiting_customer()
    ana_page = pages(live_server, ana)
    ana_page.goto(url(live_server, "dashboard-conversations"))
    wait_until(ana_page, "document.getElementById('my-presence').dataset.presence === 'online'")  # the first pulse

    choose(ana_page, "away")
    assert OperatorProfile.objects.get(user=ana).chosen_presence == "away"
    assert ana_page.get_attribute("details.presence button[value=away]", "aria-pressed") == "true"
    ana_page.wait_for_timeout(2500)  # a pulse with input since: still away, as chosen
    assert presence_of(ana_page) == "away"

    bia_page = pages(live_server, bia)
    bia_page.goto(url(live_server, "dashboard-conversation", session.pk))
    option = bia_page.locator("#conversation-actions select[name=user] option", has_text="ana")
    assert option.get_attribute("data-presence") == "away"
    assert option.inner_text().startswith("◐ ana (")  # a mark of its own shape and a word, not colour alone

    choose(ana_page, "online")
    bia_page.reload()
    assert option.get_attribute("data-presence") == "online"
    assert option.inner_text().startswith("● ana (")
    assert bia_page.locator("#bulk-form select[name=user] option[data-presence=online]", has_text="ana").count() == 1


def test_away_after_a_while_without_input_and_back_with_a_mouse_move(live_server, pages, ana, settings):
    settings.PRESENCE_AWAY_AFTER = timedelta(seconds=3)
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard-conversations"))
    wait_until(page, "document.getElementById('my-presence').dataset.presence === 'online'")
    wait_until(page, "document.getElementById('my-presence').dataset.presence === 'away'")  # no input for 3 s
    page.mouse.move(200, 300)
    page.mouse.move(220, 320)
    wait_until(page, "document.getElementById('my-presence').dataset.presence === 'online'")


def test_least_busy_hands_a_new_customer_to_the_online_operator_whose_list_shows_it(
        live_server, pages, ana, bia, customer_says):
    vendas = Department.objects.create(name="Vendas", assignment="least_busy")
    vendas.operators.add(ana, bia)  # bia never opens the dashboard: offline
    page = pages(live_server, ana)
    page.goto(url(live_server, "dashboard-conversations") + "?assignee=me")
    wait_until(page, "document.getElementById('my-presence').dataset.presence === 'online'")
    page.evaluate("window.loadedOnce = true")

    customer_says("atendente")

    session = Session.objects.get(contact__wa_id="5511987654321")
    assert (session.status, session.assigned_to) == ("open", ana)
    page.locator(f"li[data-session='{session.pk}']").wait_for()  # within a 2 s poll
    assert page.evaluate("window.loadedOnce") is True  # in place, no reload


def test_the_top_bar_fits_a_phone_with_the_presence_menu_open(live_server, pages, ana):
    page = pages(live_server, ana, PHONE, has_touch=True, is_mobile=True)
    page.goto(url(live_server, "dashboard-conversations"))
    page.click("details.presence summary")
    menu = page.locator(".presence-menu")
    menu.wait_for()
    box = menu.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
    assert [violation["id"] for violation in results.response["violations"] if violation["impact"] in SEVERE] == []
