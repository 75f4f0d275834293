import pytest
from django.contrib import admin
from django.urls import reverse

from chatbot.models import ApiToken, Contact, Message, PhoneNumber, Session, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(db):
    number = PhoneNumber.objects.default()
    contact = Contact.objects.create(wa_id="5511987654321", name="Zé <b>Silva</b>")
    session = Session.objects.create(contact=contact, phone_number=number)
    Message.objects.create(
        phone_number=number,
        contact=contact,
        session=session,
        direction="in",
        source="customer",
        type="text",
        text="Olá",
        status="received",
        wamid="wamid.ABC",
    )
    WebhookEvent.objects.create(body='{"object": "whatsapp_business_account"}', result="processed")
    ApiToken.objects.create_token("ERP")


def test_every_chatbot_model_is_registered():
    from django.apps import apps

    for model in apps.get_app_config("chatbot").get_models():
        assert admin.site.is_registered(model), model


@pytest.mark.parametrize("query", ["", "?q=5511987654321", "?q=wamid.ABC", "?q=Maria"])
def test_changelists_search(admin_client, conversation, query):
    from django.apps import apps

    for model in apps.get_app_config("chatbot").get_models():
        url = reverse(f"admin:chatbot_{model._meta.model_name}_changelist") + query
        assert admin_client.get(url, follow=True).status_code == 200, url


def test_bot_settings_open_straight_on_their_one_row(admin_client):
    response = admin_client.get(reverse("admin:chatbot_botsettings_changelist"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:chatbot_botsettings_change", args=[1])
    assert "Olá, {name}!" in response.content.decode()


def test_a_bad_regular_expression_is_refused_in_the_admin(admin_client):
    response = admin_client.post(reverse("admin:chatbot_keywordrule_add"), {
        "match": "regex", "pattern": "(unclosed", "action": "reply", "reply_text": "x", "position": 0,
        "is_active": "on"})
    assert response.status_code == 200
    assert "regular expression" in response.content.decode() or "expressão regular" in response.content.decode()


def test_message_search_finds_by_wamid_and_filters(admin_client, conversation):
    url = reverse("admin:chatbot_message_changelist")
    assert b"wamid.ABC" in admin_client.get(url + "?q=wamid.ABC").content
    assert b"wamid.ABC" in admin_client.get(url + "?direction__exact=in&status__exact=received").content
    assert b"wamid.ABC" not in admin_client.get(url + "?direction__exact=out").content


def test_names_are_escaped(admin_client, conversation):
    content = admin_client.get(reverse("admin:chatbot_contact_changelist")).content
    assert b"<b>Silva</b>" not in content
    assert b"&lt;b&gt;Silva&lt;/b&gt;" in content


def test_api_tokens_cannot_be_added_in_the_admin(admin_client):
    assert admin_client.get(reverse("admin:chatbot_apitoken_add")).status_code == 403
