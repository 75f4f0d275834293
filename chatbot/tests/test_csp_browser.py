"""The Content-Security-Policy on every page, in Chromium: each page of the dashboard and of the
admin loads and works with no violation and no console error (the `page` fixture checks both)."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from chatbot.models import (
    ApiToken,
    BotSettings,
    CannedReply,
    Contact,
    Department,
    Flow,
    FlowStep,
    Message,
    PhoneNumber,
    Session,
    Template,
    WebhookEvent,
)
from chatbot.tests.conftest import OPERATOR_PASSWORD

POLICY = {
    "default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "object-src": "'none'",
    "frame-ancestors": "'none'", "base-uri": "'none'", "form-action": "'self'",
}


@pytest.fixture
def data(db):
    contact = Contact.objects.create(wa_id="5511987654321", name="Joana", last_inbound_at=timezone.now())
    session = Session.objects.create(contact=contact, phone_number=PhoneNumber.objects.default(), status="waiting",
                                     waiting_since=timezone.now(), department=Department.objects.create(name="Vendas"))
    for index in range(3):
        Message.objects.create(phone_number=session.phone_number, contact=contact, session=session,
                               direction="in" if index % 2 == 0 else "out", source="customer", type="text",
                               status="received", text=f"mensagem {index}")
    CannedReply.objects.create(title="Saudação", text="Olá {name}!")
    Template.objects.create(name="pedido_pronto", language="pt_BR", category="UTILITY", status="APPROVED",
                            components=[{"type": "BODY", "text": "Olá {{1}}"}])
    event = WebhookEvent.objects.create(body='{"object": "whatsapp_business_account"}', result="failed", error="x")
    flow = Flow.objects.create(name="Pedidos", menu_title="Pedidos")
    FlowStep.objects.create(flow=flow, name="Número", text="Qual o número do pedido?", save_as="pedido")
    ApiToken.objects.create_token("ERP")
    BotSettings.load()
    return {"session": session, "contact": contact, "event": event, "flow": flow}


def policy_of(response):
    header = response.headers["content-security-policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if " " in part.strip())


def test_the_login_page_has_the_strict_policy(live_server, page):
    response = page.goto(live_server.url + "/accounts/login/")
    policy = policy_of(response)
    assert {name: policy.get(name) for name in POLICY} == POLICY
    page.fill("input[name=username]", "ninguem")
    page.fill("input[name=password]", "errada")
    page.locator("form [type=submit]").click()
    page.locator("[role=alert]").wait_for()


def test_every_dashboard_page_works_under_the_policy(logged_in_page, live_server, data):
    page = logged_in_page
    page.user.is_staff = True  # the webhook log is the administrators'
    page.user.save()
    session, contact, event = data["session"], data["contact"], data["event"]
    urls = [reverse("chatbot:dashboard"), reverse("chatbot:dashboard-conversations"),
            reverse("chatbot:dashboard-conversations") + "?status=waiting",
            reverse("chatbot:dashboard-conversation", args=[session.pk]), reverse("chatbot:dashboard-contacts"),
            reverse("chatbot:dashboard-contact", args=[contact.pk]),
            reverse("chatbot:dashboard-contact-anonymize", args=[contact.pk]), reverse("chatbot:dashboard-templates"),
            reverse("chatbot:dashboard-webhooks"), reverse("chatbot:dashboard-webhook", args=[event.pk])]
    for url in urls:
        response = page.goto(live_server.url + url)
        assert response.status == 200, url
        assert policy_of(response)["script-src"] == "'self'", url
        page.wait_for_load_state("networkidle")
    # The scripts run under the policy: the language switch submits on change, the list filter too.
    page.goto(live_server.url + reverse("chatbot:dashboard-webhooks"))
    page.select_option("select[name=result]", "failed")
    page.wait_for_url(re.compile(r"result=failed"))
    page.click("details.account summary")  # the account menu holds the language
    page.select_option("select[name=language]", "en")
    page.locator("h1", has_text="Webhook log").wait_for()
    # The charts draw (SVG, no inline style).
    page.goto(live_server.url + reverse("chatbot:dashboard"))
    assert page.locator("svg.bar-pair rect").count() >= 2 * 14
    # The canned reply fills the box (its variables are filled when it is sent).
    page.goto(live_server.url + reverse("chatbot:dashboard-conversation", args=[session.pk]))
    page.locator("#reply-text").press_sequentially("/sauda")
    page.locator("#canned [role=option]", has_text="Saudação").click()
    assert page.input_value("#reply-form textarea[name=text]") == "Olá {name}!"
    assert page.errors == []


def test_the_admin_works_under_the_policy(live_server, page, data, django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    django_user_model.objects.create_superuser("dono", password=OPERATOR_PASSWORD)
    page.goto(live_server.url + "/admin/login/")
    page.fill("input[name=username]", "dono")
    page.fill("input[name=password]", OPERATOR_PASSWORD)
    page.locator("[type=submit]").click()
    page.wait_for_url(lambda url: "/admin/login/" not in url)
    department = Department.objects.get()
    urls = ["/admin/", "/admin/chatbot/", "/admin/chatbot/session/", "/admin/chatbot/message/",
            f"/admin/chatbot/session/{data['session'].pk}/change/",
            f"/admin/chatbot/department/{department.pk}/change/",
            "/admin/chatbot/department/add/", f"/admin/chatbot/flow/{data['flow'].pk}/change/",
            "/admin/chatbot/botsettings/", "/admin/chatbot/apitoken/", "/admin/chatbot/keywordrule/add/",
            "/admin/chatbot/businesshours/add/", "/admin/auth/user/add/"]
    for url in urls:
        response = page.goto(live_server.url + url)
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
    # A change saved from a form with JavaScript widgets (the operators' two-box selector).
    page.goto(live_server.url + f"/admin/chatbot/department/{department.pk}/change/")
    page.check("input[name=restricted]")
    page.locator("input[name=_save]").click()
    page.wait_for_url(re.compile(r"/admin/chatbot/department/$"))
    assert Department.objects.get().restricted
    assert LogEntry.objects.exists()
