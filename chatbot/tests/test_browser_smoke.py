"""The browser-test machinery itself: Debian's Chromium, driven by Playwright, against the live
server, through the real login form (fixtures in conftest.py)."""

from chatbot.tests.conftest import OPERATOR_PASSWORD


def test_login_page_renders(live_server, page):
    response = page.goto(live_server.url + "/accounts/login/")

    assert response.status == 200
    assert page.locator("input[name=username]").is_visible()
    assert page.locator("input[name=password]").is_visible()
    # The stylesheet is served too: a page without it would still "render".
    assert page.evaluate("document.styleSheets.length") >= 1
    assert page.dialogs == [] and page.errors == []


def test_wrong_password_shows_the_error(live_server, page, django_user_model):
    django_user_model.objects.create_user(username="operador", password=OPERATOR_PASSWORD)
    page.goto(live_server.url + "/accounts/login/")

    page.fill("input[name=username]", "operador")
    page.fill("input[name=password]", "not-the-password")
    page.locator("form:has(input[name=password]) [type=submit]").click()

    page.locator("[role=alert]").wait_for()
    assert "/accounts/login/" in page.url
    assert page.locator("input[name=password]").is_visible()
    assert not any(cookie["name"] == "sessionid" for cookie in page.context.cookies())


def test_operator_logs_in(logged_in_page):
    from django.contrib.sessions.models import Session

    page = logged_in_page
    cookie = next(cookie for cookie in page.context.cookies() if cookie["name"] == "sessionid")

    # Logged in on the server's side, whatever page LOGIN_REDIRECT_URL leads to.
    session = Session.objects.get(session_key=cookie["value"]).get_decoded()
    assert session["_auth_user_id"] == str(page.user.pk)
    assert page.user.groups.filter(name="Operadores").exists()
    assert "/accounts/login/" not in page.url
