import os
import re
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    # Hashed static names need `collectstatic`; tests render templates without it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.MEDIA_ROOT = tmp_path / "media"
    # Hashing a password the production way takes a third of a second, and most tests log someone in.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Each test configures its own bot: nothing cached from the one before.
    from chatbot import campaign_sending, conversation, events

    conversation._config_cache["at"] = float("-inf")
    events.forget_endpoints()  # the endpoints of the test before were rolled back, not deleted
    campaign_sending.wake()  # nor the campaigns' idle look of the test before
    # Nor anything the last test cached (health reports, the dashboard's counts).
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def ana(django_user_model):
    """Ana, an operator (password "x")."""
    from .helpers import make_operator

    return make_operator(django_user_model, "ana", first_name="Ana")


@pytest.fixture
def bia(django_user_model):
    """Bia, Ana's colleague (password "x")."""
    from .helpers import make_operator

    return make_operator(django_user_model, "bia", first_name="Bia")


@pytest.fixture
def operator(ana):
    return ana


@pytest.fixture
def owner(django_user_model):
    """The business's owner, an administrator (staff, not superuser; password "x")."""
    return django_user_model.objects.create_user("dono", password="x", is_staff=True)


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def as_owner(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def run_tasks(db):
    """Apply stored webhook events, run every ready task and send what they queued, as `db_worker` would."""
    from unittest import mock

    from django.utils import timezone
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    from chatbot import inbound, outbox

    def run():
        inbound.drain(limit=None)
        # Inside a test's transaction nothing commits, so the on-commit turn never runs: the
        # conversation's safety-net task does the work, now rather than after its delay.
        DBTaskResult.objects.filter(task_path="chatbot.conversation.handle_inbound_message").update(
            run_after=timezone.now()
        )
        # The worker closes "old" connections between tasks; inside a test's transaction that
        # would close the test's own connection.
        with mock.patch("django_tasks_db.management.commands.db_worker.close_old_connections"):
            Worker(
                queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False,
                max_tasks=None, worker_id="test-worker", excluded_queue_names=[],
            ).run()
        while outbox.drain():
            pass

    return run


@pytest.fixture
def receiver(settings):
    """A system receiving our event webhooks on 127.0.0.1 (receiver.py), which it may."""
    from chatbot.tests.receiver import Receiver

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    with Receiver() as running:
        yield running


@pytest.fixture
def fake_graph(settings):
    """A fake Graph API on 127.0.0.1 (fake_graph.py) that chatbot/graph.py talks to over real HTTP."""
    from chatbot.tests.fake_graph import FakeGraph

    with FakeGraph(version=settings.WHATSAPP_API_VERSION) as fake:
        settings.WHATSAPP_GRAPH_URL = fake.url
        settings.WHATSAPP_ACCESS_TOKEN = fake.token
        yield fake


# --- Browser tests: real headless Chromium (Debian's package) driven by Playwright -------------

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling Google's hosts, which this
# network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "artifacts" / "screenshots"


def pytest_collection_modifyitems(items):
    # Playwright's sync API keeps an asyncio loop running in the main thread from the browser's
    # start to the end of the session; browser tests run last so no other test runs beside it.
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))


@pytest.fixture
def customer_says(live_server, settings, run_tasks):
    """say(text, wa_id=..., name=...): a customer's message posted to the live server as Meta
    posts it (signed), then applied by the worker."""
    import itertools
    import time

    import requests

    from chatbot.whatsapp import webhook

    wamids = itertools.count()

    def say(text, wa_id="5511987654321", name="Joana"):
        number = settings.WHATSAPP_PHONE_NUMBER_ID or "sandbox"
        body = webhook.customer_message(phone_number_id=number, wa_id=wa_id, name=name,
                                        wamid=f"wamid.browser.{next(wamids)}.{time.time()}", text=text)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": webhook.sign(body)}
        response = requests.post(f"{live_server.url}/chatbot/webhook/", data=body, timeout=5, headers=headers)
        assert response.status_code == 200
        run_tasks()
    return say


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session. A missing browser fails the test: never a skip,
    so a machine without it cannot pass the suite by running fewer tests."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package (apt-get install chromium); "
                    ".ci/run does it", pytrace=False)
    from playwright.sync_api import sync_playwright

    # That running loop makes Django refuse database calls from the test's own code ("you cannot
    # call this from an async context"); nothing async runs there, so the check is off for this
    # test process, only while the browser lives.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


