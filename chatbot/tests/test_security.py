"""Attacks answered correctly (issue 8, "Security checks"): forged webhook signatures, API token
guessing, the dashboard without login or without a CSRF token, and stored XSS from what customers
send. The basic cases are in test_webhook.py and test_dashboard.py; these are the variants."""

import base64
import copy
import hashlib
import hmac
import json

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chatbot.management.commands.bootstrap import OPERATORS_GROUP
from chatbot.models import ApiToken, Contact, Message, Note, PhoneNumber, Session, WebhookEvent
from chatbot.tests.helpers import load_payload, payload_bytes, post_signed
from chatbot.whatsapp.webhook import sign

pytestmark = pytest.mark.django_db

WEBHOOK = "/chatbot/webhook/"
# Closes an attribute, then two elements that run script when parsed unescaped.
XSS = "\"'><svg onload=alert(3)><img src=x onerror=alert(1)><script>alert(2)</script>"
LIVE_MARKUP = ("<svg onload", "<img src=x", "<script>alert", "'><svg", "\"><svg")


def post(client, body, header):
    return client.post(WEBHOOK, body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=header)


APP_SECRET = "test-app-secret"  # pytest.ini's WHATSAPP_APP_SECRET


def digest(body, secret=APP_SECRET):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- Webhook signatures --------------------------------------------------------------------------

BODY = payload_bytes("text")
FORGED = {
    "uppercase prefix": "SHA256=" + digest(BODY),
    "space before the prefix": " sha256=" + digest(BODY),
    "space inside the prefix": "sha256 =" + digest(BODY),
    "no prefix": digest(BODY),
    "sha1 prefix, sha1 digest": "sha1=" + hmac.new(APP_SECRET.encode(), BODY, hashlib.sha1).hexdigest(),
    "sha1 prefix, right digest": "sha1=" + digest(BODY),
    "two headers' worth": "sha1=" + "0" * 40 + ",sha256=" + digest(BODY),
    "wrong digest in uppercase": "sha256=" + digest(BODY + b" ").upper(),
    "wrong digest padded": "sha256=  " + digest(BODY + b" ") + "  ",
    "truncated digest": "sha256=" + digest(BODY)[:-1],
    "digest and one more character": "sha256=" + digest(BODY) + "0",
    "digest twice": "sha256=" + digest(BODY) * 2,
    "base64 digest": "sha256=" + base64.b64encode(bytes.fromhex(digest(BODY))).decode(),
    "another secret": "sha256=" + digest(BODY, "other-secret"),
    "the empty secret": "sha256=" + digest(BODY, ""),
    "the empty body's digest": "sha256=" + digest(b""),
    "plain hash, no key": "sha256=" + hashlib.sha256(BODY).hexdigest(),
}
NON_ASCII = pytest.param("sha256=" + digest(BODY)[:-1] + "é", id="non-ASCII")


