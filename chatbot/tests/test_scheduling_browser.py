"""Scheduling a message from a conversation, and cancelling it, in a real headless Chromium at a
phone's width: by keyboard alone, under the page's strict CSP and axe-core."""

from datetime import timedelta

from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone

from chatbot.models import Message, Session

from .helpers import make_session
from .test_inbox_browser import PHONE, SEVERE, url

TEXT = "Oi Joana, seu pedido fica pronto amanhã às 10h."


def axe_problems(page):
    # The flash list is base.html's (its <li role="status"> in a <ul> is axe's "list" finding, a
    # page-wide matter): dismissed first, so this looks at the scheduling parts.
    for button in page.locator(".flash .dismiss").all():
        button.click()
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
    return [f"{violation['id']} ({violation['impact']}) {[node['target'] for node in violation['nodes']][:3]}"
            for violation in results.response["violations"] if violation["impact"] in SEVERE]


def test_an_operator_schedules_a_message_and_cancels_it_by_keyboard_on_a_phone(live_server, logged_in_page):
    page = logged_in_page
    page.set_viewport_size(PHONE)
    session = make_session(name="Joana", status=Session.Status.OPEN)
    page.goto(url(live_server, "dashboard-conversation", session.pk))

    # What was typed in the reply box goes into the form the compose area's "Schedule" opens.
    page.fill("#reply-text", TEXT)
    page.focus("#reply-form a[data-open-details=schedule]")
    page.keyboard.press("Enter")
    assert page.evaluate("document.getElementById('schedule').open") is True
    assert page.evaluate("document.activeElement.id") == "schedule-at"
    assert (page.input_value("#schedule-text"), page.input_value("#reply-text")) == (TEXT, "")
    assert page.locator("#schedule-form fieldset[data-kind=template]").is_hidden()

    at = (timezone.localtime() + timedelta(hours=2)).replace(second=0, microsecond=0)
    page.fill("#schedule-at", f"{at:%Y-%m-%dT%H:%M}")
    page.focus("#schedule-form button[type=submit]")
    page.keyboard.press("Enter")
    page.locator(".flash li").first.wait_for()
    message = Message.objects.get(direction="out")
    assert (message.send_after, message.text, message.status) == (at, TEXT, "queued")

    # Listed with when it goes and who scheduled it; in the thread where it will be, with a clock.
    item = page.locator(f"#s{message.pk}")
    assert f"{at:%d/%m/%Y %H:%M}" in item.inner_text() and "operador" in item.inner_text()
    bubble = page.locator(f"#m{message.pk}.scheduled")
    assert "🕓" in bubble.locator("footer").inner_text() and f"{at:%d/%m %H:%M}" in bubble.inner_text()
    assert bubble.locator(".ticks").count() == 0  # not the sending clock of a queued message
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.evaluate("document.getElementById('schedule').open = true")
    assert axe_problems(page) == []

    # Cancelling asks first (a refusal leaves it), then removes it from the list and the thread.
    cancel = item.locator("button")
    cancel.focus()
    page.keyboard.press("Enter")
    assert [kind for kind, _text in page.dialogs] == ["confirm"]
    assert Message.objects.filter(pk=message.pk).exists()
    page.evaluate("window.confirm = () => true")
    cancel.focus()
    page.keyboard.press("Enter")
    page.locator(f"#s{message.pk}").wait_for(state="detached")
    assert page.locator(f"#m{message.pk}").count() == 0
    assert not Message.objects.filter(pk=message.pk).exists()
    assert axe_problems(page) == []