# Every page of a browser test reports the Content-Security-Policy violations it meets; an init
# script is not subject to the page's policy, and the binding outlives navigations.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolation(`${event.effectiveDirective} blocked ${event.blockedURI || "inline"} `
                        + `in ${event.sourceFile || document.URL}:${event.lineNumber}`);
});
"""


def watch(context):
    """Collect, for every page of `context`, CSP violations and console errors (a refused resource,
    an exception logged): {"violations": [...], "console": [...]}."""
    found = {"violations": [], "console": []}
    context.expose_binding("__cspViolation", lambda source, text: found["violations"].append(text))
    context.add_init_script(REPORT_VIOLATIONS)
    context.on("console", lambda message: message.type == "error" and found["console"].append(
        f"{message.text} ({message.location.get('url', '')})"))
    return found


def assert_clean(found, allowed=()):
    """No CSP violation, and no console error but those matching a pattern of `allowed`."""
    assert found["violations"] == [], f"Content-Security-Policy violations: {found['violations']}"
    unexpected = [text for text in found["console"] if not any(re.search(pattern, text) for pattern in allowed)]
    assert unexpected == [], f"console errors: {unexpected}"


def new_page(browser, **options):
    """A fresh context and page (5 s default timeout), watched (`page.found`). `page.dialogs` collects
    every JS dialog as (type, message), dismissed; `page.errors` collects uncaught JS errors;
    `page.allowed_console` lists patterns of console errors a test expects (a page answering 403)."""
    context = browser.new_context(locale="pt-BR", viewport={"width": 1280, "height": 800}, **options)
    context.set_default_timeout(5000)
    found = watch(context)
    page = context.new_page()
    page.found, page.dialogs, page.errors, page.allowed_console = found, [], [], []

    def on_dialog(dialog):
        page.dialogs.append((dialog.type, dialog.message))
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    file_name = re.sub(r"[^\w.-]+", "_", name) + ".png"
    page.screenshot(path=str(SCREENSHOTS / file_name), full_page=True, timeout=5000)


@pytest.fixture
def page(browser, request):
    """A watched page (`new_page`). A screenshot goes to artifacts/screenshots/<test name>.png, pass
    or fail; at the end, the test fails on any CSP violation or unexpected console error."""
    new = new_page(browser)
    try:
        yield new
        assert_clean(new.found, new.allowed_console)
    finally:
        try:
            screenshot(new, request.node.name)
        finally:
            new.context.close()


OPERATOR_PASSWORD = "operador-senha-123"


@pytest.fixture
def logged_in_page(live_server, page, django_user_model, settings):
    """`page` logged in, through the real login form, as `operador`, a member of the operators
    group; the user is `page.user`, its password OPERATOR_PASSWORD."""
    from django.contrib.auth.models import Group

    # PBKDF2 costs about half a second per hash, twice per login: a fast hasher keeps a suite of
    # logged-in browser tests quick (the live server thread reads the same settings).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    from chatbot.management.commands.bootstrap import OPERATORS_GROUP

    user = django_user_model.objects.create_user(username="operador", password=OPERATOR_PASSWORD,
                                                 first_name="Ana")
    user.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", OPERATOR_PASSWORD)
    page.locator("form:has(input[name=password]) [type=submit]").click()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
    except PlaywrightTimeout:
        pytest.fail(f"logging in as {user.username} did not leave the login page ({page.url})", pytrace=False)
    assert any(cookie["name"] == "sessionid" for cookie in page.context.cookies()), "no session cookie after login"
    page.user = user
    return page


# --- Campaigns: approved templates to send -----------------------------------------------------


@pytest.fixture
def promo(db):
    from chatbot.models import Template
    from chatbot.tests.helpers import PROMO

    return Template.objects.create(name="promo_semana", language="pt_BR", category="MARKETING", status="APPROVED",
                                   components=PROMO)


@pytest.fixture
def aviso(db):
    from chatbot.models import Template

    return Template.objects.create(name="aviso", language="pt_BR", category="UTILITY", status="APPROVED",
                                   components=[{"type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} chegou."}])
