"""The reports page in a real headless Chromium: its charts and heat map drawn, the period and the
filters changed by keyboard alone, a CSV downloaded, no sideways scroll on a phone, and axe-core
at phone and desk widths (the page fixture also fails on any CSP violation or console error)."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from . import test_inbox_browser, test_reports
from .test_inbox_browser import DESK, PHONE, SEVERE, url, wait_until
from .test_reports import D, at

pages = test_inbox_browser.pages  # the fixture: pages opened as a user, checked and closed after the test
data = test_reports.data  # the fixture: the reports' hand-made data set


def tab_to(page, selector, limit=40):
    """Press Tab until the focused element matches `selector` (by keyboard alone)."""
    for _ in range(limit):
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
        page.keyboard.press("Tab")
    pytest.fail(f"{selector} never got the focus by Tab")


def test_the_charts_and_the_heat_map_are_drawn(live_server, pages, data):
    page = pages(live_server, data["owner"])
    page.goto(url(live_server, "dashboard-reports") + "?period=7d")
    assert page.locator("#times-title").is_visible()
    # The waiting-time chart: two bars per bucket; the scores; the hours of the week and the line.
    assert page.locator("figure.chart .bar-pair rect.wall").count() == 6
    assert page.locator(".hbars svg rect").count() == 5
    assert page.locator(".staffing svg rect.messages").count() == 168
    assert page.locator(".staffing svg polyline.online").count() == 1
    heights = page.locator(".bar-pair rect.wall").evaluate_all("rects => rects.map(r => r.getBBox().height)")
    assert heights[0] > 0 and heights[4] == 0  # 40 s under a minute; nothing between 1 and 4 h
    # The heat map: 7 × 24 cells, the busiest (D at 9h, 2 messages) the darkest.
    assert page.locator(".heat-map tbody td").count() == 7 * 24
    weekday = at(D, "09:00").weekday()
    busiest = page.locator(f".heat-map tbody tr:nth-child({weekday + 1}) td:nth-of-type(10)")
    assert busiest.inner_text() == "2" and busiest.get_attribute("class") == "heat-4"
    colours = busiest.evaluate("td => [getComputedStyle(td).backgroundColor, getComputedStyle(td).color]")
    assert colours == ["rgb(7, 94, 84)", "rgb(255, 255, 255)"]  # from reports.css, not an inline style
    assert page.locator("#report-context", has_text="Todos os departamentos").count() == 1


def test_period_and_filters_change_by_keyboard(live_server, pages, data):
    page = pages(live_server, data["owner"])
    page.goto(url(live_server, "dashboard-reports"))
    assert page.locator("#r-period").input_value() == "30d"
    page.locator("#r-period").focus()
    page.keyboard.press("ArrowUp")  # Últimos 7 dias
    tab_to(page, "#r-department")
    page.keyboard.type("Ven")  # type-ahead: Vendas
    tab_to(page, "#report-filters button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda address: "period=7d" in address and f"department={data['vendas'].pk}" in address)
    assert page.locator("#r-period").input_value() == "7d"
    cards = dict(zip(page.locator(".report-summary .caption").all_inner_texts(),
                     page.locator(".report-summary strong").all_inner_texts(), strict=True))
    assert cards["Conversas iniciadas"] == "3" and cards["Mediana da 1ª resposta (tempo corrido)"] == "2 min"
    assert page.locator("#report-context", has_text="Vendas").count() == 1

    # A date typed in: the period becomes the custom one (reports.js), applied by keyboard.
    day = at(D, "00:00").date().isoformat()
    page.fill("#r-from", day)
    page.fill("#r-to", day)
    assert page.locator("#r-period").input_value() == "custom"
    page.locator("#r-to").focus()
    tab_to(page, "#report-filters button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda address: "period=custom" in address and f"from={day}" in address)
    assert page.locator(".report-summary .stat").first.locator("strong").inner_text() == "2"  # S1 and S6


def test_a_table_downloads_as_csv(live_server, pages, data, tmp_path):
    page = pages(live_server, data["owner"])
    page.goto(url(live_server, "dashboard-reports") + "?period=7d")
    with page.expect_download() as download:
        page.click("text=Baixar o resumo (CSV)")
    assert download.value.suggested_filename == "relatorio-resumo.csv"
    target = tmp_path / "resumo.csv"
    download.value.save_as(target)
    text = target.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "Indicador;Valor" and "Conversas iniciadas;6" in text
    with page.expect_download() as download:
        page.click("#table-times + .csv a")
    assert download.value.suggested_filename == "relatorio-tempos.csv"


@pytest.mark.parametrize("viewport", [PHONE, DESK], ids=["phone", "desk"])
def test_reports_and_my_day_fit_the_screen_and_pass_axe(live_server, pages, data, viewport):
    page = pages(live_server, data["ana"], viewport)
    problems = []
    for address in (url(live_server, "dashboard-reports") + "?period=7d", url(live_server, "dashboard")):
        page.goto(address)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > viewport["width"]:
            problems.append(f"{address}: {width} px wide")
        results = Axe().run(page, options={"runOnly": {"type": "tag", "values": [
            "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
        for violation in results.response["violations"]:
            if violation["impact"] in SEVERE:
                targets = [node["target"] for node in violation["nodes"]][:3]
                problems.append(f"{address}: {violation['id']} ({violation['impact']}) {targets}")
    assert problems == []
    page.goto(url(live_server, "dashboard"))
    assert page.locator("#my-day", has_text="Meu dia").count() == 1
    if viewport is PHONE:
        # The heat map scrolls inside its own box, which the keyboard can reach.
        page.goto(url(live_server, "dashboard-reports") + "?period=7d")
        box = page.locator(".scroll-x")
        assert box.evaluate("b => b.scrollWidth > b.clientWidth") and box.get_attribute("tabindex") == "0"
        wait_until(page, "document.documentElement.scrollWidth <= 390")