@pytest.mark.parametrize("header", [*[pytest.param(value, id=name) for name, value in FORGED.items()], NON_ASCII])
def test_forged_signatures_are_403_and_nothing_is_stored(client, header):
    assert post(client, BODY, header).status_code == 403
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("position", [0, 1, len(BODY) // 2, len(BODY) - 2, len(BODY) - 1])
def test_a_replayed_body_with_one_byte_changed_is_403(client, position):
    header = sign(BODY)
    assert post(client, BODY, header).status_code == 200  # the original, as Meta sent it
    tampered = bytearray(BODY)
    tampered[position] ^= 0x01
    assert post(client, bytes(tampered), header).status_code == 403
    assert post(client, BODY + b" ", header).status_code == 403  # one byte added
    assert post(client, BODY[:-1], header).status_code == 403  # one byte cut
    assert WebhookEvent.objects.count() == 1


def test_a_body_signed_for_another_app_is_403(client):
    body = payload_bytes("status_read")
    assert post(client, body, sign(body, secret="another-apps-secret")).status_code == 403
    assert not WebhookEvent.objects.exists()


def test_a_replayed_valid_delivery_is_stored_again_but_applied_once(client, run_tasks):
    # A replay of a genuine body carries a genuine signature: it is Meta's retry as far as the
    # server can tell, so the answer is 200 and the unique wamid keeps the effect single.
    for _ in range(3):
        assert post_signed(client, BODY).status_code == 200
    run_tasks()
    assert WebhookEvent.objects.count() == 3
    assert Message.objects.filter(direction="in").count() == 1


def test_the_digest_is_not_case_or_padding_sensitive_but_still_checked(client):
    # The comparison lowercases and strips the hex: the same MAC written differently, not a bypass.
    assert post(client, BODY, "sha256=" + digest(BODY).upper()).status_code == 200
    assert post(client, BODY, "sha256=" + digest(BODY) + " ").status_code == 200


# --- API tokens ----------------------------------------------------------------------------------


@pytest.fixture
def token():
    return ApiToken.objects.create_token("loja")[1]


def read(client, token, message_id=1):
    return client.get(f"/chatbot/api/messages/{message_id}/", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_valid_token_is_throttled_after_its_burst_with_retry_after(client, token, settings):
    settings.API_REQUESTS_PER_MINUTE = 60  # burst of 6, then one a second
    statuses = [read(client, token).status_code for _ in range(8)]
    assert statuses[:6] == [404] * 6
    assert statuses[6:] == [429, 429]
    response = read(client, token)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Another integrator's token has its own budget.
    assert read(client, ApiToken.objects.create_token("erp")[1]).status_code == 404


@pytest.mark.parametrize("variant", [
    lambda token: token.upper(), lambda token: token[:-1], lambda token: token + "x", lambda token: token[:10],
    lambda token: f" {token}x ", lambda token: token.replace("hzt_", "HZT_"),
])
def test_near_miss_tokens_are_401(client, token, variant):
    response = read(client, variant(token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_guessing_tokens_is_throttled_with_429_but_valid_tokens_still_work(client, token):
    answers = [read(client, f"hzt_guess{attempt}") for attempt in range(30)]
    statuses = [answer.status_code for answer in answers]
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    assert int(answers[-1]["Retry-After"]) >= 1
    # Behind a proxy all clients share an address: a stranger's guesses lock nobody out.
    assert read(client, token).status_code != 429


# --- Dashboard without login ------------------------------------------------------------------------


@pytest.fixture
def session():
    number = PhoneNumber.objects.default()
    contact = Contact.objects.create(wa_id="5511987654321", name="Maria", last_inbound_at=timezone.now())
    session = Session.objects.create(contact=contact, phone_number=number, status=Session.Status.WAITING)
    Message.objects.create(phone_number=number, contact=contact, session=session, direction="in",
                           source="customer", type="text", text="oi", status="received", wamid="wamid.SEC1",
                           media_status="failed", media_id="1")
    return session


def dashboard_urls(session):
    message = session.messages.get()
    event = WebhookEvent.objects.create(body="{}", result="failed", error="x")
    gets = ["/chatbot/dashboard/", "/chatbot/dashboard/conversations/", "/chatbot/dashboard/contacts/",
            "/chatbot/dashboard/templates/", "/chatbot/dashboard/webhooks/",
            reverse("chatbot:dashboard-conversation", args=[session.pk]),
            reverse("chatbot:dashboard-conversation-updates", args=[session.pk]),
            reverse("chatbot:dashboard-contact", args=[session.contact_id]),
            reverse("chatbot:dashboard-contact-export", args=[session.contact_id]),
            reverse("chatbot:dashboard-contact-anonymize", args=[session.contact_id]),
            reverse("chatbot:dashboard-webhook", args=[event.pk]),
            reverse("chatbot:media-file", args=[message.pk])]
    posts = {
        reverse("chatbot:dashboard-conversation-reply", args=[session.pk]): {"text": "oi"},
        reverse("chatbot:dashboard-conversation-template", args=[session.pk]): {"template": "1"},
        reverse("chatbot:dashboard-conversation-action", args=[session.pk]): {"action": "close"},
        reverse("chatbot:dashboard-conversation-note", args=[session.pk]): {"text": "nota"},
        reverse("chatbot:dashboard-media-retry", args=[message.pk]): {},
        reverse("chatbot:dashboard-contact-update", args=[session.contact_id]): {"field": "blocked", "value": "1"},
        reverse("chatbot:dashboard-contact-anonymize", args=[session.contact_id]): {"confirm": "5511987654321"},
        reverse("chatbot:dashboard-templates-sync"): {},
        reverse("chatbot:dashboard-webhook-reprocess", args=[event.pk]): {},
    }
    return gets, posts


def state():
    """Everything a dashboard action could change."""
    return (list(Session.objects.values_list("status", "assigned_to", "closed_at")),
            list(Contact.objects.values_list("name", "wa_id", "blocked", "opted_out", "anonymized_at")),
            Message.objects.count(), list(Message.objects.values_list("media_status", flat=True)),
            Note.objects.count(), list(WebhookEvent.objects.values_list("result", "attempts")))


def test_every_dashboard_page_and_action_sends_anonymous_visitors_to_login(client, session):
    gets, posts = dashboard_urls(session)
    before = state()
    for url in gets:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
    for url, data in posts.items():
        response = client.post(url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
    assert state() == before


def test_a_logged_in_non_operator_can_do_nothing(client, session, django_user_model):
    client.force_login(django_user_model.objects.create_user("curioso", password="x"))
    gets, posts = dashboard_urls(session)
    before = state()
    for url in gets:
        assert client.get(url).status_code == 403, url
    for url, data in posts.items():
        assert client.post(url, data).status_code == 403, url
    assert state() == before


# --- CSRF -------------------------------------------------------------------------------------------


@pytest.fixture
def operator(django_user_model):
    user = django_user_model.objects.create_user("ana", password="x", is_staff=False)
    user.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    return user


def test_every_dashboard_action_without_a_csrf_token_is_403_and_changes_nothing(session, operator,
                                                                                 django_user_model):
    _gets, posts = dashboard_urls(session)
    before = state()
    operator_client = Client(enforce_csrf_checks=True)
    operator_client.force_login(operator)
    admin_client = Client(enforce_csrf_checks=True)
    admin_client.force_login(django_user_model.objects.create_superuser("dono", password="x"))
    for url, data in posts.items():
        client = admin_client if "anonymize" in url else operator_client
        assert client.post(url, data).status_code == 403, url
        # A token from another session's cookie does not help either.
        assert client.post(url, {**data, "csrfmiddlewaretoken": "x" * 64}).status_code == 403, url
    assert state() == before


def test_the_same_note_with_the_csrf_token_is_saved(session, operator):
    # The control for the test above: the 403 came from CSRF, not from the data.
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    client.get(reverse("chatbot:dashboard-conversation", args=[session.pk]))
    token = client.cookies["csrftoken"].value
    url = reverse("chatbot:dashboard-conversation-note", args=[session.pk])
    assert client.post(url, {"text": "nota", "csrfmiddlewaretoken": token}).status_code == 302
    assert Note.objects.get().text == "nota"


def test_the_login_form_needs_the_csrf_token(operator):
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("login"), {"username": "ana", "password": "x"}).status_code == 403
    assert "_auth_user_id" not in client.session


# --- Stored XSS from what customers send -------------------------------------------------------------


def xss_webhook():
    """One signed delivery whose every customer-controlled text is markup: the profile name, a
    text, a document's file name and caption, a location, a contact card, a reply title."""
    payload = load_payload("text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["profile"]["name"] = XSS
    template = value["messages"][0]
    value["messages"] = []

    def add(kind, obj, suffix):
        message = {**copy.deepcopy(template), "id": f"wamid.XSS{suffix}", "type": kind, kind: obj}
        message.pop("text") if kind != "text" else None
        value["messages"].append(message)

    add("text", {"body": XSS}, 1)
    add("document", {"id": "999", "mime_type": "application/pdf", "filename": XSS + ".pdf", "caption": XSS}, 2)
    add("location", {"latitude": -23.5, "longitude": -46.6, "name": XSS, "address": XSS}, 3)
    add("contacts", [{"name": {"formatted_name": XSS}, "phones": [{"phone": XSS}]}], 4)
    add("interactive", {"type": "button_reply", "button_reply": {"id": XSS, "title": XSS}}, 5)
    add("reaction", {"message_id": "wamid.XSS1", "emoji": XSS}, 6)
    add("text", {"body": "quoting"}, 7)
    value["messages"][-1]["context"] = {"from": "5511987654321", "id": "wamid.XSS1"}
    return json.dumps(payload).encode()


@pytest.fixture
def hostile(client, run_tasks):
    assert post_signed(client, xss_webhook()).status_code == 200
    run_tasks()
    document = Message.objects.get(wamid="wamid.XSS2")
    # The file as if downloaded, so the thread shows its name as a link and as an image's alt text.
    Message.objects.filter(pk=document.pk).update(media_status="ready", media_file="media/x.pdf")
    image = Message.objects.create(
        phone_number=document.phone_number, contact=document.contact, session=document.session, direction="in",
        source="customer", type="image", wamid="wamid.XSS8", status="received", media_status="ready",
        media_mime_type="image/jpeg", media_filename=XSS + ".jpg", media_file="media/x.jpg")
    assert Message.objects.filter(direction="in").count() == 8
    return image.session


def assert_escaped(html, where):
    for markup in LIVE_MARKUP:
        assert markup not in html, f"{markup!r} unescaped in {where}"


def test_customer_markup_is_escaped_on_every_dashboard_page(hostile, operator, admin_user):
    client = Client()
    client.force_login(operator)
    contact = hostile.contact
    assert contact.name == XSS
    event = WebhookEvent.objects.get()
    urls = [reverse("chatbot:dashboard-conversation", args=[hostile.pk]),
            reverse("chatbot:dashboard-conversations"), reverse("chatbot:dashboard-conversations") + "?partial=1",
            reverse("chatbot:dashboard-contact", args=[contact.pk]), reverse("chatbot:dashboard-contacts"),
            reverse("chatbot:dashboard"), reverse("chatbot:dashboard-webhook", args=[event.pk]),
            reverse("chatbot:dashboard-webhooks")]
    admin = Client()
    admin.force_login(admin_user)
    for url in urls:
        response = (admin if "/webhooks/" in url else client).get(url)  # the webhook log is the admins'
        assert response.status_code == 200, url
        assert_escaped(response.content.decode(), url)
    thread = client.get(urls[0]).content.decode()
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in thread  # shown, as text
    updates = client.get(reverse("chatbot:dashboard-conversation-updates", args=[hostile.pk]),
                         {"after": 0, "mark": ""}).json()
    for html in updates.get("messages", []):
        assert_escaped(html, "updates")


@pytest.mark.parametrize("url", ["/chatbot/dashboard/conversations/", "/chatbot/dashboard/contacts/",
                                 "/chatbot/dashboard/webhooks/"])
def test_search_terms_are_escaped_when_shown_back(operator, admin_user, url):
    client = Client()
    client.force_login(admin_user if "/webhooks/" in url else operator)
    response = client.get(url, {"q": XSS, "result": XSS, "status": XSS})
    assert response.status_code == 200
    assert_escaped(response.content.decode(), url)


def test_customer_markup_is_escaped_in_the_admin(hostile, admin_client):
    message = Message.objects.get(wamid="wamid.XSS1")
    urls = [reverse(f"admin:chatbot_{name}_changelist") for name in
            ("message", "contact", "session", "webhookevent", "note", "accountevent", "pendingstatus")]
    urls += [reverse("admin:chatbot_message_change", args=[message.pk]),
             reverse("admin:chatbot_contact_change", args=[hostile.contact_id]),
             reverse("admin:chatbot_session_change", args=[hostile.pk]),
             reverse("admin:chatbot_webhookevent_change", args=[WebhookEvent.objects.get().pk]),
             reverse("admin:chatbot_message_changelist") + "?q=" + XSS]
    for url in urls:
        response = admin_client.get(url, follow=True)
        assert response.status_code == 200, url
        assert_escaped(response.content.decode(), url)
